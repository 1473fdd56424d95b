/**
 * The Ollama container, through the Docker API: restart it and wait until Ollama answers again,
 * report container + Ollama state, locate it for diagnostics (GPU telemetry). Audited.
 */
import type { Config } from '../config';
import type { ContainerDetails, ContainerQuery, DockerClient } from '../clients/docker.types';
import type { OllamaClient } from '../clients/ollama.types';
import { AppError, ConflictError, DockerUnavailableError } from '../errors';
import type { Logger } from '../logger';
import { AuditLog, type Actor } from './audit-log';
import type { HealthService } from './health.service';
import { loadedModel, type LoadedModel } from './loaded-model';
import type { ModelCatalog } from './model-catalog';
import type { OllamaState } from './ollama-state';

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

export interface OllamaStatus {
  container: ContainerView;
  restarting: boolean;
  ollama:
    | { reachable: true; version: string; loadedModels: LoadedModel[] }
    | { reachable: false; version: null; loadedModels: null; error: { code: string; message: string } };
  checkedAt: string;
}

export interface OllamaContainerDeps {
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

function view(c: ContainerDetails): ContainerView {
  return { id: c.id, name: c.name, image: c.image, state: c.state, health: c.health, startedAt: c.startedAt, restartCount: c.restartCount };
}

export class OllamaContainerService {
  private readonly now: () => number;
  private readonly stopTimeoutS: number;
  private readonly pollIntervalMs: number;
  private readonly audit: AuditLog;
  private cached?: { at: number; details: Promise<ContainerDetails | null> };

  constructor(private readonly deps: OllamaContainerDeps) {
    this.now = deps.now ?? Date.now;
    this.stopTimeoutS = deps.stopTimeoutS ?? 10;
    this.pollIntervalMs = deps.pollIntervalMs ?? 250;
    this.audit = new AuditLog(deps.logger, this.now);
  }

  /** POST /admin/ollama/restart: restart the container, then wait (bounded) until Ollama answers. */
  restart(actor: Actor): Promise<RestartResult> {
    return this.audit.audited(actor, 'ollama.restart', this.containerTarget(), async (setTarget) => {
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
    return this.audit.audited(actor, 'ollama.status', this.containerTarget(), async (setTarget) => {
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

  /** The ollama container (for diagnostics such as GPU telemetry). */
  async ollamaContainer(): Promise<{ id: string; docker: DockerClient }> {
    const docker = this.docker();
    const c = await docker.findContainer(this.ollamaQuery());
    return { id: c.id, docker };
  }

  /**
   * The ollama container's inspect data for the gauges (restart count, OOM-killed): one Docker call
   * per maxAgeMs at most, whatever the scrape rate. null without Docker or without the container.
   */
  recentDetails(maxAgeMs = 15_000): Promise<ContainerDetails | null> {
    const at = this.now();
    if (!this.cached || at - this.cached.at >= maxAgeMs) {
      const docker = this.deps.docker;
      this.cached = { at, details: docker ? docker.findContainer(this.ollamaQuery()).catch(() => null) : Promise.resolve(null) };
    }
    return this.cached.details;
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
    throw new AppError(
      'RESTART_TIMEOUT',
      504,
      `The container '${containerName}' was restarted but Ollama did not answer within ${this.deps.config.docker.restartWaitS} s`,
      {
        cause: lastError,
        retryAfterS: 10,
        hint: 'It may still be starting (loading the GPU driver, a large model): check `make logs` and GET /admin/ollama, or raise RESTART_WAIT_S.',
        details: { lastError: lastError instanceof AppError ? lastError.code : undefined },
      },
    );
  }

  private invalidate(): void {
    this.deps.catalog.invalidate();
    this.deps.health.invalidate();
  }
}
