/**
 * The GPU queue. Ollama serves OLLAMA_NUM_PARALLEL requests at a time *per loaded model* and queues
 * the rest without a bound (docs/ollama-contract.md, Timing), so back-pressure lives here:
 * one lane per model, `maxConcurrent` running, up to `maxQueue` waiting in FIFO order.
 *
 * Admission is two-phase so a streaming route can refuse at once (503 QUEUE_FULL, a real status) and
 * yet send its headers before the wait: `admit()` throws or returns a ticket; `ticket.slot` resolves
 * when a slot is free, rejects on queue timeout or when the caller's signal aborts (the caller left).
 */
import { ClientClosedError, QueueFullError, QueueTimeoutError } from '../errors';

export interface QueueOptions {
  maxConcurrent: number;
  maxQueue: number;
  timeoutMs: number;
  /** Called whenever a request gets a slot (the queue-wait metric). */
  onSlot?: (model: string, waitedMs: number) => void;
}

export interface Slot {
  /** Milliseconds spent waiting for this slot. */
  readonly waitedMs: number;
  release(): void;
}

export interface Ticket {
  readonly position: number;
  readonly slot: Promise<Slot>;
}

interface Waiter {
  enqueuedAt: number;
  resolve: (slot: Slot) => void;
  reject: (err: Error) => void;
  cleanup: () => void;
}

interface Lane {
  active: number;
  waiting: Waiter[];
  /** Durations of the last completed requests (ms), for the Retry-After estimate. */
  recent: number[];
}

export interface LaneStats {
  model: string;
  active: number;
  queued: number;
  avgDurationMs: number | null;
}

const RECENT = 20;
/** Used for Retry-After before any request on a lane has completed. */
const FALLBACK_DURATION_MS = 5_000;

export class GpuQueue {
  private readonly lanes = new Map<string, Lane>();
  private drainWaiters: Array<() => void> = [];

  constructor(
    private readonly opts: QueueOptions,
    private readonly now: () => number = Date.now,
  ) {}

  admit(model: string, signal?: AbortSignal): Ticket {
    const lane = this.lane(model);
    if (signal?.aborted) throw new ClientClosedError();
    if (lane.active < this.opts.maxConcurrent && lane.waiting.length === 0) {
      lane.active++;
      return { position: 0, slot: Promise.resolve(this.makeSlot(model, lane, this.now())) };
    }
    if (lane.waiting.length >= this.opts.maxQueue) {
      throw new QueueFullError(
        `The queue for '${model}' is full (${lane.active} running, ${lane.waiting.length} waiting)`,
        this.estimateWaitS(model, lane.waiting.length + 1),
        { details: { model, running: lane.active, queued: lane.waiting.length } },
      );
    }
    const enqueuedAt = this.now();
    const position = lane.waiting.length + 1;
    const slot = new Promise<Slot>((resolve, reject) => {
      const timer = setTimeout(() => {
        remove();
        reject(new QueueTimeoutError(Math.round(this.opts.timeoutMs / 1000), this.estimateWaitS(model, lane.waiting.length + 1)));
      }, this.opts.timeoutMs);
      const onAbort = () => {
        remove();
        reject(new ClientClosedError());
      };
      const waiter: Waiter = {
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
        const i = lane.waiting.indexOf(waiter);
        if (i >= 0) lane.waiting.splice(i, 1);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      lane.waiting.push(waiter);
    });
    // A ticket whose slot nobody awaits (caller already failed) must not raise unhandled rejections.
    slot.catch(() => undefined);
    return { position, slot };
  }

  /** Convenience: admit and wait. */
  acquire(model: string, signal?: AbortSignal): Promise<Slot> {
    return this.admit(model, signal).slot;
  }

  /** Seconds until `ahead` more requests on this lane are likely done. Never a constant. */
  estimateWaitS(model: string, ahead = 1): number {
    const lane = this.lanes.get(model);
    const avg = lane && lane.recent.length ? lane.recent.reduce((a, b) => a + b, 0) / lane.recent.length : FALLBACK_DURATION_MS;
    const rounds = Math.ceil(ahead / this.opts.maxConcurrent);
    return Math.max(1, Math.ceil((avg * rounds) / 1000));
  }

  stats(): LaneStats[] {
    return [...this.lanes.entries()].map(([model, lane]) => ({
      model,
      active: lane.active,
      queued: lane.waiting.length,
      avgDurationMs: lane.recent.length ? Math.round(lane.recent.reduce((a, b) => a + b, 0) / lane.recent.length) : null,
    }));
  }

  get activeCount(): number {
    let n = 0;
    for (const lane of this.lanes.values()) n += lane.active;
    return n;
  }

  get queuedCount(): number {
    let n = 0;
    for (const lane of this.lanes.values()) n += lane.waiting.length;
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
    for (const lane of this.lanes.values()) {
      for (const w of lane.waiting.splice(0)) {
        w.cleanup();
        w.reject(err);
      }
    }
  }

  private lane(model: string): Lane {
    let lane = this.lanes.get(model);
    if (!lane) {
      lane = { active: 0, waiting: [], recent: [] };
      this.lanes.set(model, lane);
    }
    return lane;
  }

  private makeSlot(model: string, lane: Lane, enqueuedAt: number): Slot {
    const startedAt = this.now();
    let released = false;
    this.opts.onSlot?.(model, startedAt - enqueuedAt);
    return {
      waitedMs: startedAt - enqueuedAt,
      release: () => {
        if (released) return;
        released = true;
        lane.recent.push(this.now() - startedAt);
        if (lane.recent.length > RECENT) lane.recent.shift();
        lane.active--;
        const next = lane.waiting.shift();
        if (next) {
          next.cleanup();
          lane.active++;
          next.resolve(this.makeSlot(model, lane, next.enqueuedAt));
        }
        if (this.activeCount === 0) this.drainWaiters.splice(0).forEach((fn) => fn());
      },
    };
  }
}
