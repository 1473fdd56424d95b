/**
 * Admin model routes (pull, delete, load, unload) against the fake Ollama: NDJSON progress with
 * percent, a pull that fails mid-stream, validation, cache invalidation, audit lines.
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import request from 'supertest';
import { FakeOllama } from '../fakes/fake-ollama';
import { ADMIN, USER, buildAdminApp, waitFor, type AdminApp } from '../support/admin-app';
import { readNdjson } from '../support/harness';

const basic = (u: { user: string; password: string }) => `Basic ${Buffer.from(`${u.user}:${u.password}`).toString('base64')}`;

/** POSTs a pull and reads the NDJSON answer line by line, keeping when each line arrived. */
async function pullNdjson(baseUrl: string, body: unknown) {
  const { res, lines, headersAt } = await readNdjson(`${baseUrl}/admin/models/pull`, body, { authorization: basic(ADMIN) });
  return { status: res.status, contentType: res.headers.get('content-type'), headersAt, lines };
}

describe('admin model routes against the fake Ollama', () => {
  let fake: FakeOllama;
  let a: AdminApp;
  let server: Server;
  let baseUrl: string;

  beforeAll(async () => {
    fake = await FakeOllama.start({ pullDelayMs: 400 });
  });
  beforeEach(async () => {
    // No Docker here: model routes must not need it.
    a = buildAdminApp({ OLLAMA_BASE_URL: fake.url, OLLAMA_KEEP_ALIVE: '30m', NUM_CTX: '8192' }, null);
    server = a.app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    fake.requests.length = 0;
    fake.resetBehaviours();
  });
  afterEach(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  afterAll(() => fake.close());

  const admin = () => ({
    post: (p: string) => request(a.app).post(p).auth(ADMIN.user, ADMIN.password),
    del: (p: string) => request(a.app).delete(p).auth(ADMIN.user, ADMIN.password),
  });

  test('When a non-admin or anonymous caller uses the model routes, then 403 / 401 and Ollama is not called', async () => {
    await request(a.app).post('/admin/models/pull').send({ model: 'qwen3:4b' }).expect(401);
    await request(a.app).post('/admin/models/pull').auth(USER.user, USER.password).send({ model: 'qwen3:4b' }).expect(403);
    await request(a.app).delete('/admin/models/mistral:7b').auth(USER.user, USER.password).expect(403);
    await request(a.app).post('/admin/models/mistral:7b/load').auth(USER.user, USER.password).expect(403);
    expect(fake.requests).toHaveLength(0);
  });

  test('When auth is off (AUTH_USERS empty), then the admin routes stay closed (403)', async () => {
    const open = buildAdminApp({ OLLAMA_BASE_URL: fake.url, AUTH_USERS: '', ADMIN_USERS: '' }, null);
    const res = await request(open.app).post('/admin/models/pull').send({ model: 'qwen3:4b' }).expect(403);
    expect(res.body.error.message).toContain('auth is off');
    await request(open.app).post('/admin/ollama/restart').expect(403);
    expect(fake.requests).toHaveLength(0);
  });

  test('When an admin pulls a model, then progress streams as NDJSON with percent, ends in success, and the model list sees it at once', async () => {
    // Prime the model cache: the new model must show up without ?force after the pull.
    const before = await request(a.app).get('/v1/models').auth(USER.user, USER.password).expect(200);
    expect(before.body.models.map((m: { name: string }) => m.name)).not.toContain('qwen3:4b');

    const r = await pullNdjson(baseUrl, { model: 'qwen3:4b' });
    expect(r.status).toBe(200);
    expect(r.contentType).toContain('application/x-ndjson');
    const lines = r.lines.map((l) => l.line);
    expect(lines[0]).toEqual({ status: 'pulling manifest' });
    const downloads = lines.filter((l) => typeof l.total === 'number');
    expect(downloads.length).toBeGreaterThan(2);
    expect(downloads.map((l) => l.percent)).toEqual([0, 25, 50, 75, 100]);
    expect(lines.at(-1)).toEqual({ status: 'success' });
    expect(lines.some((l) => 'error' in l)).toBe(false);
    // Streamed as it came: the first line well before the last (the fake spreads 400 ms over the steps).
    expect(r.lines.at(-1)!.at - r.lines[0].at).toBeGreaterThan(150);
    expect(fake.requests.find((q) => q.path === '/api/pull')?.body).toMatchObject({ model: 'qwen3:4b', stream: true });

    const after = await request(a.app).get('/v1/models').auth(USER.user, USER.password).expect(200);
    expect(after.body.models.map((m: { name: string }) => m.name)).toContain('qwen3:4b');
    expect(a.audits()).toEqual([
      expect.objectContaining({ user: 'admin', action: 'model.pull', target: 'qwen3:4b', outcome: 'ok', durationMs: expect.any(Number) }),
    ]);
  });

  test("When the pull fails inside the stream, then the stream ends with one error line (PULL_FAILED, Ollama's message)", async () => {
    const r = await pullNdjson(baseUrl, { model: 'failing-model:1b' });
    expect(r.status).toBe(200);
    const last = r.lines.at(-1)!.line as { error: Record<string, unknown> };
    expect(r.lines[0].line).toEqual({ status: 'pulling manifest' });
    expect(last.error).toMatchObject({ code: 'PULL_FAILED', hint: expect.any(String), model: 'failing-model:1b', requestId: expect.any(String) });
    expect(last.error.message).toContain('pull model manifest: file does not exist');
    expect(r.lines.filter((l) => 'error' in l.line)).toHaveLength(1);
    expect(a.audits()).toEqual([expect.objectContaining({ action: 'model.pull', target: 'failing-model:1b', outcome: 'PULL_FAILED' })]);
  });

  test('When the admin disconnects during a pull, then the upstream pull is cancelled and the audit says aborted', async () => {
    const ac = new AbortController();
    const res = await fetch(`${baseUrl}/admin/models/pull`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: basic(ADMIN) },
      body: JSON.stringify({ model: 'slow-model:1b' }),
      signal: ac.signal,
    });
    expect(res.status).toBe(200); // headers at once
    const reader = res.body!.getReader();
    await reader.read();
    ac.abort();
    await waitFor(() => a.audits().length === 1, 3000, 'audit line');
    expect(a.audits()[0]).toMatchObject({ action: 'model.pull', target: 'slow-model:1b', outcome: 'aborted' });
    // The fake would add the model at the end of its 400 ms pull: cancelled upstream, it never does.
    await new Promise((r) => setTimeout(r, 600));
    const tags = (await (await fetch(`${fake.url}/api/tags`)).json()) as { models: Array<{ name: string }> };
    expect(tags.models.map((m) => m.name)).not.toContain('slow-model:1b');
  });

  test('When a legacy client sends {name} with stream:false, then one JSON answer comes back; a failing one is 502 PULL_FAILED', async () => {
    const ok = await admin().post('/admin/models/pull').send({ name: 'gemma3:1b', stream: false }).expect(200);
    expect(ok.body).toEqual({ model: 'gemma3:1b', status: 'success' });
    expect(fake.requests.find((q) => q.path === '/api/pull')?.body).toMatchObject({ model: 'gemma3:1b' });
    const bad = await admin().post('/admin/models/pull').send({ name: 'fail-now', stream: false }).expect(502);
    expect(bad.body.error.code).toBe('PULL_FAILED');
  });

  test.each([
    [{}, 'body'],
    [{ model: '' }, 'body.model'],
    [{ model: 'bad name;rm -rf' }, 'body.model'],
    [{ model: 'a:1', name: 'b:1' }, 'body'],
    [{ model: 'a:1', insecure: true }, 'body.insecure'],
    [{ model: 'a:1', extra: 1 }, 'body.extra'],
  ])('When the pull body is %j, then 400 VALIDATION_ERROR names %s and Ollama is not called', async (body, field) => {
    const res = await admin().post('/admin/models/pull').send(body).expect(400);
    expect(res.body.error.code).toBe('VALIDATION_ERROR');
    expect(res.body.error.fields.map((f: { field: string }) => f.field)).toContain(field);
    expect(fake.requests).toHaveLength(0);
  });

  test('When an admin deletes a model, then Ollama deletes it, the list forgets it, and an unknown one is 404 MODEL_NOT_FOUND', async () => {
    fake.addModel({ name: 'tmp-model:1b', sizeBytes: 1e9, capabilities: ['completion'] });
    await request(a.app).get('/v1/models').auth(USER.user, USER.password).expect(200);
    const res = await admin().del('/admin/models/tmp-model:1b').expect(200);
    expect(res.body).toMatchObject({ model: 'tmp-model:1b', status: 'deleted', durationMs: expect.any(Number) });
    expect(fake.requests.find((q) => q.path === '/api/delete')).toMatchObject({ method: 'DELETE', body: { model: 'tmp-model:1b' } });
    const list = await request(a.app).get('/v1/models').auth(USER.user, USER.password).expect(200);
    expect(list.body.models.map((m: { name: string }) => m.name)).not.toContain('tmp-model:1b');

    const missing = await admin().del('/admin/models/tmp-model:1b').expect(404);
    expect(missing.body.error.code).toBe('MODEL_NOT_FOUND');
    expect(a.audits().map((x) => x.outcome)).toEqual(['ok', 'MODEL_NOT_FOUND']);
  });

  test('When a model name has a namespace (slashes), then it reaches Ollama whole, as a path or URL-encoded', async () => {
    fake.addModel({ name: 'hf.co/org/repo:Q4_K_M', sizeBytes: 1e9, capabilities: ['completion'] });
    await admin().post('/admin/models/hf.co/org/repo:Q4_K_M/load').expect(200);
    expect(fake.loadedModels()).toContain('hf.co/org/repo:q4_k_m'); // the fake keys models lower-case
    await admin()
      .post(`/admin/models/${encodeURIComponent('hf.co/org/repo:Q4_K_M')}/unload`)
      .expect(200);
    await admin().del('/admin/models/hf.co/org/repo:Q4_K_M').expect(200);
    expect(fake.requests.filter((q) => q.path !== '/api/ps').map((q) => (q.body as { model: string }).model)).toEqual([
      'hf.co/org/repo:Q4_K_M',
      'hf.co/org/repo:Q4_K_M',
      'hf.co/org/repo:Q4_K_M',
    ]);
    await admin().del('/admin/models/bad%20name').expect(400);
  });

  test('When an admin loads and unloads a model, then Ollama gets an empty prompt with the configured keep_alive and num_ctx, then keep_alive 0', async () => {
    const load = await admin().post('/admin/models/mistral:7b/load').expect(200);
    expect(load.body).toMatchObject({ model: 'mistral:7b', status: 'loaded', keepAlive: '30m', durationMs: expect.any(Number) });
    expect(fake.loadedModels()).toContain('mistral:7b');
    const up = fake.requests.filter((q) => q.path === '/api/generate');
    expect(up[0].body).toMatchObject({ model: 'mistral:7b', prompt: '', keep_alive: '30m', options: { num_ctx: 8192 } });

    const ps = await request(a.app).get('/v1/models').auth(USER.user, USER.password).expect(200);
    expect(ps.body.models.find((m: { name: string }) => m.name === 'mistral:7b').loaded).toBe(true);

    const unload = await admin().post('/admin/models/mistral:7b/unload').expect(200);
    expect(unload.body).toMatchObject({ model: 'mistral:7b', status: 'unloaded' });
    expect(fake.requests.filter((q) => q.path === '/api/generate')[1].body).toMatchObject({ model: 'mistral:7b', prompt: '', keep_alive: 0 });
    expect(fake.loadedModels()).not.toContain('mistral:7b');
    const ps2 = await request(a.app).get('/v1/models').auth(USER.user, USER.password).expect(200);
    expect(ps2.body.models.find((m: { name: string }) => m.name === 'mistral:7b').loaded).toBe(false);

    expect(a.audits().map((x) => [x.action, x.target, x.outcome])).toEqual([
      ['model.load', 'mistral:7b', 'ok'],
      ['model.unload', 'mistral:7b', 'ok'],
    ]);
  });

  test('When loading a model that is not installed, then 404 MODEL_NOT_FOUND', async () => {
    const res = await admin().post('/admin/models/nope:1b/load').expect(404);
    expect(res.body.error.code).toBe('MODEL_NOT_FOUND');
  });

  test('When a restart is running, then model actions get 503 OLLAMA_RESTARTING before any Ollama call', async () => {
    a.state.beginRestart();
    const pull = await admin().post('/admin/models/pull').send({ model: 'qwen3:4b' }).expect(503);
    expect(pull.body.error.code).toBe('OLLAMA_RESTARTING');
    expect(pull.headers['retry-after']).toMatch(/^\d+$/);
    await admin().del('/admin/models/mistral:7b').expect(503);
    await admin().post('/admin/models/mistral:7b/load').expect(503);
    expect(fake.requests).toHaveLength(0);
    a.state.endRestart();
  });

  test('When Docker is not configured, then the model routes still work and the container routes answer 503 DOCKER_UNAVAILABLE', async () => {
    const res = await request(a.app).get('/admin/ollama').auth(ADMIN.user, ADMIN.password).expect(503);
    expect(res.body.error).toMatchObject({ code: 'DOCKER_UNAVAILABLE', hint: expect.stringContaining('DOCKER_HOST') });
    await admin().post('/admin/models/mistral:7b/unload').expect(200);
  });
});
