/**
 * The shapes of the upstream pool (upstream-pool.ts) and its small helpers: the members, an
 * admission, the hooks a route passes, the per-upstream status, which errors move a request on,
 * and `primed` (the first item of a stream read before the answer starts).
 */
import type { OllamaClient, OllamaTag } from '../clients/ollama.types';
import type { Priority, UpstreamConfig, UpstreamKind } from '../config/upstreams';
import { AppError } from '../errors';
import type { BreakerSnapshot, CircuitBreaker } from './circuit-breaker';
import { isBreakerFailure } from './circuit-breaker';
import type { LaneQueue } from './lane-queue';
import type { LaneSlot, LaneTicket, ModelQueueStats } from './lane-queue.types';

/** What the pool needs of a client: both kinds speak generation in Ollama's chunk shapes. */
export type UpstreamClient = Pick<OllamaClient, 'chat' | 'generate' | 'embed' | 'proxy' | 'tags'>;

export interface PoolMember {
  readonly name: string;
  readonly kind: UpstreamKind;
  readonly config: UpstreamConfig;
  readonly client: UpstreamClient;
  readonly breaker: CircuitBreaker;
  readonly queue: LaneQueue;
  /** The first `ollama` upstream: the one the catalog, warm keeper and model management talk to. */
  readonly local: boolean;
}

export interface PoolAdmission {
  model: string;
  priority: Priority;
  /** Upstream names in the order they will be tried. */
  candidates: string[];
  spilled: boolean;
  /** The queue place at the first candidate. */
  ticket: LaneTicket;
}

export interface OpenHooks {
  /** Each slot granted (the wait summed over failovers). */
  onSlot?: (slot: { waitedMs: number }) => void;
  /** The upstream took the request (stream headers may go out now). */
  onStart?: (upstream: string) => void;
  /**
   * Call onStart as soon as the upstream accepts (a stream commits its headers then); otherwise once
   * the try succeeded, and the client gets no hook at all (no per-request closures for it).
   */
  early?: boolean;
}

/** An upstream call that got its first byte: the caller owns `slot` and releases it when done. */
export interface Opened<T> {
  value: T;
  upstream: string;
  slot: LaneSlot;
}

/**
 * One try on one upstream. `onAccepted`: the upstream took the request (stream headers may go out).
 * `commit`: bytes of an answer came back, so a failure from here on is not moved to another
 * upstream (for calls that read more than their first byte inside the try, like structured output).
 */
export type OpenFn<T> = (member: PoolMember, onAccepted: (() => void) | undefined, commit: () => void) => Promise<T>;

export interface UpstreamStatus {
  name: string;
  kind: UpstreamKind;
  url: string;
  priority: number;
  maxConcurrent: number;
  state: 'up' | 'down' | 'unknown';
  breaker: BreakerSnapshot;
  models: string[] | null;
  /** discovery: its /api/tags or /v1/models; config: its `models`; catalog: the one implicit upstream (/v1/models). */
  modelsFrom: 'discovery' | 'config' | 'catalog';
  discoveredAt: string | null;
  lastError: string | null;
  queue: { running: number; queued: number; estimatedWaitMs: number };
  served: number;
  failedOver: number;
}

/** A configured model (`models` of an upstream) in the catalog's shape: nothing more is known. */
export function fixedTag(name: string): OllamaTag {
  return { name, model: name, modified_at: '', size: 0, digest: '', details: {} };
}

/** The errors before the first byte that send a request on to the next candidate. */
export function failsOver(err: unknown): boolean {
  if (!(err instanceof AppError)) return false;
  if (isBreakerFailure(err)) return true;
  const upstreamSaid = (err.details as { upstreamStatus?: number } | undefined)?.upstreamStatus !== undefined;
  return upstreamSaid && (err.code === 'QUEUE_FULL' || err.code === 'INSUFFICIENT_MEMORY');
}

/** A URL without user:password (status pages show it). */
export function publicUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString().replace(/\/$/, '');
  } catch {
    return '(invalid URL)';
  }
}

/** Per model, the queues of every upstream summed (running, waiting, and each lane's counts). */
export function mergeQueueStats(perUpstream: ModelQueueStats[][]): ModelQueueStats[] {
  const merged = new Map<string, ModelQueueStats>();
  for (const s of perUpstream.flat()) {
    const seen = merged.get(s.model);
    if (!seen) {
      merged.set(s.model, { ...s, lanes: structuredClone(s.lanes) });
      continue;
    }
    seen.active += s.active;
    seen.queued += s.queued;
    for (const lane of Object.keys(s.lanes) as Priority[]) {
      for (const k of ['queued', 'served', 'aged', 'refused'] as const) seen.lanes[lane][k] += s.lanes[lane][k];
    }
  }
  return [...merged.values()];
}

/**
 * Reads the first item of an upstream's stream (so "before the first byte" is known when `open`
 * resolves) and gives back an iterable of every item, the first included. Leaving early closes the
 * upstream's iterator (which aborts its request).
 */
export async function primed<T>(source: AsyncIterable<T>): Promise<AsyncIterable<T>> {
  const it = source[Symbol.asyncIterator]();
  const first = await it.next();
  return {
    async *[Symbol.asyncIterator]() {
      let done = false;
      try {
        if (first.done) return;
        yield first.value;
        for (;;) {
          const r = await it.next();
          if (r.done) {
            done = true;
            return;
          }
          yield r.value;
        }
      } finally {
        if (!done) await it.return?.();
      }
    },
  };
}
