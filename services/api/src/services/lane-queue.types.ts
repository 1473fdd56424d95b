/**
 * The public shapes of the GPU lane queue (lane-queue.ts): its options, the ticket and slot a caller
 * gets, and the per-model / per-lane statistics it reports.
 */
import type { Priority } from '../config/upstreams';

export interface LaneQueueOptions {
  maxConcurrent: number;
  /** Per lane. */
  maxQueue: number;
  timeoutMs: number;
  /** Wait after which a request moves up one lane; 0 = never. */
  agingMs: number;
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

export interface LaneStats {
  model: string;
  active: number;
  queued: number;
  avgDurationMs: number | null;
}

export interface LaneSlot extends Slot {
  /** The lane the request was admitted to. */
  readonly priority: Priority;
  /** The lane it was served from (higher than `priority` when it aged). */
  readonly servedAs: Priority;
}

export interface LaneTicket extends Ticket {
  readonly priority: Priority;
  readonly slot: Promise<LaneSlot>;
}

export interface PriorityLaneStats {
  /** Waiting in this lane now (aged requests count where they are now). */
  queued: number;
  /** Slots handed out to requests admitted to this lane. */
  served: number;
  /** Requests admitted to this lane that were served from a higher one after aging. */
  aged: number;
  /** Refused with QUEUE_FULL. */
  refused: number;
}

export interface ModelQueueStats extends LaneStats {
  lanes: Record<Priority, PriorityLaneStats>;
}
