/**
 * The pool of upstreams (UPSTREAMS): who has which model, who is up, and the one place that sends a
 * request to one of them.
 *
 * - Each upstream has its own client, its own lane queue (its `maxConcurrent` slots per model) and
 *   its own circuit breaker. Its models come from `/api/tags` or `/v1/models` (or its fixed
 *   `models`), refreshed every DISCOVERY_MS and, at most every MISS_REFRESH_MS, on a miss.
 * - `admit()` picks the candidates (upstream-router.ts: has the model, breaker lets it through,
 *   lowest priority number unless its wait exceeds SPILL_AFTER_MS) and queues the request at the
 *   first one, so a full queue is refused before any work.
 * - `open()` waits for the slot and calls the upstream. A refused or timed-out connection, a 5xx or
 *   the upstream's own "busy" *before the first byte* moves the request to the next candidate (its
 *   queue, its slot); what failed never produced an answer, so a generation runs once. After the
 *   first byte nothing is retried.
 * - `status()` is the per-upstream view of /ready, /metrics, the status page and /admin/status.json:
 *   never the apiKey, never credentials in a URL.
 */
import type client from 'prom-client';
import type { OllamaClient } from '../clients/ollama.types';
import {
  failsOver,
  mergeQueueStats,
  publicUrl,
  type OpenFn,
  type OpenHooks,
  type Opened,
  type PoolAdmission,
  type PoolMember,
  type UpstreamClient,
  type UpstreamStatus,
} from './upstream-pool.types';
import type { Priority, UpstreamKind, UpstreamsConfig } from '../config/upstreams';
import { AppError, OllamaUnavailableError } from '../errors';
import type { Logger } from '../logger';
import { CircuitBreaker } from './circuit-breaker';
import { LaneQueue } from './lane-queue';
import { DISCOVERY_MS, MISS_REFRESH_MS, ModelDiscovery } from './upstream-discovery';
import { registerUpstreamMetrics } from './upstream-metrics';
import type { LaneTicket, ModelQueueStats } from './lane-queue.types';
import { normalizeModelName } from './model-catalog';
import { noRouteError, routeUpstreams, type RouteUpstream } from './upstream-router';

export * from './upstream-pool.types';

export const BREAKER = { failureThreshold: 3, openMs: 10_000 };

export interface PoolOptions {
  config: UpstreamsConfig;
  clients: ReadonlyMap<string, UpstreamClient>;
  queue: { maxQueue: number; timeoutMs: number };
  logger: Logger;
  now?: () => number;
}

export class UpstreamPool {
  readonly members: readonly PoolMember[];
  private readonly byName = new Map<string, PoolMember>();
  private readonly discovery: ModelDiscovery;
  private readonly counts = new Map<string, { served: number; failedOver: number }>();
  private readonly now: () => number;
  private timer?: NodeJS.Timeout;
  private failovers?: client.Counter<'from' | 'to'>;
  private requests?: client.Counter<'upstream' | 'outcome'>;
  /** Called whenever a request gets a slot at any upstream (metrics). */
  onSlot?: (model: string, waitedMs: number, priority: Priority, upstream: string) => void;

  constructor(private readonly opts: PoolOptions) {
    this.now = opts.now ?? Date.now;
    const firstOllama = opts.config.upstreams.find((u) => u.kind === 'ollama')?.name;
    this.members = opts.config.upstreams.map((cfg) => {
      const c = opts.clients.get(cfg.name);
      if (!c) throw new Error(`no client for upstream '${cfg.name}'`);
      const queue = new LaneQueue(
        { maxConcurrent: cfg.maxConcurrent, maxQueue: opts.queue.maxQueue, timeoutMs: opts.queue.timeoutMs, agingMs: opts.config.agingMs },
        this.now,
      );
      queue.onSlot = (model, waitedMs, priority) => this.onSlot?.(model, waitedMs, priority, cfg.name);
      const breaker = new CircuitBreaker(BREAKER, this.now);
      breaker.onChange = (from, to) => opts.logger.log(to === 'open' ? 'warn' : 'info', 'upstream breaker changed', { upstream: cfg.name, from, to });
      const member: PoolMember = { name: cfg.name, kind: cfg.kind, config: cfg, client: c, breaker, queue, local: cfg.name === firstOllama };
      this.byName.set(cfg.name, member);
      this.counts.set(cfg.name, { served: 0, failedOver: 0 });
      return member;
    });
    this.discovery = new ModelDiscovery(this.members, this.now);
  }

  get implicit(): boolean {
    return this.opts.config.implicit;
  }

  member(name: string): PoolMember | undefined {
    return this.byName.get(name);
  }

  /** The upstream that owns model management: `?upstream=` or the first ollama one. */
  ollamaMember(name?: string): PoolMember | undefined {
    return name === undefined ? this.members.find((m) => m.local) : this.byName.get(name);
  }

  /** Discovery now and every DISCOVERY_MS (the timer does not keep the process alive). */
  start(): void {
    if (this.implicit) return;
    void this.refresh();
    this.timer = setInterval(() => void this.refresh(), DISCOVERY_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** Asks every discovering upstream for its models (at most one call per upstream at a time). */
  async refresh(names?: string[]): Promise<void> {
    if (this.implicit) return; // the catalog asks the one upstream
    await this.discovery.refresh(names);
  }

  /** The model catalog's source in a pool (ModelDiscovery.catalogSource). */
  catalogSource(local?: Pick<OllamaClient, 'ps'>): Pick<OllamaClient, 'tags' | 'ps'> {
    return this.discovery.catalogSource(local);
  }

  /**
   * The router's view. One implicit upstream (no UPSTREAMS) is always a candidate: the catalog has
   * checked the model already, and with nowhere else to go a breaker would only refuse requests
   * that a refused connection answers in milliseconds anyway (503 + Retry-After, as before the pool).
   */
  private view(model: string, priority: Priority, kinds?: readonly UpstreamKind[]): RouteUpstream[] {
    return this.members
      .filter((m) => !kinds || kinds.includes(m.kind))
      .map((m) => {
        const allows = this.implicit || m.breaker.wouldAllow();
        return {
          name: m.name,
          priority: m.config.priority,
          kind: m.kind,
          breakerAllows: allows,
          // only a refusing breaker has a wait to tell (snapshot() formats dates: not per request)
          breakerRetryInMs: allows ? 0 : m.breaker.snapshot().retryInMs,
          models: this.implicit ? [model] : this.discovery.get(m.name).models,
          estimatedWaitMs: m.queue.estimateWaitMs(model, priority),
        };
      });
  }

  /**
   * Chooses the candidates for `model` and queues the request at the first. A miss (nobody known to
   * have it) asks the upstreams again, at most every MISS_REFRESH_MS. Throws 404 MODEL_NOT_FOUND,
   * 503 OLLAMA_UNAVAILABLE (+ Retry-After) or the first candidate's QUEUE_FULL.
   */
  async admit(model: string, priority: Priority, signal?: AbortSignal, kinds?: readonly UpstreamKind[]): Promise<PoolAdmission> {
    let upstreams = this.view(model, priority, kinds);
    let decision = routeUpstreams(upstreams, model, { spillAfterMs: this.opts.config.spillAfterMs });
    if (decision.candidates.length === 0 && decision.excluded.some((e) => e.reason !== 'breaker-open')) {
      const stale = decision.excluded.filter((e) => e.reason !== 'breaker-open' && this.now() - this.discovery.get(e.name).lastAttempt >= MISS_REFRESH_MS);
      if (stale.length) {
        await this.refresh(stale.map((e) => e.name));
        upstreams = this.view(model, priority, kinds);
        decision = routeUpstreams(upstreams, model, { spillAfterMs: this.opts.config.spillAfterMs });
      }
    }
    if (decision.candidates.length === 0) throw noRouteError(decision, upstreams);
    const first = this.byName.get(decision.candidates[0])!;
    const ticket = first.queue.admit(model, signal, priority);
    return { model, priority, candidates: decision.candidates, spilled: decision.spilled, ticket };
  }

  /**
   * The QUEUE_FULL that `admit` would throw now (counted by the queue), or undefined: admit decides
   * everything else (an unknown model, nobody up). Synchronous, from what routing knows now.
   */
  refusal(model: string, priority: Priority, kinds?: readonly UpstreamKind[]): AppError | undefined {
    if (this.implicit) return this.members[0].queue.refusal(model, priority);
    const decision = routeUpstreams(this.view(model, priority, kinds), model, { spillAfterMs: this.opts.config.spillAfterMs });
    const first = decision.candidates.length ? this.byName.get(decision.candidates[0]) : undefined;
    return first?.queue.refusal(model, priority);
  }

  /**
   * Waits for the slot and calls `open` on the upstream; on a failure before the first byte that
   * `failsOver`, the next candidate (its own queue and slot). Resolves once `open` resolved: the
   * caller releases `slot` when the answer is over.
   */
  async open<T>(admission: PoolAdmission, signal: AbortSignal, hooks: OpenHooks, open: OpenFn<T>): Promise<Opened<T>> {
    let index = 0;
    let member = this.byName.get(admission.candidates[0])!;
    let ticket: LaneTicket = admission.ticket;
    let waited = 0;
    for (;;) {
      const slot = await ticket.slot;
      waited += slot.waitedMs;
      hooks.onSlot?.({ waitedMs: waited });
      let committed = false;
      try {
        if (!this.implicit && !member.breaker.tryAcquire()) {
          throw new OllamaUnavailableError(`The upstream '${member.name}' is marked down (circuit open)`, {
            retryAfterS: Math.max(1, Math.ceil(member.breaker.snapshot().retryInMs / 1000)),
          });
        }
        const value = await open(member, hooks.early ? () => hooks.onStart?.(member.name) : undefined, () => {
          committed = true;
        });
        member.breaker.success();
        hooks.onStart?.(member.name);
        this.counted(member.name, 'ok');
        return { value, upstream: member.name, slot };
      } catch (err) {
        slot.release();
        member.breaker.record(err);
        // it answered before it failed (structured output's 422): the answer still names it
        if (committed) hooks.onStart?.(member.name);
        const next = signal.aborted || committed || !failsOver(err) ? undefined : this.next(admission, index + 1, signal);
        if (!next) {
          this.counted(member.name, 'error');
          throw err;
        }
        this.opts.logger.warn('upstream failed before the first byte: trying the next', {
          model: admission.model,
          from: member.name,
          to: next.member.name,
          code: err instanceof AppError ? err.code : 'INTERNAL',
        });
        this.counted(member.name, 'failover');
        this.failovers?.inc({ from: member.name, to: next.member.name });
        ({ index, member, ticket } = next);
      }
    }
  }

  /** `open` for answers that are whole once `call` resolves: the slot is released at once. */
  async run<T>(admission: PoolAdmission, signal: AbortSignal, hooks: OpenHooks, call: OpenFn<T>): Promise<{ value: T; upstream: string }> {
    const opened = await this.open(admission, signal, hooks, call);
    opened.slot.release();
    return { value: opened.value, upstream: opened.upstream };
  }

  /** The next candidate whose breaker lets it through and whose queue takes the request. */
  private next(admission: PoolAdmission, from: number, signal: AbortSignal): { index: number; member: PoolMember; ticket: LaneTicket } | undefined {
    for (let i = from; i < admission.candidates.length; i++) {
      const member = this.byName.get(admission.candidates[i])!;
      if (!member.breaker.wouldAllow()) continue;
      try {
        return { index: i, member, ticket: member.queue.admit(admission.model, signal, admission.priority) };
      } catch {
        continue; // its queue is full: the one after it
      }
    }
    return undefined;
  }

  private counted(upstream: string, outcome: 'ok' | 'failover' | 'error'): void {
    const counts = this.counts.get(upstream)!;
    if (outcome === 'ok') counts.served++;
    if (outcome === 'failover') counts.failedOver++;
    this.requests?.inc({ upstream, outcome });
  }

  /** The upstreams known to serve this model, up or not. */
  servedBy(model: string): PoolMember[] {
    const wanted = normalizeModelName(model);
    return this.members.filter((m) => [...(this.discovery.get(m.name).models ?? [])].some((x) => normalizeModelName(x) === wanted));
  }

  /** The upstreams that serve this model and whose breaker lets a request through (for /ready). */
  serves(model: string): string[] {
    if (this.implicit) return this.members.map((m) => m.name);
    // A failed discovery counts too: /ready must not say ready until the breakers have opened.
    return this.servedBy(model)
      .filter((m) => m.breaker.wouldAllow() && this.discovery.get(m.name).error === null)
      .map((m) => m.name);
  }

  status(): UpstreamStatus[] {
    return this.members.map((m) => {
      const d = this.discovery.get(m.name);
      const stats = m.queue.stats();
      const breaker = m.breaker.snapshot();
      const known = d.models !== null;
      return {
        name: m.name,
        kind: m.kind,
        url: publicUrl(m.config.url),
        priority: m.config.priority,
        maxConcurrent: m.config.maxConcurrent,
        state: breaker.state === 'open' || d.error !== null ? 'down' : known || (this.implicit && breaker.successes > 0) ? 'up' : 'unknown',
        breaker,
        models: d.models ? [...d.models].sort() : null,
        modelsFrom: this.implicit ? 'catalog' : m.config.models ? 'config' : 'discovery',
        discoveredAt: d.at === null ? null : new Date(d.at).toISOString(),
        lastError: d.error,
        queue: {
          running: stats.reduce((n, s) => n + s.active, 0),
          queued: stats.reduce((n, s) => n + s.queued, 0),
          estimatedWaitMs: Math.max(0, ...stats.map((s) => m.queue.estimateWaitMs(s.model))),
        },
        ...this.counts.get(m.name)!,
      };
    });
  }

  /** Per model, summed over the upstreams (the queue gauges and the status page). */
  stats(): ModelQueueStats[] {
    return mergeQueueStats(this.members.map((m) => m.queue.stats()));
  }

  rejectWaiting(err: Error): void {
    for (const m of this.members) m.queue.rejectWaiting(err);
  }

  async drain(timeoutMs: number): Promise<boolean> {
    const all = await Promise.all(this.members.map((m) => m.queue.drain(timeoutMs)));
    return all.every(Boolean);
  }

  /** Per-upstream gauges (read at scrape time) and the request / failover counters. */
  register(registry: client.Registry): void {
    const counters = registerUpstreamMetrics(registry, () => this.status());
    this.requests = counters.requests;
    this.failovers = counters.failovers;
  }
}
