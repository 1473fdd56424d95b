/**
 * Model management for admins: pull (with progress), delete, load and unload, through Ollama's
 * API. Audited; the model list and readiness caches are dropped after each action.
 */
import type { Config } from '../config';
import type { OllamaClient, OllamaPullProgress, StreamCallOptions } from '../clients/ollama.types';
import { AppError } from '../errors';
import type { Logger } from '../logger';
import { AuditLog, outcomeOf, type Actor } from './audit-log';
import type { HealthService } from './health.service';
import type { ModelCatalog } from './model-catalog';
import { timeoutsFor } from './model-timeouts';
import type { OllamaState } from './ollama-state';

export interface PullLine extends OllamaPullProgress {
  /** completed / total in %, one decimal, where Ollama reports both. */
  percent?: number;
}

export interface ModelActionResult {
  model: string;
  status: 'deleted' | 'loaded' | 'unloaded';
  durationMs: number;
  keepAlive?: string | number;
}

export interface ModelAdminDeps {
  config: Config;
  ollama: OllamaClient;
  state: OllamaState;
  catalog: ModelCatalog;
  health: HealthService;
  logger: Logger;
  now?: () => number;
}

export function withPercent(p: OllamaPullProgress): PullLine {
  if (typeof p.total === 'number' && p.total > 0 && typeof p.completed === 'number') {
    // One decimal; 100 only when really complete.
    const percent = p.completed >= p.total ? 100 : Math.min(99.9, Math.round((p.completed / p.total) * 1000) / 10);
    return { ...p, percent };
  }
  return { ...p };
}

export class ModelAdminService {
  private readonly now: () => number;
  private readonly audit: AuditLog;

  constructor(private readonly deps: ModelAdminDeps) {
    this.now = deps.now ?? Date.now;
    this.audit = new AuditLog(deps.logger, this.now);
  }

  /**
   * POST /admin/models/pull: checks run now (so they can still become an HTTP status); the returned
   * stream yields Ollama's progress objects with `percent`. An error inside the pull is thrown from
   * the stream (as PULL_FAILED when Ollama reported it).
   */
  pull(actor: Actor, model: string, signal?: AbortSignal, target?: OllamaClient): AsyncIterable<PullLine> {
    this.deps.state.assertAvailable();
    const started = this.now();
    const o = this.deps.config.ollama;
    const timeouts: StreamCallOptions = {
      signal,
      firstChunkTimeoutMs: o.requestTimeoutS * 1000,
      // Ollama is silent while it verifies a multi-GB blob: allow more between two lines.
      idleTimeoutMs: Math.max(o.requestTimeoutS, 300) * 1000,
    };
    return this.pullProgress(actor, model, started, timeouts, target ?? this.deps.ollama);
  }

  /** The pull's progress stream (a generator: it runs as the caller reads it). */
  private async *pullProgress(actor: Actor, model: string, started: number, timeouts: StreamCallOptions, ollama: OllamaClient): AsyncGenerator<PullLine> {
    const signal = timeouts.signal;
    let outcome = 'ok';
    let last: string | undefined;
    try {
      for await (const p of ollama.pull(model, timeouts)) {
        last = p.status;
        yield withPercent(p);
      }
      if (last !== 'success') {
        throw new AppError('PULL_FAILED', 502, `The pull of '${model}' ended without success (last status: ${last ?? 'none'})`, {
          hint: 'Retry the pull; see the ollama logs (`make logs`).',
        });
      }
    } catch (err) {
      const mapped = this.pullError(model, err);
      outcome = signal?.aborted ? 'aborted' : outcomeOf(mapped);
      throw mapped;
    } finally {
      // Also when the caller stopped reading (generator return): the pull was cancelled.
      if (outcome === 'ok' && last !== 'success') outcome = 'aborted';
      this.invalidate();
      this.audit.write(actor, 'model.pull', model, outcome, started);
    }
  }

  /** DELETE /admin/models/:name. */
  deleteModel(actor: Actor, model: string, target?: OllamaClient): Promise<ModelActionResult> {
    return this.audit.audited(actor, 'model.delete', model, async () => {
      this.deps.state.assertAvailable();
      const started = this.now();
      try {
        await (target ?? this.deps.ollama).deleteModel(model);
      } finally {
        this.invalidate();
      }
      return { model, status: 'deleted' as const, durationMs: this.now() - started };
    });
  }

  /** POST /admin/models/:name/load: warm it with the configured keep-alive and the pinned num_ctx. */
  load(actor: Actor, model: string, signal?: AbortSignal, target?: OllamaClient): Promise<ModelActionResult> {
    const keepAlive = this.deps.config.ollama.keepAlive;
    return this.setLoaded(actor, 'model.load', model, keepAlive, signal, target);
  }

  /** POST /admin/models/:name/unload: keep_alive 0 frees its VRAM now. */
  unload(actor: Actor, model: string, signal?: AbortSignal, target?: OllamaClient): Promise<ModelActionResult> {
    return this.setLoaded(actor, 'model.unload', model, 0, signal, target);
  }

  private setLoaded(
    actor: Actor,
    action: string,
    model: string,
    keepAlive: string | number,
    signal?: AbortSignal,
    target?: OllamaClient,
  ): Promise<ModelActionResult> {
    return this.audit.audited(actor, action, model, async () => {
      this.deps.state.assertAvailable();
      const timeouts = timeoutsFor(this.deps.config.ollama, model, true, signal);
      const started = this.now();
      try {
        // Same runner options as real calls, or the next real call would reload the model.
        await (target ?? this.deps.ollama).setLoaded(model, keepAlive, timeouts, { num_ctx: this.deps.config.models.numCtx });
      } finally {
        this.invalidate();
      }
      const status = keepAlive === 0 ? ('unloaded' as const) : ('loaded' as const);
      return { model, status, durationMs: this.now() - started, ...(status === 'loaded' ? { keepAlive } : {}) };
    });
  }

  private pullError(model: string, err: unknown): unknown {
    // Errors Ollama itself reported (in the stream, or as its status) become PULL_FAILED; transport errors stay.
    if (err instanceof AppError && (err.code === 'UPSTREAM_ERROR' || err.code === 'UPSTREAM_REJECTED') && err.details?.upstreamStatus !== undefined) {
      const upstream = err.message.replace(/^Ollama (failed|rejected the request): /, '');
      return new AppError('PULL_FAILED', 502, `Pulling '${model}' failed: ${upstream}`, {
        cause: err,
        hint: 'Check the name and tag (ollama.com/library), that the ollama container can reach the registry, and its free disk space.',
        details: { model },
      });
    }
    return err;
  }

  private invalidate(): void {
    this.deps.catalog.invalidate();
    this.deps.health.invalidate();
  }
}
