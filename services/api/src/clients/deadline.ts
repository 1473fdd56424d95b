import type { StreamCallOptions } from './ollama.types';

/**
 * The deadline of one upstream call, re-armed by the caller: first `firstChunkTimeoutMs`, then
 * `idleTimeoutMs` from each `touch()`. Aborts the request when it passes or the caller's signal fires.
 */
export class Deadline {
  readonly controller = new AbortController();
  timedOut = false;
  private timer?: NodeJS.Timeout;
  private readonly onCallerAbort = () => this.controller.abort();

  constructor(private readonly opts: StreamCallOptions) {
    if (opts.signal?.aborted) this.controller.abort();
    opts.signal?.addEventListener('abort', this.onCallerAbort, { once: true });
    this.arm(opts.firstChunkTimeoutMs);
  }

  arm(ms: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timedOut = true;
      this.controller.abort();
    }, ms);
    this.timer.unref?.();
  }

  touch(): void {
    this.arm(this.opts.idleTimeoutMs);
  }

  callerAborted(): boolean {
    return Boolean(this.opts.signal?.aborted);
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.opts.signal?.removeEventListener('abort', this.onCallerAbort);
  }
}
