/**
 * One upstream's circuit breaker.
 *
 *   closed ──(failureThreshold consecutive failures)──▶ open ──(openMs later)──▶ half-open
 *   half-open: exactly one probe goes through; success → closed, failure → open again.
 *
 * A failure is what says "this upstream is down", not "this request was bad": a refused or timed-out
 * connection and a 5xx (see `isBreakerFailure`). A 4xx, a missing model, a caller that left, or the
 * upstream's own "busy" answer leave the count alone. A probe whose caller left without a verdict
 * (`release()`) frees the probe place; a probe that never reports is given up after `probeTimeoutMs`.
 * No timer runs: time is read from the injected clock when asked.
 */
import { AppError } from '../errors';

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface CircuitBreakerOptions {
  /** Consecutive failures that open the breaker. */
  failureThreshold: number;
  /** How long an open breaker refuses before it lets a probe through. */
  openMs: number;
  /** A probe without a verdict after this long no longer blocks the next one (default openMs). */
  probeTimeoutMs?: number;
}

export interface BreakerSnapshot {
  state: BreakerState;
  consecutiveFailures: number;
  /** Times the breaker opened since start. */
  opened: number;
  failures: number;
  successes: number;
  /** Attempts refused while open (or while the probe was out). */
  rejected: number;
  /** Milliseconds until an open breaker lets a probe through; 0 otherwise. */
  retryInMs: number;
  lastFailureAt: string | null;
  lastChangeAt: string | null;
}

/** Codes that mean the upstream itself is down or broken. */
const FAILURE_CODES = new Set(['OLLAMA_UNAVAILABLE', 'UPSTREAM_UNAVAILABLE', 'NO_UPSTREAM', 'UPSTREAM_ERROR']);

/** Outcomes that say nothing about the upstream's health. */
const NO_VERDICT_CODES = new Set(['CLIENT_CLOSED_REQUEST', 'UPSTREAM_TIMEOUT', 'SHUTTING_DOWN']);

/**
 * Does this error count against the upstream? Connect failures (the clients map a refused or
 * timed-out connection to OLLAMA_UNAVAILABLE) and 5xx do; the caller's faults do not.
 */
export function isBreakerFailure(err: unknown): boolean {
  if (!(err instanceof AppError)) return true; // not mapped by a client: something broke on the way
  return FAILURE_CODES.has(err.code);
}

export class CircuitBreaker {
  private stateValue: BreakerState = 'closed';
  private consecutive = 0;
  private openedAt = 0;
  private probeSince: number | null = null;
  private counts = { opened: 0, failures: 0, successes: 0, rejected: 0 };
  private lastFailure: number | null = null;
  private lastChange: number | null = null;
  /** Called on every state change (log on change only, metrics). */
  onChange?: (from: BreakerState, to: BreakerState) => void;

  constructor(
    private readonly opts: CircuitBreakerOptions,
    private readonly now: () => number = Date.now,
  ) {
    if (opts.failureThreshold < 1) throw new RangeError('failureThreshold must be ≥ 1');
  }

  /** The state now (an open breaker whose pause is over reads as half-open). */
  get state(): BreakerState {
    if (this.stateValue === 'open' && this.now() - this.openedAt >= this.opts.openMs) this.transition('half-open');
    return this.stateValue;
  }

  /** Would an attempt go through now? No side effect: for routing decisions and status. */
  wouldAllow(): boolean {
    const s = this.state;
    if (s === 'closed') return true;
    if (s === 'open') return false;
    return this.probeSince === null || this.now() - this.probeSince >= (this.opts.probeTimeoutMs ?? this.opts.openMs);
  }

  /**
   * Takes the right to try this upstream now. In half-open only the first caller gets it (the
   * probe); it must then report `success()`, `failure()` or `release()`.
   */
  tryAcquire(): boolean {
    if (!this.wouldAllow()) {
      this.counts.rejected++;
      return false;
    }
    if (this.stateValue === 'half-open') this.probeSince = this.now();
    return true;
  }

  success(): void {
    this.counts.successes++;
    this.consecutive = 0;
    this.probeSince = null;
    if (this.stateValue !== 'closed') this.transition('closed');
  }

  failure(): void {
    const now = this.now();
    this.counts.failures++;
    this.consecutive++;
    this.lastFailure = now;
    this.probeSince = null;
    if (this.stateValue === 'half-open' || (this.stateValue === 'closed' && this.consecutive >= this.opts.failureThreshold)) {
      this.openedAt = now;
      this.counts.opened++;
      this.transition('open');
    }
  }

  /**
   * Reports an outcome. A failure per `isBreakerFailure` counts; a caller that left, a slow
   * generation or shutdown give no verdict; any other answer (a 4xx, a missing model, the
   * upstream's own "busy") shows the upstream is alive and counts as a success.
   */
  record(err?: unknown): void {
    if (err === undefined) this.success();
    else if (isBreakerFailure(err)) this.failure();
    else if (err instanceof AppError && NO_VERDICT_CODES.has(err.code)) this.release();
    else this.success();
  }

  /** The attempt ended without a verdict (the caller left, the request itself was bad): frees the probe. */
  release(): void {
    this.probeSince = null;
  }

  snapshot(): BreakerSnapshot {
    const state = this.state;
    return {
      state,
      consecutiveFailures: this.consecutive,
      ...this.counts,
      retryInMs: state === 'open' ? Math.max(0, this.openedAt + this.opts.openMs - this.now()) : 0,
      lastFailureAt: this.lastFailure === null ? null : new Date(this.lastFailure).toISOString(),
      lastChangeAt: this.lastChange === null ? null : new Date(this.lastChange).toISOString(),
    };
  }

  private transition(to: BreakerState): void {
    const from = this.stateValue;
    if (from === to) return;
    this.stateValue = to;
    this.lastChange = this.now();
    if (to !== 'half-open') this.probeSince = null;
    this.onChange?.(from, to);
  }
}
