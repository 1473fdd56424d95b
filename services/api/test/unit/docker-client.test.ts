import { mapDockerError, parseDockerHost, toDetails } from '../../src/clients/docker.client';
import { ConfigError } from '../../src/errors';
import { loadedModel } from '../../src/services/loaded-model';
import { withPercent } from '../../src/services/model-admin.service';

describe('parseDockerHost', () => {
  test.each([
    ['unix:///var/run/docker.sock', { socketPath: '/var/run/docker.sock' }],
    ['tcp://docker-socket-proxy:2375', { protocol: 'http', host: 'docker-socket-proxy', port: 2375 }],
    ['tcp://127.0.0.1:2375/', { protocol: 'http', host: '127.0.0.1', port: 2375 }],
    ['https://docker.internal:2376', { protocol: 'https', host: 'docker.internal', port: 2376 }],
    ['tcp://[::1]:2375', { protocol: 'http', host: '::1', port: 2375 }],
  ])('When DOCKER_HOST is %s, then it is understood', (raw, expected) => {
    expect(parseDockerHost(raw)).toEqual(expected);
  });

  test.each(['unix://relative.sock', 'tcp://proxy', 'ssh://user@host', '/var/run/docker.sock', 'tcp://h:99999'])(
    'When DOCKER_HOST is %s, then a ConfigError names the key',
    (raw) => {
      expect(() => parseDockerHost(raw)).toThrow(ConfigError);
      expect(() => parseDockerHost(raw)).toThrow(/DOCKER_HOST/);
    },
  );
});

describe('mapDockerError', () => {
  const ep = 'unix:///x.sock';
  test.each([
    [{ code: 'ECONNREFUSED' }, 503, 'DOCKER_UNAVAILABLE'],
    [{ code: 'ENOENT' }, 503, 'DOCKER_UNAVAILABLE'],
    [{ code: 'EACCES' }, 503, 'DOCKER_UNAVAILABLE'],
    [{ name: 'TimeoutError' }, 503, 'DOCKER_UNAVAILABLE'],
    [{ statusCode: 403, json: Buffer.from('Forbidden') }, 503, 'DOCKER_UNAVAILABLE'],
    [{ statusCode: 404, json: { message: 'no such container' } }, 404, 'CONTAINER_NOT_FOUND'],
    [{ statusCode: 409, json: { message: 'container is paused' } }, 409, 'CONTAINER_CONFLICT'],
    [{ statusCode: 500, json: { message: 'boom' } }, 502, 'DOCKER_ERROR'],
    [new Error('weird'), 502, 'DOCKER_ERROR'],
  ])('When dockerode fails with %p, then %i %s', (err, status, code) => {
    const e = mapDockerError(err, ep, "container 'ollama'");
    expect(e.status).toBe(status);
    expect(e.code).toBe(code);
    if (status === 503) expect(e.hint).toBeTruthy();
  });

  test('When the socket is missing, then the hint names the path and the proxy', () => {
    expect(mapDockerError({ code: 'ENOENT' }, ep, 'x').hint).toMatch(/No socket at unix:\/\/\/x\.sock.*docker-socket-proxy/);
  });
});

describe('toDetails', () => {
  test('When inspect data comes from the engine, then name loses its slash, zero times become null, health is read', () => {
    const d = toDetails({
      Id: 'abc',
      Name: '/stack-ollama-1',
      Image: 'sha256:1',
      Config: { Image: 'ollama/ollama:0.12.6', Labels: { a: 'b' } },
      State: {
        Status: 'exited',
        Running: false,
        StartedAt: '2026-01-01T00:00:00Z',
        FinishedAt: '0001-01-01T00:00:00Z',
        ExitCode: 137,
        OOMKilled: true,
        Health: { Status: 'unhealthy' },
      },
      RestartCount: 2,
    } as never);
    expect(d).toMatchObject({
      id: 'abc',
      name: 'stack-ollama-1',
      image: 'ollama/ollama:0.12.6',
      imageId: 'sha256:1',
      state: 'exited',
      running: false,
      health: 'unhealthy',
      startedAt: '2026-01-01T00:00:00Z',
      finishedAt: null,
      restartCount: 2,
      oomKilled: true,
      exitCode: 137,
    });
  });
});

describe('admin view helpers', () => {
  test('When a model is partly in VRAM, then vramShare < 1 and partlyOnCpu', () => {
    expect(loadedModel({ name: 'm', model: 'm', size: 200, size_vram: 50, digest: '', details: {}, expires_at: 'x' })).toMatchObject({
      vramShare: 0.25,
      partlyOnCpu: true,
    });
    expect(loadedModel({ name: 'm', model: 'm', size: 200, size_vram: 200, digest: '', details: {}, expires_at: 'x' })).toMatchObject({
      vramShare: 1,
      partlyOnCpu: false,
    });
  });

  test('When pull progress has total and completed, then percent is added, 100 only when complete', () => {
    expect(withPercent({ status: 'pulling x', total: 3, completed: 1 }).percent).toBe(33.3);
    expect(withPercent({ status: 'pulling x', total: 10_000, completed: 9_999 }).percent).toBe(99.9);
    expect(withPercent({ status: 'pulling x', total: 10, completed: 10 }).percent).toBe(100);
    expect(withPercent({ status: 'verifying sha256 digest' })).toEqual({ status: 'verifying sha256 digest' });
  });
});
