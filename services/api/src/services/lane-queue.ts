/**
 * The GPU queue, with priority lanes. Ollama serves OLLAMA_NUM_PARALLEL requests at a time *per
 * loaded model* and queues the rest without a bound (docs/ollama-contract.md, Timing), so
 * back-pressure lives here: one queue per model, `maxConcurrent` running, up to `maxQueue` waiting.
 *
 * Admission is two-phase so a streaming route can refuse at once (503 QUEUE_FULL, a real status) and
 * yet send its headers before the wait: `admit()` throws or returns a ticket; `ticket.slot` resolves
 * when a slot is free, rejects on QUEUE_TIMEOUT or when the caller's signal aborts (the caller left).
 * On top of that:
 *
 * - Three lanes, high → normal → low, FIFO within a lane. `maxQueue` holds per lane and counts the
 *   lane a request was admitted to, so a flood of low requests can never refuse a high one.
 * - Aging: a request that has waited `agingMs` in its lane counts as one lane higher (low → normal →
 *   high), and joins that lane's end at the moment it got there. Nothing starves: a low request is
 *   served at most 2 × agingMs after it arrived plus whatever was already ahead in high.
 *   Aging is evaluated when a slot is handed out (the only moment order matters), so no timer runs
 *   for it and an injected clock drives it in tests. `agingMs` 0 turns aging off.
 * - `estimateWaitMs(model, priority)`: requests ahead × recent service time, for routing/spill.
 */
import { ClientClosedError, QueueFullError, QueueTimeoutError } from '../errors';
import { PRIORITIES, type Priority } from '../config/upstreams';

export type { Priority };
export type { LaneQueueOptions, LaneSlot, LaneStats, LaneTicket, ModelQueueStats, PriorityLaneStats, Slot, Ticket } from './lane-queue.types';
import type { LaneQueueOptions, LaneSlot, LaneTicket, ModelQueueStats, PriorityLaneStats } from './lane-queue.types';

interface Waiter {
  priority: Priority;
  rank: number;
  enqueuedAt: number;
  resolve: (slot: LaneSlot) => void;
  reject: (err: Error) => void;
  cleanup: () => void;
}

interface ModelQueue {
  active: number;
  /** One FIFO per admitted lane, indexed by rank (0 = high). */
  waiting: [Waiter[], Waiter[], Waiter[]];
  recent: number[];
  counters: Record<Priority, { served: number; aged: number; refused: number }>;
}

const RECENT = 20;
const FALLBACK_DURATION_MS = 5_000;
const rankOf = (p: Priority): number => PRIORITIES.indexOf(p);

export class LaneQueue {
  private readonly queues = new Map<string, ModelQueue>();
  private drainWaiters: Array<() => void> = [];
  /** Called whenever a request gets a slot (metrics). */
  onSlot?: (model: string, waitedMs: number, priority: Priority, servedAs: Priority) => void;

  constructor(
    private readonly opts: LaneQueueOptions,
    private readonly now: () => number = Date.now,
  ) {}

  admit(model: string, signal?: AbortSignal, priority: Priority = 'normal'): LaneTicket {
    const q = this.queue(model);
    if (signal?.aborted) throw new ClientClosedError();
    const rank = rankOf(priority);
    if (rank < 0) throw new TypeError(`unknown priority ${String(priority)}`);
    const queued = this.waitingTotal(q);
    if (q.active < this.opts.maxConcurrent && queued === 0) {
      q.active++;
      const at = this.now();
      return { position: 0, priority, slot: Promise.resolve(this.makeSlot(model, q, { priority, rank, enqueuedAt: at }, priority)) };
    }
    const lane = q.waiting[rank];
    const full = this.fullError(model, q, rank, priority);
    if (full) {
      q.counters[priority].refused++;
      throw full;
    }
    const enqueuedAt = this.now();
    const position = this.aheadOf(q, rank) + 1;
    const slot = new Promise<LaneSlot>((resolve, reject) => {
      const timer = setTimeout(() => {
        remove();
        reject(new QueueTimeoutError(Math.round(this.opts.timeoutMs / 1000), this.estimateWaitS(model, this.aheadOf(q, rank) + 1)));
      }, this.opts.timeoutMs);
      const onAbort = () => {
        remove();
        reject(new ClientClosedError());
      };
      const waiter: Waiter = {
        priority,
        rank,
        enqueuedAt,
        resolve,
        reject,
        cleanup: () => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
        },
      };
      const remove = () => {
        waiter.cleanup();
        const i = lane.indexOf(waiter);
        if (i >= 0) lane.splice(i, 1);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      lane.push(waiter);
    });
    // A ticket whose slot nobody awaits (caller already failed) must not raise unhandled rejections.
    slot.catch(() => undefined);
    return { position, priority, slot };
  }

  /**
   * What `admit` would refuse with now (QUEUE_FULL for the request's lane), counted as a refusal,
   * or undefined (nothing queued): the early check that answers an overload before a body is
   * validated.
   */
  refusal(model: string, priority: Priority = 'normal'): QueueFullError | undefined {
    const q = this.queues.get(model);
    const rank = rankOf(priority);
    if (!q || rank < 0) return undefined; // nothing queued for it: a slot is free
    const full = this.fullError(model, q, rank, priority);
    if (full) q.counters[priority].refused++;
    return full;
  }

  /** Convenience: admit and wait. */
  acquire(model: string, signal?: AbortSignal, priority: Priority = 'normal'): Promise<LaneSlot> {
    return this.admit(model, signal, priority).slot;
  }

  /** Seconds until `ahead` more requests on this model are likely done (Retry-After). At least 1. */
  estimateWaitS(model: string, ahead = 1): number {
    const rounds = Math.ceil(ahead / this.opts.maxConcurrent);
    return Math.max(1, Math.ceil((this.avgDurationMs(model) * rounds) / 1000));
  }

  /**
   * Milliseconds a request admitted now at `priority` would likely wait: 0 when a slot is free,
   * else (requests ahead of it + the one it waits for) / maxConcurrent rounds × recent service time.
   */
  estimateWaitMs(model: string, priority: Priority = 'normal'): number {
    const q = this.queues.get(model);
    if (!q) return 0;
    if (q.active < this.opts.maxConcurrent && this.waitingTotal(q) === 0) return 0;
    const rounds = Math.ceil((this.aheadOf(q, rankOf(priority)) + 1) / this.opts.maxConcurrent);
    return Math.round(this.avgDurationMs(model) * rounds);
  }

  stats(): ModelQueueStats[] {
    const now = this.now();
    return [...this.queues.entries()].map(([model, q]) => {
      const lanes = {} as Record<Priority, PriorityLaneStats>;
      for (const p of PRIORITIES) lanes[p] = { queued: 0, ...q.counters[p] };
      for (const lane of q.waiting) for (const w of lane) lanes[PRIORITIES[this.effective(w, now).rank]].queued++;
      return {
        model,
        active: q.active,
        queued: this.waitingTotal(q),
        avgDurationMs: q.recent.length ? Math.round(q.recent.reduce((a, b) => a + b, 0) / q.recent.length) : null,
        lanes,
      };
    });
  }

  get activeCount(): number {
    let n = 0;
    for (const q of this.queues.values()) n += q.active;
    return n;
  }

  get queuedCount(): number {
    let n = 0;
    for (const q of this.queues.values()) n += this.waitingTotal(q);
    return n;
  }

  /** Resolves when nothing runs any more, or after `timeoutMs` (returns whether it drained). */
  drain(timeoutMs: number): Promise<boolean> {
    if (this.activeCount === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.drainWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /** Refuses everyone still waiting (shutdown). */
  rejectWaiting(err: Error): void {
    for (const q of this.queues.values()) {
      for (const lane of q.waiting) {
        for (const w of lane.splice(0)) {
          w.cleanup();
          w.reject(err);
        }
      }
    }
  }

  private queue(model: string): ModelQueue {
    let q = this.queues.get(model);
    if (!q) {
      q = {
        active: 0,
        waiting: [[], [], []],
        recent: [],
        counters: { high: { served: 0, aged: 0, refused: 0 }, normal: { served: 0, aged: 0, refused: 0 }, low: { served: 0, aged: 0, refused: 0 } },
      };
      this.queues.set(model, q);
    }
    return q;
  }

  /** QUEUE_FULL when lane `rank` holds maxQueue waiters (and so no slot is free); else undefined. */
  private fullError(model: string, q: ModelQueue, rank: number, priority: Priority): QueueFullError | undefined {
    const lane = q.waiting[rank];
    if (lane.length < this.opts.maxQueue || (q.active < this.opts.maxConcurrent && this.waitingTotal(q) === 0)) return undefined;
    // Normal traffic keeps the message callers already match on; the other lanes name theirs.
    const which = priority === 'normal' ? 'queue' : `${priority}-priority queue`;
    return new QueueFullError(
      `The ${which} for '${model}' is full (${q.active} running, ${lane.length} waiting${priority === 'normal' ? '' : ' in this lane'})`,
      this.estimateWaitS(model, this.aheadOf(q, rank) + 1),
      { details: { model, priority, running: q.active, queued: lane.length } },
    );
  }

  private waitingTotal(q: ModelQueue): number {
    return q.waiting[0].length + q.waiting[1].length + q.waiting[2].length;
  }

  private avgDurationMs(model: string): number {
    const q = this.queues.get(model);
    return q && q.recent.length ? q.recent.reduce((a, b) => a + b, 0) / q.recent.length : FALLBACK_DURATION_MS;
  }

  /** The lane a waiter counts in now, and when it got there (its place in that lane). */
  private effective(w: Waiter, now: number): { rank: number; since: number } {
    if (this.opts.agingMs <= 0 || w.rank === 0) return { rank: w.rank, since: w.enqueuedAt };
    const steps = Math.min(w.rank, Math.floor((now - w.enqueuedAt) / this.opts.agingMs));
    return { rank: w.rank - steps, since: w.enqueuedAt + steps * this.opts.agingMs };
  }

  /** Waiters a new request of lane `rank` would have ahead of it (its own lane and the higher ones, aged included). */
  private aheadOf(q: ModelQueue, rank: number): number {
    const now = this.now();
    let n = 0;
    for (const lane of q.waiting) for (const w of lane) if (this.effective(w, now).rank <= rank) n++;
    return n;
  }

  /**
   * The next waiter: the lowest effective lane, then the earliest arrival in it. Within one
   * admitted lane the oldest is always the best, so only the three heads are compared.
   */
  private takeNext(q: ModelQueue): { w: Waiter; rank: number } | undefined {
    const now = this.now();
    let best: { w: Waiter; rank: number; since: number } | undefined;
    for (const lane of q.waiting) {
      const w = lane[0];
      if (!w) continue;
      const e = this.effective(w, now);
      if (!best || e.rank < best.rank || (e.rank === best.rank && e.since < best.since)) best = { w, ...e };
    }
    if (!best) return undefined;
    q.waiting[best.w.rank].shift();
    if (best.rank < best.w.rank) q.counters[best.w.priority].aged++;
    return { w: best.w, rank: best.rank };
  }

  private makeSlot(model: string, q: ModelQueue, w: Pick<Waiter, 'priority' | 'rank' | 'enqueuedAt'>, servedAs: Priority): LaneSlot {
    const startedAt = this.now();
    let released = false;
    const waitedMs = startedAt - w.enqueuedAt;
    q.counters[w.priority].served++;
    this.onSlot?.(model, waitedMs, w.priority, servedAs);
    return {
      waitedMs,
      priority: w.priority,
      servedAs,
      release: () => {
        if (released) return;
        released = true;
        q.recent.push(this.now() - startedAt);
        if (q.recent.length > RECENT) q.recent.shift();
        q.active--;
        const next = this.takeNext(q);
        if (next) {
          next.w.cleanup();
          q.active++;
          next.w.resolve(this.makeSlot(model, q, next.w, PRIORITIES[next.rank]));
        }
        if (this.activeCount === 0) this.drainWaiters.splice(0).forEach((fn) => fn());
      },
    };
  }
}
