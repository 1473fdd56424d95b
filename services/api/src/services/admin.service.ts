/**
 * The admin surface: restart the Ollama container (through the Docker API) and wait until Ollama
 * answers again, report container + Ollama state, and manage models (pull, delete, load, unload).
 * Every action writes one audit line: `audit {user, action, target, outcome, durationMs}`.
 */
import type { Config } from '../config';
import type { ContainerDetails, ContainerQuery, DockerClient } from '../clients/docker.types';
import type { OllamaClient, OllamaPullProgress, OllamaRunningModel, StreamCallOptions } from '../clients/ollama.types';
import { AppError, ConflictError, DockerUnavailableError } from '../errors';
import type { Logger } from '../logger';
import type { HealthService } from './health.service';
import type { ModelCatalog } from './model-catalog.service';
import type { OllamaState } from './ollama-state';

/** Who asked: for the audit line. */
export interface Actor {
  user: string;
  requestId?: string;
}

export interface ContainerView {
  id: string;
  name: string;
  image: string;
  state: string;
  health: string | null;
  startedAt: string | null;
  restartCount: number;
}

export interface RestartResult {
  restarted: true;
  container: ContainerView;
  previousStartedAt: string | null;
  startedAt: string | null;
  /** From the restart call until Ollama answered again. */
  downtimeMs: number;
  /** Of which: the Docker restart (stop + start). */
  restartMs: number;
  ollama: { version: string };
}

export interface LoadedModel {
  name: string;
  size: number;
  sizeVram: number;
  /** size_vram / size, 0..1; null when size is unknown. */
  vramShare: number | null;
  /** Part of the model runs on the CPU (size_vram < size): slow, and a sign VRAM is short. */
  partlyOnCpu: boolean;
  contextLength: number | null;
  expiresAt: string | null;
}

export interface OllamaStatus {
  container: ContainerView;
  restarting: boolean;
  ollama:
    | { reachable: true; version: string; loadedModels: LoadedModel[] }
    | { reachable: false; version: null; loadedModels: null; error: { code: string; message: string } };
  checkedAt: string;
}

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

export interface AdminDeps {
  config: Config;
  ollama: OllamaClient;
  docker?: DockerClient;
  state: OllamaState;
  catalog: ModelCatalog;
  health: HealthService;
  logger: Logger;
  /** Seconds Docker waits after SIGTERM before SIGKILL on restart (Docker's default: 10). */
  stopTimeoutS?: number;
  /** Pause between two "does Ollama answer?" probes after a restart. */
  pollIntervalMs?: number;
  now?: () => number;
}

const round3 = (n: number) => Math.round(n * 1000) / 1000;

function view(c: ContainerDetails): ContainerView {
  return { id: c.id, name: c.name, image: c.image, state: c.state, health: c.health, startedAt: c.startedAt, restartCount: c.restartCount };
}

function outcomeOf(err: unknown): string {
  return err instanceof AppError ? err.code : 'INTERNAL';
}

export function loadedModel(m: OllamaRunningModel): LoadedModel {
  const size = m.size ?? 0;
  const sizeVram = m.size_vram ?? 0;
  return {
    name: m.name,
    size,
    sizeVram,
    vramShare: size > 0 ? round3(sizeVram / size) : null,
    partlyOnCpu: size > 0 && sizeVram < size,
    contextLength: m.context_length ?? null,
    expiresAt: m.expires_at ?? null,
  };
}

export function withPercent(p: OllamaPullProgress): PullLine {
  if (typeof p.total === 'number' && p.total > 0 && typeof p.completed === 'number') {
    // One decimal; 100 only when really complete.
    const percent = p.completed >= p.total ? 100 : Math.min(99.9, Math.round((p.completed / p.total) * 1000) / 10);
    return { ...p, percent };
  }
  return { ...p };
}

export class AdminService {
  private readonly now: () => number;
  private readonly stopTimeoutS: number;
  private readonly pollIntervalMs: number;

  constructor(private readonly deps: AdminDeps) {
    this.now = deps.now ?? Date.now;
    this.stopTimeoutS = deps.stopTimeoutS ?? 10;
    this.pollIntervalMs = deps.pollIntervalMs ?? 250;
  }

  // --- container -------------------------------------------------------------------------------

  /** POST /admin/ollama/restart: restart the container, then wait (bounded) until Ollama answers. */
  restart(actor: Actor): Promise<RestartResult> {
    return this.audited(actor, 'ollama.restart', this.containerTarget(), async (setTarget) => {
      this.assertNoRestart();
      const docker = this.docker();
      const before = await docker.findContainer(this.ollamaQuery());
      setTarget(before.name);
      if (!this.deps.state.beginRestart()) this.assertNoRestart(true);
      const started = this.now();
      try {
        await docker.restart(before.id, { stopTimeoutS: this.stopTimeoutS });
        const restartMs = this.now() - started;
        const version = await this.waitForOllama(started, before.name);
        const downtimeMs = this.now() - started;
        const after = await docker.inspect(before.id);
        return {
          restarted: true as const,
          container: view(after),
          previousStartedAt: before.startedAt,
          startedAt: after.startedAt,
          downtimeMs,
          restartMs,
          ollama: { version },
        };
      } finally {
        this.deps.state.endRestart();
        this.invalidate();
      }
    });
  }

  /** GET /admin/ollama: the container (Docker errors propagate) and Ollama (best effort). */
  status(actor: Actor): Promise<OllamaStatus> {
    return this.audited(actor, 'ollama.status', this.containerTarget(), async (setTarget) => {
      const container = await this.docker().findContainer(this.ollamaQuery());
      setTarget(container.name);
      const signal = AbortSignal.timeout(Math.max(this.deps.config.ollama.connectTimeoutMs, 5_000));
      let ollama: OllamaStatus['ollama'];
      try {
        const [version, ps] = await Promise.all([this.deps.ollama.version(signal), this.deps.ollama.ps(signal)]);
        ollama = { reachable: true, version, loadedModels: ps.map(loadedModel) };
      } catch (err) {
        const e = err instanceof AppError ? err : new AppError('OLLAMA_UNAVAILABLE', 503, 'Ollama did not answer');
        ollama = { reachable: false, version: null, loadedModels: null, error: { code: e.code, message: e.message } };
      }
      return { container: view(container), restarting: this.deps.state.restarting, ollama, checkedAt: new Date(this.now()).toISOString() };
    });
  }

  // --- models ----------------------------------------------------------------------------------

  /**
   * POST /admin/models/pull: checks run now (so they can still become an HTTP status); the returned
   * stream yields Ollama's progress objects with `percent`. An error inside the pull is thrown from
   * the stream (as PULL_FAILED when Ollama reported it).
   */
  pull(actor: Actor, model: string, signal?: AbortSignal): AsyncIterable<PullLine> {
    this.deps.state.assertAvailable();
    const started = this.now();
    const o = this.deps.config.ollama;
    const timeouts: StreamCallOptions = {
      signal,
      firstChunkTimeoutMs: o.requestTimeoutS * 1000,
      // Ollama is silent while it verifies a multi-GB blob: allow more between two lines.
      idleTimeoutMs: Math.max(o.requestTimeoutS, 300) * 1000,
    };
    const self = this;
    return (async function* () {
      let outcome = 'ok';
      let last: string | undefined;
      try {
        for await (const p of self.deps.ollama.pull(model, timeouts)) {
          last = p.status;
          yield withPercent(p);
        }
        if (last !== 'success') {
          throw new AppError('PULL_FAILED', 502, `The pull of '${model}' ended without success (last status: ${last ?? 'none'})`, {
            hint: 'Retry the pull; see the ollama logs (`make logs`).',
          });
        }
      } catch (err) {
        const mapped = self.pullError(model, err);
        outcome = signal?.aborted ? 'aborted' : outcomeOf(mapped);
        throw mapped;
      } finally {
        // Also when the caller stopped reading (generator return): the pull was cancelled.
        if (outcome === 'ok' && last !== 'success') outcome = 'aborted';
        self.invalidate();
        self.audit(actor, 'model.pull', model, outcome, started);
      }
    })();
  }

  /** DELETE /admin/models/:name. */
  deleteModel(actor: Actor, model: string): Promise<ModelActionResult> {
    return this.audited(actor, 'model.delete', model, async () => {
      this.deps.state.assertAvailable();
      const started = this.now();
      try {
        await this.deps.ollama.deleteModel(model);
      } finally {
        this.invalidate();
      }
      return { model, status: 'deleted' as const, durationMs: this.now() - started };
    });
  }

  /** POST /admin/models/:name/load: warm it with the configured keep-alive and the pinned num_ctx. */
  load(actor: Actor, model: string, signal?: AbortSignal): Promise<ModelActionResult> {
    const keepAlive = this.deps.config.ollama.keepAlive;
    return this.setLoaded(actor, 'model.load', model, keepAlive, signal);
  }

  /** POST /admin/models/:name/unload: keep_alive 0 frees its VRAM now. */
  unload(actor: Actor, model: string, signal?: AbortSignal): Promise<ModelActionResult> {
    return this.setLoaded(actor, 'model.unload', model, 0, signal);
  }

  // --- internals -------------------------------------------------------------------------------

  private setLoaded(actor: Actor, action: string, model: string, keepAlive: string | number, signal?: AbortSignal): Promise<ModelActionResult> {
    return this.audited(actor, action, model, async () => {
      this.deps.state.assertAvailable();
      const o = this.deps.config.ollama;
      const perModelS = o.modelTimeoutsS[model] ?? o.modelTimeoutsS[model.replace(/:latest$/, '')] ?? o.requestTimeoutS;
      const timeouts: StreamCallOptions = { signal, firstChunkTimeoutMs: (perModelS + o.loadAllowanceS) * 1000, idleTimeoutMs: perModelS * 1000 };
      const started = this.now();
      try {
        // Same runner options as real calls, or the next real call would reload the model.
        await this.deps.ollama.setLoaded(model, keepAlive, timeouts, { num_ctx: this.deps.config.models.numCtx });
      } finally {
        this.invalidate();
      }
      const status = keepAlive === 0 ? ('unloaded' as const) : ('loaded' as const);
      return { model, status, durationMs: this.now() - started, ...(status === 'loaded' ? { keepAlive } : {}) };
    });
  }

  /** The ollama container (for diagnostics such as GPU telemetry). */
  async ollamaContainer(): Promise<{ id: string; docker: DockerClient }> {
    const docker = this.docker();
    const c = await docker.findContainer(this.ollamaQuery());
    return { id: c.id, docker };
  }

  private docker(): DockerClient {
    if (!this.deps.docker) {
      throw new DockerUnavailableError('Docker access is not configured for this API', {
        hint: 'Set DOCKER_HOST (e.g. tcp://docker-socket-proxy:2375) and check the API logs at start-up.',
      });
    }
    return this.deps.docker;
  }

  private ollamaQuery(): ContainerQuery {
    const d = this.deps.config.docker;
    if (d.ollamaContainer) return { nameOrId: d.ollamaContainer, description: `container '${d.ollamaContainer}' (OLLAMA_CONTAINER)` };
    const labels: Record<string, string> = { 'com.docker.compose.service': 'ollama' };
    if (d.composeProject) labels['com.docker.compose.project'] = d.composeProject;
    return {
      labels,
      description: d.composeProject ? `the ollama service of compose project '${d.composeProject}'` : 'a container of a compose service named ollama',
    };
  }

  private containerTarget(): string {
    const d = this.deps.config.docker;
    return d.ollamaContainer || `ollama${d.composeProject ? `@${d.composeProject}` : ''}`;
  }

  private assertNoRestart(force = false): void {
    if (force || this.deps.state.restarting) {
      throw new ConflictError('RESTART_IN_PROGRESS', 'A restart of Ollama is already running', {
        retryAfterS: 10,
        hint: 'Wait for it to finish; GET /admin/ollama shows the container state.',
      });
    }
  }

  /** Polls Ollama's version until it answers, at most RESTART_WAIT_S after `started`. */
  private async waitForOllama(started: number, containerName: string): Promise<string> {
    const waitMs = this.deps.config.docker.restartWaitS * 1000;
    const deadline = started + waitMs;
    let lastError: unknown;
    for (;;) {
      const left = deadline - this.now();
      if (left <= 0) break;
      try {
        return await this.deps.ollama.version(AbortSignal.timeout(Math.min(left, 2_000)));
      } catch (err) {
        lastError = err;
      }
      const pause = Math.min(this.pollIntervalMs, deadline - this.now());
      if (pause > 0) await new Promise((r) => setTimeout(r, pause));
    }
    throw new AppError('RESTART_TIMEOUT', 504, `The container '${containerName}' was restarted but Ollama did not answer within ${this.deps.config.docker.restartWaitS} s`, {
      cause: lastError,
      retryAfterS: 10,
      hint: 'It may still be starting (loading the GPU driver, a large model): check `make logs` and GET /admin/ollama, or raise RESTART_WAIT_S.',
      details: { lastError: lastError instanceof AppError ? lastError.code : undefined },
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

  private audit(actor: Actor, action: string, target: string, outcome: string, started: number): void {
    this.deps.logger.info('audit', {
      user: actor.user,
      action,
      target,
      outcome,
      durationMs: this.now() - started,
      ...(actor.requestId ? { requestId: actor.requestId } : {}),
    });
  }

  private async audited<T>(actor: Actor, action: string, target: string, fn: (setTarget: (t: string) => void) => Promise<T>): Promise<T> {
    const started = this.now();
    let tgt = target;
    try {
      const r = await fn((t) => {
        tgt = t;
      });
      this.audit(actor, action, tgt, 'ok', started);
      return r;
    } catch (err) {
      this.audit(actor, action, tgt, outcomeOf(err), started);
      throw err;
    }
  }
}
