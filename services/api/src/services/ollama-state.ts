import { OllamaRestartingError } from '../errors';

/**
 * What the API knows about the Ollama process beyond single calls: an admin restart in progress.
 * Generation routes consult it first, so callers get 503 OLLAMA_RESTARTING with Retry-After instead
 * of hanging on a container that is going away.
 */
export class OllamaState {
  private restartStartedAt: number | null = null;

  constructor(
    private readonly expectedRestartS = 15,
    private readonly now: () => number = Date.now,
  ) {}

  get restarting(): boolean {
    return this.restartStartedAt !== null;
  }

  beginRestart(): boolean {
    if (this.restartStartedAt !== null) return false;
    this.restartStartedAt = this.now();
    return true;
  }

  endRestart(): void {
    this.restartStartedAt = null;
  }

  /** Throws OLLAMA_RESTARTING while a restart runs. */
  assertAvailable(): void {
    if (this.restartStartedAt === null) return;
    const elapsedS = (this.now() - this.restartStartedAt) / 1000;
    throw new OllamaRestartingError(Math.max(1, Math.ceil(this.expectedRestartS - elapsedS)));
  }
}
