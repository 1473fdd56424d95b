/**
 * The only module that knows dockerode (and docker-modem's error shapes). Every failure becomes an
 * AppError here:
 *   - no engine at DOCKER_HOST (ECONNREFUSED, ENOENT on the socket path, EACCES, timeouts) and a
 *     docker-socket-proxy refusing the call (403) → 503 DOCKER_UNAVAILABLE with a hint;
 *   - statusCode 404 → 404 CONTAINER_NOT_FOUND; 409 → 409 CONTAINER_CONFLICT; other statuses → 502 DOCKER_ERROR.
 * Each call is bounded by an AbortSignal timeout (docker-modem's own `timeout` would surface as a
 * bare "socket hang up"); a restart gets the stop timeout plus a start allowance.
 */
import type Docker from 'dockerode';
import { AppError, ConfigError, ConflictError, ContainerNotFoundError, DockerUnavailableError } from '../errors';
import type { ContainerDetails, ContainerQuery, DockerClient } from './docker.types';

export interface DockerClientOptions {
  /** DOCKER_HOST: `unix:///path/to/docker.sock`, `tcp://host:2375` (or `http://`, `https://`). */
  host: string;
  /** Bound for the small calls (list, inspect, ping). */
  requestTimeoutMs?: number;
  /** Extra time a restart may take beyond its stop timeout (the start itself). */
  startAllowanceMs?: number;
}

export type DockerEndpoint = { socketPath: string } | { protocol: 'http' | 'https'; host: string; port: number };

/** Parses DOCKER_HOST. Throws ConfigError (names the key, echoes no credentials) when it is unusable. */
export function parseDockerHost(raw: string): DockerEndpoint {
  const value = raw.trim();
  if (value.startsWith('unix://')) {
    const socketPath = value.slice('unix://'.length);
    if (!socketPath.startsWith('/')) throw new ConfigError(['DOCKER_HOST: a unix socket needs an absolute path (unix:///var/run/docker.sock)']);
    return { socketPath };
  }
  const m = /^(tcp|http|https):\/\/([^/:]+|\[[^\]]+\]):(\d{1,5})\/?$/.exec(value);
  if (m) {
    const port = Number(m[3]);
    if (port < 1 || port > 65535) throw new ConfigError(['DOCKER_HOST: port out of range']);
    return { protocol: m[1] === 'https' ? 'https' : 'http', host: m[2].replace(/^\[|\]$/g, ''), port };
  }
  throw new ConfigError(['DOCKER_HOST: must look like unix:///var/run/docker.sock or tcp://docker-socket-proxy:2375']);
}

const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ENOENT',
  'EACCES',
  'EPERM',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTSOCK',
]);

interface ModemError {
  name?: string;
  code?: string;
  statusCode?: number;
  reason?: string;
  message?: string;
  json?: unknown;
}

function engineMessage(e: ModemError): string {
  const j = e.json;
  if (j && typeof j === 'object' && 'message' in j && typeof j.message === 'string') {
    return j.message;
  }
  if (Buffer.isBuffer(j)) return j.toString('utf8').trim().slice(0, 300);
  if (typeof j === 'string') return j.trim().slice(0, 300);
  return e.reason ?? e.message ?? 'unknown error';
}

function unreachableHint(code: string, endpoint: string): string {
  switch (code) {
    case 'ENOENT':
      return `No socket at ${endpoint}. Mount the Docker socket there, or point DOCKER_HOST at the docker-socket-proxy (tcp://docker-socket-proxy:2375).`;
    case 'EACCES':
    case 'EPERM':
      return `Permission denied on ${endpoint}: run the API with the socket's group (compose group_add), or use the docker-socket-proxy.`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `The host in DOCKER_HOST (${endpoint}) does not resolve: is the docker-socket-proxy service running on the same network (\`make ps\`)?`;
    default:
      return `Nothing answers at ${endpoint}: check DOCKER_HOST and that the Docker engine or the docker-socket-proxy service is running (\`make ps\`).`;
  }
}

/** Translates a dockerode/docker-modem failure. `what` names the container for 404s. Exported for tests. */
export function mapDockerError(err: unknown, endpoint: string, what: string, timeoutMs?: number): AppError {
  if (err instanceof AppError) return err;
  const e = (err ?? {}) as ModemError;
  if (e.name === 'AbortError' || e.name === 'TimeoutError' || e.code === 'ABORT_ERR') {
    return new DockerUnavailableError(`The Docker API at ${endpoint} did not answer${timeoutMs ? ` within ${Math.round(timeoutMs / 1000)} s` : ''}`, {
      cause: err,
      retryAfterS: 10,
    });
  }
  if (typeof e.statusCode === 'number') {
    const status = e.statusCode;
    const msg = engineMessage(e);
    const details = { upstreamStatus: status };
    if (status === 404) return new ContainerNotFoundError(what, { cause: err, details });
    if (status === 401 || status === 403) {
      return new DockerUnavailableError(`The Docker API at ${endpoint} refused the call (${status})`, {
        cause: err,
        details,
        hint: 'The socket proxy answers 403 for calls outside its allowlist (docker-compose.yml: list containers, inspect and POST restart of the ollama container, nothing else).',
      });
    }
    if (status === 409) return new ConflictError('CONTAINER_CONFLICT', `Docker refused the operation on ${what}: ${msg}`, { cause: err, details });
    return new AppError('DOCKER_ERROR', 502, `Docker failed on ${what}: ${msg}`, {
      cause: err,
      details,
      hint: 'See the Docker engine logs; `docker ps -a` and `docker logs` on the host show the container state.',
    });
  }
  const code = e.code ?? '';
  if (UNREACHABLE_CODES.has(code) || /socket hang up/i.test(e.message ?? '')) {
    return new DockerUnavailableError(`The Docker API is not reachable at ${endpoint}${code ? ` (${code})` : ''}`, {
      cause: err,
      retryAfterS: 10,
      hint: unreachableHint(code, endpoint),
    });
  }
  return new AppError('DOCKER_ERROR', 502, `Unexpected failure talking to the Docker API at ${endpoint}`, { cause: err });
}

const ZERO_TIME = /^0001-01-01/;

function isoOrNull(t: unknown): string | null {
  return typeof t === 'string' && t !== '' && !ZERO_TIME.test(t) ? t : null;
}

/** Docker's inspect answer → ContainerDetails (podman's compat API gives the same fields). */
export function toDetails(info: Docker.ContainerInspectInfo): ContainerDetails {
  const state = info.State ?? ({} as Docker.ContainerInspectInfo['State']);
  const healthStatus = (state as { Health?: { Status?: string } }).Health?.Status;
  return {
    id: info.Id,
    name: String(info.Name ?? '').replace(/^\//, ''),
    image: info.Config?.Image ?? info.Image,
    imageId: info.Image,
    state: state.Status ?? (state.Running ? 'running' : 'unknown'),
    running: Boolean(state.Running),
    health: healthStatus && healthStatus !== 'none' ? healthStatus : null,
    startedAt: isoOrNull(state.StartedAt),
    finishedAt: isoOrNull(state.FinishedAt),
    restartCount: typeof info.RestartCount === 'number' ? info.RestartCount : 0,
    oomKilled: state.OOMKilled === true,
    exitCode: typeof state.ExitCode === 'number' ? state.ExitCode : null,
    labels: info.Config?.Labels ?? {},
  };
}

function describe(query: ContainerQuery): string {
  if (query.description) return query.description;
  if (query.nameOrId) return `container '${query.nameOrId}'`;
  return `labels ${Object.entries(query.labels ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(', ')}`;
}

export function createDockerClient(opts: DockerClientOptions): DockerClient {
  const target = parseDockerHost(opts.host);
  const endpoint = 'socketPath' in target ? `unix://${target.socketPath}` : `${opts.host.split('://')[0]}://${target.host}:${target.port}`;
  // dockerode (ssh2 and gRPC come with it: about 7 MB of the API's idle RSS) is loaded on the first
  // Docker call; generations never need it.
  let engine: Promise<Docker> | undefined;
  const connect = (): Promise<Docker> =>
    (engine ??= import('dockerode').then(
      ({ default: Dockerode }) =>
        new Dockerode('socketPath' in target ? { socketPath: target.socketPath } : { protocol: target.protocol, host: target.host, port: target.port }),
    ));
  const requestTimeoutMs = opts.requestTimeoutMs ?? 10_000;
  const startAllowanceMs = opts.startAllowanceMs ?? 60_000;

  async function call<T>(what: string, timeoutMs: number, fn: (docker: Docker, signal: AbortSignal) => Promise<T>): Promise<T> {
    try {
      const signal = AbortSignal.timeout(timeoutMs);
      return await fn(await connect(), signal);
    } catch (err) {
      throw mapDockerError(err, endpoint, what, timeoutMs);
    }
  }

  // The socket proxy allows inspect/restart of the ollama container by NAME only (a rule can match a
  // name, not an id): every call after the listing uses the name seen for that id.
  const names = new Map<string, string>();
  const ref = (id: string) => names.get(id) ?? id;

  async function inspect(id: string, what = `container '${id}'`): Promise<ContainerDetails> {
    const info = await call(what, requestTimeoutMs, (docker, abortSignal) => docker.getContainer(ref(id)).inspect({ abortSignal }));
    const details = toDetails(info);
    if (details.name) names.set(details.id, details.name);
    return details;
  }

  return {
    endpoint,

    async ping() {
      await call('the engine', requestTimeoutMs, (docker, abortSignal) =>
        (docker.ping as (o: { abortSignal: AbortSignal }) => Promise<unknown>)({ abortSignal }),
      );
    },

    async findContainer(query) {
      const what = describe(query);
      if (query.nameOrId) return inspect(query.nameOrId, what);
      const label = Object.entries(query.labels ?? {}).map(([k, v]) => `${k}=${v}`);
      if (label.length === 0) throw new ContainerNotFoundError(what, { hint: 'Set OLLAMA_CONTAINER or COMPOSE_PROJECT_NAME.' });
      const list = await call(what, requestTimeoutMs, (docker, abortSignal) => docker.listContainers({ all: true, filters: { label }, abortSignal }));
      if (list.length === 0) throw new ContainerNotFoundError(what);
      // Prefer a running one; several projects answering to the same labels is ambiguous.
      const running = list.filter((c) => c.State === 'running');
      const candidates = (running.length ? running : list).sort((a, b) => (a.Names?.[0] ?? '').localeCompare(b.Names?.[0] ?? ''));
      const projects = new Set(candidates.map((c) => c.Labels?.['com.docker.compose.project'] ?? ''));
      if (projects.size > 1) {
        throw new ConflictError('CONTAINER_AMBIGUOUS', `Several containers match ${what} (projects: ${[...projects].join(', ')})`, {
          hint: 'Set COMPOSE_PROJECT_NAME (or OLLAMA_CONTAINER) so the API knows which one is its Ollama.',
        });
      }
      return inspect(candidates[0].Names?.[0]?.replace(/^\//, '') || candidates[0].Id, what);
    },

    inspect: (id) => inspect(id),

    async restart(id, { stopTimeoutS }) {
      const t = Math.max(0, Math.round(stopTimeoutS));
      await call(`container '${id}'`, t * 1000 + startAllowanceMs, (docker, abortSignal) => docker.getContainer(ref(id)).restart({ t, abortSignal }));
    },
  };
}
