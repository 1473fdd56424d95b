/**
 * Readiness: Ollama answers and the default model is installed. Cached for HEALTH_CACHE_TTL_S so
 * a probe storm never reaches Ollama; `force` bypasses the cache. Never waits in the GPU queue.
 */
import { AppError } from '../errors';
import type { OllamaClient } from '../clients/ollama.types';
import type { Logger } from '../logger';
import { normalizeModelName, type ModelCatalog } from './model-catalog';
import type { OllamaState } from './ollama-state';
import type { UpstreamPool } from './upstream-pool';
import type { WarmKeeper } from './warm-keeper';

export interface Readiness {
  /** ready: serving (the default model loaded, or unloaded on purpose while idle); warming: loading it. */
  status: 'ready' | 'warming' | 'unavailable';
  reason?: string;
  code?: string;
  ollama: { reachable: boolean; version: string | null; restarting: boolean };
  defaultModel: { name: string; installed: boolean; loaded: boolean; idle: boolean };
  /** Per upstream: up or down, its breaker, and whether it serves the default model. */
  upstreams: Array<{ name: string; kind: string; state: string; breaker: string; servesDefault: boolean }>;
  checkedAt: string;
  cached: boolean;
}

export class HealthService {
  private cache?: { value: Readiness; at: number };
  private lastStatus?: string;

  constructor(
    private readonly ollama: OllamaClient,
    private readonly catalog: ModelCatalog,
    private readonly state: OllamaState,
    private readonly defaultModel: string,
    private readonly ttlS: number,
    private readonly logger: Logger,
    private readonly warm?: WarmKeeper,
    private readonly pool?: UpstreamPool,
    private readonly now: () => number = Date.now,
  ) {}

  async readiness(force = false): Promise<Readiness> {
    if (!force && this.cache && this.now() - this.cache.at < this.ttlS * 1000 && !this.state.restarting) {
      return { ...this.cache.value, cached: true };
    }
    const value = await this.check();
    this.cache = { value, at: this.now() };
    if (value.status !== this.lastStatus) {
      // Log upstream health on change only.
      this.logger.log(value.status === 'ready' ? 'info' : 'warn', 'readiness changed', { status: value.status, reason: value.reason });
      this.lastStatus = value.status;
    }
    return value;
  }

  invalidate(): void {
    this.cache = undefined;
  }

  private upstreams(): Readiness['upstreams'] {
    if (!this.pool) return [];
    const serving = new Set(this.pool.serves(this.defaultModel));
    return this.pool.status().map((u) => ({ name: u.name, kind: u.kind, state: u.state, breaker: u.breaker.state, servesDefault: serving.has(u.name) }));
  }

  private async check(): Promise<Readiness> {
    const value = this.pool && !this.pool.implicit ? await this.poolCheck() : await this.ollamaCheck();
    return { ...value, upstreams: this.upstreams() };
  }

  /**
   * A pool is ready when at least one upstream that is up serves the default model. The local
   * Ollama's version and loaded state are shown when there is one; its absence is no fault.
   */
  private async poolCheck(): Promise<Omit<Readiness, 'upstreams'>> {
    const pool = this.pool!;
    await pool.refresh();
    const local = pool.ollamaMember();
    const base = this.blank();
    if (local) {
      base.ollama.version = await this.ollama.version().catch(() => null);
      base.ollama.reachable = base.ollama.version !== null;
      if (base.ollama.reachable) base.defaultModel.loaded = await this.catalog.isLoaded(this.defaultModel);
    }
    const serving = pool.serves(this.defaultModel);
    base.defaultModel.installed = pool.servedBy(this.defaultModel).length > 0;
    if (serving.length === 0) {
      const why = pool
        .status()
        .map((u) => `${u.name}: ${u.state === 'up' ? 'no such model' : u.state}`)
        .join(', ');
      return { status: 'unavailable', code: 'NO_UPSTREAM', reason: `No upstream that is up serves the default model '${this.defaultModel}' (${why})`, ...base };
    }
    return { status: 'ready', ...base };
  }

  /** What a check fills in: nothing reachable, nothing installed or loaded yet. */
  private blank() {
    return {
      ollama: { reachable: false, version: null as string | null, restarting: this.state.restarting },
      defaultModel: { name: this.defaultModel, installed: false, loaded: false, idle: this.warm?.isIdle ?? false },
      checkedAt: new Date(this.now()).toISOString(),
      cached: false,
    };
  }

  private async ollamaCheck(): Promise<Omit<Readiness, 'upstreams'>> {
    const base = this.blank();
    if (this.state.restarting) {
      return { status: 'unavailable', code: 'OLLAMA_RESTARTING', reason: 'Ollama is being restarted', ...base };
    }
    try {
      base.ollama.version = await this.ollama.version();
      base.ollama.reachable = true;
      const tags = await this.catalog.tags(true);
      base.defaultModel.installed = tags.some((t) => normalizeModelName(t.name) === normalizeModelName(this.defaultModel));
      base.defaultModel.loaded = await this.catalog.isLoaded(this.defaultModel);
    } catch (err) {
      const e = err instanceof AppError ? err : undefined;
      return { status: 'unavailable', code: e?.code ?? 'INTERNAL', reason: e?.message ?? 'readiness check failed', ...base };
    }
    if (!base.defaultModel.installed) {
      return {
        status: 'unavailable',
        code: 'MODEL_NOT_FOUND',
        reason: `The default model '${this.defaultModel}' is not installed: run \`make pull MODEL=${this.defaultModel}\``,
        ...base,
      };
    }
    if (!base.defaultModel.loaded && this.warm?.active && !this.warm.isIdle) {
      // Kick the load now rather than at the next check; callers may fall back meanwhile.
      void this.warm.warm().catch(() => undefined);
      return { status: 'warming', code: 'WARMING', reason: `Loading the default model '${this.defaultModel}' into memory`, ...base };
    }
    return { status: 'ready', ...base };
  }
}
