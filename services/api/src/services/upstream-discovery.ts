/**
 * Which models each upstream serves: its fixed `models`, or what `/api/tags` (ollama) or
 * `/v1/models` (openai) said last. A discovery that reaches the upstream closes its breaker; one
 * that cannot connect (or gets a 5xx) counts as a breaker failure, and the last known list stays.
 */
import type { OllamaClient, OllamaRunningModel, OllamaTag } from '../clients/ollama.types';
import { AppError, OllamaUnavailableError } from '../errors';
import { isBreakerFailure } from './circuit-breaker';
import { fixedTag, type PoolMember } from './upstream-pool.types';

/** Every upstream is asked this often, and on a miss at most every MISS_REFRESH_MS. */
export const DISCOVERY_MS = 30_000;
export const MISS_REFRESH_MS = 2_000;

export interface Discovery {
  /** null: not known yet (never answered). */
  models: Set<string> | null;
  tags: OllamaTag[];
  at: number | null;
  lastAttempt: number;
  error: string | null;
  inflight?: Promise<void>;
}

export class ModelDiscovery {
  private readonly state = new Map<string, Discovery>();

  constructor(
    private readonly members: readonly PoolMember[],
    private readonly now: () => number,
  ) {
    for (const m of members) {
      const fixed = m.config.models;
      this.state.set(m.name, { models: fixed ? new Set(fixed) : null, tags: (fixed ?? []).map(fixedTag), at: null, lastAttempt: 0, error: null });
    }
  }

  get(name: string): Discovery {
    return this.state.get(name)!;
  }

  /** Asks the discovering upstreams (all, or `names`); one call per upstream at a time. */
  async refresh(names?: string[]): Promise<void> {
    const targets = this.members.filter((m) => !m.config.models && (!names || names.includes(m.name)));
    await Promise.all(targets.map((m) => this.discover(m)));
  }

  private discover(m: PoolMember): Promise<void> {
    const d = this.get(m.name);
    if (d.inflight) return d.inflight;
    d.lastAttempt = this.now();
    d.inflight = m.client
      .tags()
      .then(
        (tags) => {
          d.models = new Set(tags.map((t) => t.name));
          d.tags = tags;
          d.at = this.now();
          d.error = null;
          m.breaker.success();
        },
        (err: unknown) => {
          d.error = err instanceof AppError ? `${err.code}: ${err.message}` : 'discovery failed';
          if (isBreakerFailure(err)) m.breaker.failure();
        },
      )
      .finally(() => {
        d.inflight = undefined;
      });
    return d.inflight;
  }

  /**
   * The model catalog's source in a pool: every model some upstream serves (the first upstream
   * listing a name gives its entry), and the running models of the local Ollama. 503 when no
   * upstream has ever answered.
   */
  catalogSource(local?: Pick<OllamaClient, 'ps'>): Pick<OllamaClient, 'tags' | 'ps'> {
    return {
      tags: async () => {
        await this.refresh();
        const seen = new Map<string, OllamaTag>();
        for (const m of this.members) for (const t of this.get(m.name).tags) if (!seen.has(t.name)) seen.set(t.name, t);
        if (seen.size === 0 && [...this.state.values()].every((d) => d.models === null)) {
          throw new OllamaUnavailableError(`No upstream answered with its models (${this.members.map((m) => m.name).join(', ')})`, { retryAfterS: 10 });
        }
        return [...seen.values()];
      },
      ps: async (): Promise<OllamaRunningModel[]> => (local ? local.ps() : []),
    };
  }
}
