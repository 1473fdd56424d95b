import type { ContainerDetails, DockerClient } from '../../src/clients/docker.types';
import type { OllamaClient } from '../../src/clients/ollama.types';
import { loadConfig } from '../../src/config';
import { AppError, OllamaUnavailableError } from '../../src/errors';
import { createSilentLogger } from '../../src/logger';
import { OllamaContainerService } from '../../src/services/ollama-container.service';
import type { HealthService } from '../../src/services/health.service';
import type { ModelCatalog } from '../../src/services/model-catalog';
import { OllamaState } from '../../src/services/ollama-state';

const container = (startedAt: string): ContainerDetails => ({
  id: 'c1',
  name: 'stack-ollama-1',
  image: 'ollama/ollama:0.12.6',
  imageId: 'sha256:1',
  state: 'running',
  running: true,
  health: null,
  startedAt,
  finishedAt: null,
  restartCount: 0,
  oomKilled: false,
  exitCode: null,
  labels: {},
});

function setup(docker: Partial<DockerClient> | undefined, ollama: Partial<OllamaClient>, env: Record<string, string> = {}) {
  const config = loadConfig({ COMPOSE_PROJECT_NAME: 'stack', RESTART_WAIT_S: '1', ...env });
  const state = new OllamaState();
  const invalidated = { catalog: 0, health: 0 };
  const catalog = { invalidate: () => invalidated.catalog++ } as unknown as ModelCatalog;
  const health = { invalidate: () => invalidated.health++ } as unknown as HealthService;
  const logger = createSilentLogger();
  const audit = jest.spyOn(logger, 'info');
  const admin = new OllamaContainerService({
    config,
    ollama: ollama as OllamaClient,
    docker: docker as DockerClient | undefined,
    state,
    catalog,
    health,
    logger,
    pollIntervalMs: 20,
  });
  return { admin, state, invalidated, audit };
}

const actor = { user: 'admin', requestId: 'r1' };

describe('OllamaContainerService.restart', () => {
  test('When the Docker restart itself fails, then the error is passed on, the restart state is released and caches are dropped', async () => {
    const { admin, state, invalidated, audit } = setup(
      {
        findContainer: async () => container('2026-01-01T00:00:00Z'),
        restart: async () => {
          throw new AppError('DOCKER_ERROR', 502, 'boom');
        },
      },
      { version: async () => '1' },
    );
    await expect(admin.restart(actor)).rejects.toMatchObject({ code: 'DOCKER_ERROR' });
    expect(state.restarting).toBe(false);
    expect(invalidated).toEqual({ catalog: 1, health: 1 });
    expect(audit).toHaveBeenCalledWith(
      'audit',
      expect.objectContaining({ action: 'ollama.restart', target: 'stack-ollama-1', outcome: 'DOCKER_ERROR', requestId: 'r1' }),
    );
  });

  test('When the container is looked up by labels, then service=ollama and the compose project are asked for', async () => {
    const findContainer = jest.fn(async () => container('t'));
    const { admin } = setup({ findContainer }, { version: async () => '1', ps: async () => [] });
    await admin.status(actor);
    expect(findContainer).toHaveBeenCalledWith(
      expect.objectContaining({ labels: { 'com.docker.compose.service': 'ollama', 'com.docker.compose.project': 'stack' } }),
    );
  });

  test('When Ollama comes back after a few refused probes, then the wait ends at the first answer', async () => {
    let calls = 0;
    const { admin } = setup(
      { findContainer: async () => container('old'), restart: async () => undefined, inspect: async () => container('new') },
      {
        version: async () => {
          calls++;
          if (calls < 4) throw new OllamaUnavailableError();
          return '0.12.6';
        },
      },
    );
    const r = await admin.restart(actor);
    expect(calls).toBe(4);
    expect(r).toMatchObject({ previousStartedAt: 'old', startedAt: 'new', ollama: { version: '0.12.6' } });
    expect(r.downtimeMs).toBeLessThan(1000);
  });
});

describe('OllamaContainerService.status', () => {
  test('When Ollama does not answer, then the container is still reported, with the Ollama error inside', async () => {
    const down = async () => {
      throw new OllamaUnavailableError('Ollama is not reachable at http://ollama:11434 (ECONNREFUSED)');
    };
    const { admin } = setup({ findContainer: async () => container('t') }, { version: down, ps: down });
    const s = await admin.status(actor);
    expect(s.container.name).toBe('stack-ollama-1');
    expect(s.ollama).toEqual({
      reachable: false,
      version: null,
      loadedModels: null,
      error: { code: 'OLLAMA_UNAVAILABLE', message: expect.stringContaining('ECONNREFUSED') },
    });
  });

  test('When no Docker client is configured, then 503 DOCKER_UNAVAILABLE', async () => {
    const { admin } = setup(undefined, {});
    await expect(admin.status(actor)).rejects.toMatchObject({ code: 'DOCKER_UNAVAILABLE', status: 503 });
  });
});
