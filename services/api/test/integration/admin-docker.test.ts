/**
 * Admin container routes against a REAL Docker Engine API: podman's API service on a unix socket
 * of this run, with an "ollama" stand-in container (compose labels, busybox httpd answering
 * /api/version after a start delay, published on 127.0.0.1). Needs root and podman (see
 * test/support/podman.ts): off CI skipped with one line without them, under CI=true failed.
 */
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { ADMIN, USER, buildAdminApp, waitFor } from '../support/admin-app';
import { STANDIN_IMAGE, describeWithPodman, freePort, startOllamaStandIn, startPodmanService, type PodmanService, type StandIn } from '../support/podman';

jest.setTimeout(60_000);

const PROJECT = `alc-test-${process.pid}`;
const PS = {
  models: [
    {
      name: 'llama3.1:8b',
      model: 'llama3.1:8b',
      size: 6_000_000_000,
      size_vram: 6_000_000_000,
      digest: 'a',
      details: {},
      expires_at: '2099-01-01T00:00:00Z',
      context_length: 4096,
    },
    { name: 'big:70b', model: 'big:70b', size: 40_000_000_000, size_vram: 10_000_000_000, digest: 'b', details: {}, expires_at: '2099-01-01T00:00:00Z' },
  ],
};

describeWithPodman('admin container routes against podman', () => {
  let engine: PodmanService;
  let standin: StandIn;
  const env = () => ({ OLLAMA_BASE_URL: standin.url, DOCKER_HOST: engine.dockerHost, COMPOSE_PROJECT_NAME: PROJECT, RESTART_WAIT_S: '20' });

  beforeAll(async () => {
    engine = await startPodmanService();
    standin = await startOllamaStandIn({ project: PROJECT, startDelayS: 1, ps: PS });
    await standin.waitUntilAnswering();
  });

  afterAll(async () => {
    await standin?.remove();
    await engine?.stop();
  });

  test('When no credentials or a non-admin user call the admin routes, then 401 / 403 and nothing is restarted', async () => {
    const { app } = buildAdminApp(env());
    const before = await standin.startedAt();
    const anon = await request(app).post('/admin/ollama/restart').expect(401);
    expect(anon.body.error.code).toBe('UNAUTHORIZED');
    const bob = await request(app).post('/admin/ollama/restart').auth(USER.user, USER.password).expect(403);
    expect(bob.body.error.code).toBe('FORBIDDEN');
    await request(app).get('/admin/ollama').auth(USER.user, USER.password).expect(403);
    expect(await standin.startedAt()).toBe(before);
  });

  test('When an admin asks for the status, then the container found by its compose labels and Ollama version/ps come back', async () => {
    const { app, audits } = buildAdminApp(env());
    const res = await request(app).get('/admin/ollama').auth(ADMIN.user, ADMIN.password).expect(200);
    expect(res.body.container).toEqual({
      id: standin.id,
      name: standin.name,
      image: STANDIN_IMAGE,
      state: 'running',
      health: null,
      startedAt: await standin.startedAt(),
      restartCount: expect.any(Number),
    });
    expect(res.body.restarting).toBe(false);
    expect(res.body.ollama).toMatchObject({ reachable: true, version: '0.0.0-standin' });
    expect(res.body.ollama.loadedModels).toEqual([
      expect.objectContaining({ name: 'llama3.1:8b', size: 6e9, sizeVram: 6e9, vramShare: 1, partlyOnCpu: false, contextLength: 4096 }),
      expect.objectContaining({ name: 'big:70b', vramShare: 0.25, partlyOnCpu: true, contextLength: null }),
    ]);
    expect(audits()).toEqual([
      expect.objectContaining({ user: 'admin', action: 'ollama.status', target: standin.name, outcome: 'ok', durationMs: expect.any(Number) }),
    ]);
  });

  test('When an admin restarts Ollama, then the container really restarts and the call returns once the stand-in answers again', async () => {
    const { app, audits, state } = buildAdminApp(env());
    const before = await standin.startedAt();

    // Probe the stand-in from outside while the restart runs: it must really go away and come back.
    const probes: Array<{ at: number; ok: boolean }> = [];
    let probing = true;
    const prober = (async () => {
      while (probing) {
        const ok = await fetch(`${standin.url}/api/version`, { signal: AbortSignal.timeout(500) }).then(
          (r) => r.ok,
          () => false,
        );
        probes.push({ at: Date.now(), ok });
        await new Promise((r) => setTimeout(r, 50));
      }
    })();

    const t0 = Date.now();
    const res = await request(app).post('/admin/ollama/restart').auth(ADMIN.user, ADMIN.password).expect(200);
    const answeredAt = Date.now();
    probing = false;
    await prober;

    const after = await standin.startedAt();
    expect(after).not.toBe(before);
    expect(Date.parse(after)).toBeGreaterThan(Date.parse(before));
    expect(res.body).toMatchObject({
      restarted: true,
      container: { id: standin.id, name: standin.name, state: 'running', startedAt: after },
      previousStartedAt: before,
      startedAt: after,
      ollama: { version: '0.0.0-standin' },
    });
    // It waited for the stand-in's start delay, and no longer than needed (RESTART_WAIT_S is 20 s).
    expect(res.body.downtimeMs).toBeGreaterThanOrEqual(standin.startDelayS * 1000);
    expect(res.body.downtimeMs).toBeLessThanOrEqual(answeredAt - t0);
    expect(res.body.restartMs).toBeLessThan(res.body.downtimeMs);
    // The stand-in really went away, was still down shortly before the API answered, and answers now:
    // the wait ended when it came back, not after a fixed sleep and not before.
    const down = probes.filter((p) => !p.ok);
    expect(down.length).toBeGreaterThan(0);
    expect(answeredAt - down[down.length - 1].at).toBeLessThan(2000); // poll interval is 250 ms; slack for a busy machine
    expect((await fetch(`${standin.url}/api/version`)).ok).toBe(true);
    expect(res.body.downtimeMs).toBeLessThan(res.body.restartMs + standin.startDelayS * 1000 + 2500);
    expect(state.restarting).toBe(false);
    expect(audits()).toEqual([expect.objectContaining({ user: 'admin', action: 'ollama.restart', target: standin.name, outcome: 'ok' })]);
    console.log(`restart: downtime ${res.body.downtimeMs} ms (docker restart ${res.body.restartMs} ms, stand-in start delay ${standin.startDelayS * 1000} ms)`);
  });

  test('When a restart is running, then a second one gets 409 RESTART_IN_PROGRESS and generation gets 503 OLLAMA_RESTARTING with Retry-After', async () => {
    const { app, state, audits } = buildAdminApp(env());
    const first = request(app)
      .post('/admin/ollama/restart')
      .auth(ADMIN.user, ADMIN.password)
      .then((r) => r);
    await waitFor(() => state.restarting, 10_000, 'restart begun');

    const second = await request(app).post('/admin/ollama/restart').auth(ADMIN.user, ADMIN.password).expect(409);
    expect(second.body.error).toMatchObject({ code: 'RESTART_IN_PROGRESS', hint: expect.any(String) });

    const gen = await request(app).post('/v1/generate').auth(USER.user, USER.password).send({ prompt: 'hello' }).expect(503);
    expect(gen.body.error.code).toBe('OLLAMA_RESTARTING');
    expect(gen.headers['retry-after']).toMatch(/^\d+$/);
    const chat = await request(app)
      .post('/v1/chat')
      .auth(USER.user, USER.password)
      .send({ messages: [{ role: 'user', content: 'hi' }], stream: true })
      .expect(503);
    expect(chat.body.error.code).toBe('OLLAMA_RESTARTING');

    const done = await first;
    expect(done.status).toBe(200);
    expect(state.restarting).toBe(false);
    expect(
      audits()
        .map((a) => a.outcome)
        .sort(),
    ).toEqual(['RESTART_IN_PROGRESS', 'ok']);
  });

  test('When Ollama does not answer within RESTART_WAIT_S, then 504 RESTART_TIMEOUT and generation is let through again', async () => {
    const { app, state } = buildAdminApp({ ...env(), RESTART_WAIT_S: '0.5' });
    const res = await request(app).post('/admin/ollama/restart').auth(ADMIN.user, ADMIN.password).expect(504);
    expect(res.body.error).toMatchObject({ code: 'RESTART_TIMEOUT', hint: expect.stringContaining('RESTART_WAIT_S') });
    expect(state.restarting).toBe(false);
    await standin.waitUntilAnswering();
  });

  test('When no container carries the labels of this compose project, or OLLAMA_CONTAINER names none, then 404 CONTAINER_NOT_FOUND with a hint', async () => {
    const other = buildAdminApp({ ...env(), COMPOSE_PROJECT_NAME: `alc-nobody-${process.pid}` });
    const res = await request(other.app).post('/admin/ollama/restart').auth(ADMIN.user, ADMIN.password).expect(404);
    expect(res.body.error).toMatchObject({ code: 'CONTAINER_NOT_FOUND', hint: expect.any(String) });
    expect(res.body.error.message).toContain(`alc-nobody-${process.pid}`);
    expect(other.state.restarting).toBe(false);
    await request(other.app).get('/admin/ollama').auth(ADMIN.user, ADMIN.password).expect(404);

    const named = buildAdminApp({ ...env(), OLLAMA_CONTAINER: 'unknown' });
    const res2 = await request(named.app).post('/admin/ollama/restart').auth(ADMIN.user, ADMIN.password).expect(404);
    expect(res2.body.error.code).toBe('CONTAINER_NOT_FOUND');
    expect(res2.body.error.message).toContain('OLLAMA_CONTAINER');
    expect(named.audits()).toEqual([expect.objectContaining({ action: 'ollama.restart', target: 'unknown', outcome: 'CONTAINER_NOT_FOUND' })]);

    // ...and by name it is found.
    const byName = buildAdminApp({ ...env(), OLLAMA_CONTAINER: standin.name, COMPOSE_PROJECT_NAME: '' });
    const ok = await request(byName.app).get('/admin/ollama').auth(ADMIN.user, ADMIN.password).expect(200);
    expect(ok.body.container.id).toBe(standin.id);
  });

  test('When COMPOSE_PROJECT_NAME is unset and two projects have an ollama service, then 409 CONTAINER_AMBIGUOUS', async () => {
    const second = await startOllamaStandIn({ project: `${PROJECT}-b`, startDelayS: 0 });
    try {
      const { app } = buildAdminApp({ ...env(), COMPOSE_PROJECT_NAME: '' });
      const res = await request(app).get('/admin/ollama').auth(ADMIN.user, ADMIN.password).expect(409);
      expect(res.body.error).toMatchObject({ code: 'CONTAINER_AMBIGUOUS', hint: expect.stringContaining('COMPOSE_PROJECT_NAME') });
    } finally {
      await second.remove();
    }
  });

  test('When DOCKER_HOST is tcp:// to a socket proxy in front of the engine, then reads work, and a restart the proxy forbids is 503 naming the allowlist', async () => {
    // An allowlist proxy like the stack's: GETs pass to podman, a POST it does not allow is 403.
    let allowPost = false;
    const proxy = http.createServer((req, res) => {
      if (req.method !== 'GET' && req.method !== 'HEAD' && !allowPost) {
        res.writeHead(403, { 'Content-Type': 'text/plain' });
        res.end('Forbidden');
        return;
      }
      const up = http.request({ socketPath: engine.socketPath, path: req.url, method: req.method, headers: req.headers }, (ur) => {
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        ur.pipe(res);
      });
      up.on('error', () => res.destroy());
      req.pipe(up);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    try {
      const port = (proxy.address() as { port: number }).port;
      const { app, state } = buildAdminApp({ ...env(), DOCKER_HOST: `tcp://127.0.0.1:${port}` });
      const status = await request(app).get('/admin/ollama').auth(ADMIN.user, ADMIN.password).expect(200);
      expect(status.body.container.id).toBe(standin.id);

      const before = await standin.startedAt();
      const denied = await request(app).post('/admin/ollama/restart').auth(ADMIN.user, ADMIN.password).expect(503);
      expect(denied.body.error).toMatchObject({ code: 'DOCKER_UNAVAILABLE', hint: expect.stringContaining('allowlist') });
      expect(state.restarting).toBe(false);
      expect(await standin.startedAt()).toBe(before);

      allowPost = true;
      const ok = await request(app).post('/admin/ollama/restart').auth(ADMIN.user, ADMIN.password).expect(200);
      expect(ok.body.previousStartedAt).toBe(before);
      expect(ok.body.startedAt).not.toBe(before);
    } finally {
      proxy.closeAllConnections();
      await new Promise((r) => proxy.close(r));
    }
  });

  describe('When the Docker API cannot be used, then 503 DOCKER_UNAVAILABLE with a hint', () => {
    test('a socket path nobody listens on', async () => {
      const sock = path.join(os.tmpdir(), `alc-nobody-${process.pid}.sock`);
      const { app, state } = buildAdminApp({ ...env(), DOCKER_HOST: `unix://${sock}` });
      const res = await request(app).post('/admin/ollama/restart').auth(ADMIN.user, ADMIN.password).expect(503);
      expect(res.body.error).toMatchObject({ code: 'DOCKER_UNAVAILABLE', hint: expect.stringContaining(sock) });
      expect(res.body.error.message).toContain('ENOENT');
      expect(state.restarting).toBe(false);
      await request(app).get('/admin/ollama').auth(ADMIN.user, ADMIN.password).expect(503);
    });

    test('a tcp endpoint that refuses connections', async () => {
      const { app } = buildAdminApp({ ...env(), DOCKER_HOST: `tcp://127.0.0.1:${await freePort()}` });
      const res = await request(app).get('/admin/ollama').auth(ADMIN.user, ADMIN.password).expect(503);
      expect(res.body.error.code).toBe('DOCKER_UNAVAILABLE');
      expect(res.body.error.message).toContain('ECONNREFUSED');
    });

    test('a docker-socket-proxy that forbids the call (403)', async () => {
      const sock = path.join(os.tmpdir(), `alc-proxy-${process.pid}.sock`);
      const proxy = http.createServer((_req, res) => {
        res.writeHead(403, { 'Content-Type': 'text/plain' });
        res.end('Forbidden');
      });
      await new Promise<void>((r) => proxy.listen(sock, r));
      try {
        const { app } = buildAdminApp({ ...env(), DOCKER_HOST: `unix://${sock}` });
        const res = await request(app).post('/admin/ollama/restart').auth(ADMIN.user, ADMIN.password).expect(503);
        expect(res.body.error).toMatchObject({ code: 'DOCKER_UNAVAILABLE', hint: expect.stringContaining('allowlist') });
      } finally {
        await new Promise((r) => proxy.close(r));
      }
    });

    test('no Docker client configured at all', async () => {
      const { app } = buildAdminApp(env(), null);
      const res = await request(app).post('/admin/ollama/restart').auth(ADMIN.user, ADMIN.password).expect(503);
      expect(res.body.error.code).toBe('DOCKER_UNAVAILABLE');
    });
  });
});
