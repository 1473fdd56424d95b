/**
 * The installed and loaded models, cached: validates model names before any generation (unknown
 * models are refused from the cached list, without a round trip per request), resolves aliases
 * and the default, and tells whether a model is loaded (a cold one gets the load allowance).
 */
import type { Config } from '../config';
import { ModelNotFoundError, OllamaUnavailableError } from '../errors';
import type { OllamaClient, OllamaRunningModel, OllamaTag } from '../clients/ollama.types';
import { loadedModel } from './loaded-model';

export interface ModelInfo {
  name: string;
  size: number;
  family: string | null;
  parameterSize: string | null;
  quantization: string | null;
  modifiedAt: string;
  capabilities: string[] | null;
  loaded: boolean;
  /** Share of the loaded model in VRAM, 0..1 (below 1 = partly on CPU, slow). */
  vramShare: number | null;
  expiresAt: string | null;
}

interface Cached<T> {
  value: T;
  at: number;
}

/** A name without a tag means `:latest`, as in Ollama. */
export function normalizeModelName(name: string): string {
  const lastSegment = name.slice(name.lastIndexOf('/') + 1);
  return lastSegment.includes(':') ? name : `${name}:latest`;
}

/** Refetch the list on a miss at most this often (a just-pulled model shows up; no storm on typos). */
const MISS_REFRESH_MS = 2_000;
const PS_TTL_MS = 5_000;

export class ModelCatalog {
  private tagsCache?: Cached<OllamaTag[]>;
  private psCache?: Cached<OllamaRunningModel[]>;
  private lastMissRefresh = 0;
  private inflightTags?: Promise<OllamaTag[]>;

  constructor(
    /** An Ollama, or in a pool the pool's view of every upstream (UpstreamPool.catalogSource). */
    private readonly ollama: Pick<OllamaClient, 'tags' | 'ps'>,
    private readonly models: Config['models'],
    private readonly now: () => number = Date.now,
  ) {}

  /** Alias → model; empty → the default (or the embedding default). */
  resolve(name: string | undefined, kind: 'chat' | 'embed' | 'vision' = 'chat'): string {
    const fallback = kind === 'embed' ? this.models.embed : kind === 'vision' ? this.models.vision : this.models.default;
    const requested = name?.trim() || fallback;
    return this.models.aliases[requested] ?? requested;
  }

  async tags(force = false): Promise<OllamaTag[]> {
    const fresh = this.tagsCache && this.now() - this.tagsCache.at < this.models.cacheTtlS * 1000;
    if (!force && fresh) return this.tagsCache!.value;
    if (!this.inflightTags) {
      this.inflightTags = this.ollama
        .tags()
        .then((value) => {
          this.tagsCache = { value, at: this.now() };
          return value;
        })
        .finally(() => {
          this.inflightTags = undefined;
        });
    }
    return this.inflightTags;
  }

  async running(force = false): Promise<OllamaRunningModel[]> {
    if (!force && this.psCache && this.now() - this.psCache.at < PS_TTL_MS) return this.psCache.value;
    const value = await this.ollama.ps();
    this.psCache = { value, at: this.now() };
    return value;
  }

  /** Throws MODEL_NOT_FOUND (404) unless the model is installed; returns its tag entry. */
  async ensureInstalled(model: string): Promise<OllamaTag> {
    const wanted = normalizeModelName(model);
    const find = (list: OllamaTag[]) => list.find((t) => normalizeModelName(t.name) === wanted);
    let hit = find(await this.tags());
    if (!hit && this.now() - this.lastMissRefresh > MISS_REFRESH_MS) {
      this.lastMissRefresh = this.now();
      hit = find(await this.tags(true));
    }
    if (!hit) throw new ModelNotFoundError(model);
    return hit;
  }

  /** Best effort: unknown (Ollama down for ps) counts as not loaded, which only widens a timeout. */
  async isLoaded(model: string): Promise<boolean> {
    try {
      return await this.loaded(model);
    } catch {
      return false;
    }
  }

  /**
   * Before a call to the local Ollama: is the model loaded (for its timeouts)? As isLoaded, except
   * that an Ollama that cannot be reached at all is the answer now (503 OLLAMA_UNAVAILABLE): the call
   * would fail the same way, after the same connect timeout again (a name its DNS does not answer
   * costs the whole connect timeout: the smoke run saw 4 s for one 503, twice 2 s).
   */
  async isLoadedBeforeCall(model: string): Promise<boolean> {
    try {
      return await this.loaded(model);
    } catch (err) {
      if (err instanceof OllamaUnavailableError) throw err;
      return false;
    }
  }

  private async loaded(model: string): Promise<boolean> {
    const wanted = normalizeModelName(model);
    return (await this.running()).some((m) => normalizeModelName(m.name) === wanted);
  }

  /** Forget what we know (after a pull, delete, load, unload or restart). */
  invalidate(): void {
    this.tagsCache = undefined;
    this.psCache = undefined;
  }

  markLoaded(model: string): void {
    // A successful generation proves the model is loaded now; the next ps refresh confirms.
    if (this.psCache && !this.psCache.value.some((m) => normalizeModelName(m.name) === normalizeModelName(model))) {
      this.psCache = undefined;
    }
  }

  async list(force = false): Promise<ModelInfo[]> {
    const [tags, running] = await Promise.all([this.tags(force), this.running(force).catch(() => [] as OllamaRunningModel[])]);
    return tags.map((t) => {
      const found = running.find((r) => normalizeModelName(r.name) === normalizeModelName(t.name));
      const ps = found ? loadedModel(found) : undefined;
      return {
        name: t.name,
        size: t.size,
        family: t.details?.family ?? null,
        parameterSize: t.details?.parameter_size ?? null,
        quantization: t.details?.quantization_level ?? null,
        modifiedAt: t.modified_at,
        capabilities: t.capabilities ?? null,
        loaded: Boolean(ps),
        vramShare: ps?.vramShare ?? null,
        expiresAt: ps?.expiresAt ?? null,
      };
    });
  }
}
