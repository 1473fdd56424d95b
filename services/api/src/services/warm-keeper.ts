/**
 * Warm GPU: keeps the default model loaded (a cold load costs seconds the first caller would
 * pay), and, when IDLE_UNLOAD_MIN is set, unloads models after that long without a generation to
 * save power at night. The next request loads the model again by itself.
 */
import type { Config } from '../config';
import type { OllamaClient } from '../clients/ollama.types';
import type { Logger } from '../logger';
import type { ModelCatalog } from './model-catalog';
import { timeoutsFor } from './model-timeouts';
import type { OllamaState } from './ollama-state';

/** warm: default model loaded; warming: being (or about to be) loaded; idle: unloaded on purpose. */
export type WarmStatus = 'warm' | 'warming' | 'idle' | 'off';

export interface WarmKeeperDeps {
  config: Config;
  ollama: OllamaClient;
  catalog: ModelCatalog;
  state: OllamaState;
  logger: Logger;
  now?: () => number;
}

export class WarmKeeper {
  private lastActivity: number;
  private idle = false;
  private loading?: Promise<void>;
  private timer?: NodeJS.Timeout;
  private readonly now: () => number;
  /** Set by start(): readiness says "warming" only when someone keeps the model warm. */
  active = false;

  constructor(private readonly deps: WarmKeeperDeps) {
    this.now = deps.now ?? Date.now;
    this.lastActivity = this.now();
  }

  /** A generation happened: not idle any more. */
  touch(): void {
    this.lastActivity = this.now();
    this.idle = false;
  }

  get isIdle(): boolean {
    return this.idle;
  }

  start(): void {
    if (!this.deps.config.warm.enabled && !this.deps.config.warm.idleUnloadMin) return;
    this.active = this.deps.config.warm.enabled;
    void this.tick();
    this.timer = setInterval(() => void this.tick(), this.deps.config.warm.checkS * 1000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.active = false;
  }

  /** One check; never throws (Ollama down is the readiness check's business). */
  async tick(): Promise<WarmStatus> {
    const { config, catalog, logger, state } = this.deps;
    if (state.restarting) return 'warming';
    try {
      const idleMs = config.warm.idleUnloadMin * 60_000;
      if (idleMs > 0 && !this.idle && this.now() - this.lastActivity >= idleMs) {
        const loaded = await catalog.running(true);
        for (const m of loaded) await this.deps.ollama.setLoaded(m.name, 0, timeoutsFor(config.ollama, m.name, true));
        catalog.invalidate();
        this.idle = true;
        logger.info('idle: models unloaded to save power', { models: loaded.map((m) => m.name), idleMinutes: config.warm.idleUnloadMin });
        return 'idle';
      }
      if (this.idle) return 'idle';
      if (!config.warm.enabled) return 'off';
      if (await catalog.isLoaded(config.models.default)) return 'warm';
      await this.warm();
      return (await catalog.isLoaded(config.models.default)) ? 'warm' : 'warming';
    } catch (err) {
      logger.warn('warm keeper check failed', { code: (err as { code?: string }).code });
      return 'warming';
    }
  }

  /** Loads the default model (once at a time) with the same runner options as real calls. */
  warm(): Promise<void> {
    const { config, catalog, logger } = this.deps;
    if (!this.loading) {
      const started = this.now();
      logger.info('warming the default model', { model: config.models.default });
      this.loading = this.deps.ollama
        .setLoaded(config.models.default, config.ollama.keepAlive, timeoutsFor(config.ollama, config.models.default, true), { num_ctx: config.models.numCtx })
        .then(() => {
          catalog.invalidate();
          logger.info('default model loaded', { model: config.models.default, ms: this.now() - started });
        })
        .finally(() => {
          this.loading = undefined;
        });
    }
    return this.loading;
  }
}
