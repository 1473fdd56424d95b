/**
 * What the API needs from a Docker Engine API (or a docker-socket-proxy in front of it): find a
 * container, inspect it, restart it (the socket proxy allows nothing more: no exec, no create).
 * Implemented by docker.client.ts, the only module that knows dockerode.
 */

/** How to find a container: by name or id, else by labels (all must match). */
export interface ContainerQuery {
  nameOrId?: string;
  labels?: Record<string, string>;
  /** Words for error messages ("the ollama service of compose project 'x'"). */
  description?: string;
}

export interface ContainerDetails {
  id: string;
  name: string;
  /** The image as configured (e.g. `ollama/ollama:0.12.6`). */
  image: string;
  /** Image id (sha256:...). */
  imageId: string;
  /** running | exited | restarting | paused | created | dead ... */
  state: string;
  running: boolean;
  /** healthy | unhealthy | starting; null when the container has no healthcheck. */
  health: string | null;
  /** ISO time; null when never started. */
  startedAt: string | null;
  finishedAt: string | null;
  restartCount: number;
  /** State.OOMKilled: the kernel killed its last run for memory. */
  oomKilled: boolean;
  exitCode: number | null;
  labels: Record<string, string>;
}

export interface DockerClient {
  /** Where the client talks to, for messages (`unix:///var/run/docker.sock`, `tcp://proxy:2375`). */
  readonly endpoint: string;
  ping(): Promise<void>;
  /** The one container the query names; CONTAINER_NOT_FOUND (404) when none. */
  findContainer(query: ContainerQuery): Promise<ContainerDetails>;
  inspect(id: string): Promise<ContainerDetails>;
  /** Stops (SIGTERM, SIGKILL after stopTimeoutS) and starts the container; resolves when it was started. */
  restart(id: string, opts: { stopTimeoutS: number }): Promise<void>;
}
