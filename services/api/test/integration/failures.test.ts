import request from 'supertest';
import { closedPortUrl, readNdjson, startHarness, type Harness } from '../support/harness';
import { FakeOllama } from '../fakes/fake-ollama';
import { createApp } from '../../src/app';
import { createClients, createServices } from '../../src/composition';
import { createOllamaClient } from '../../src/clients/ollama.client';
import { loadConfig } from '../../src/config';
import { OllamaUnavailableError } from '../../src/errors';
import { createSilentLogger } from '../../src/logger';

describe('local failures, each with its own code, status and hint', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ MODEL_TIMEOUTS: 'mistral:7b=1', MODEL_LOAD_TIMEOUT_S: '0' });
  });
  afterAll(() => h.close());
  beforeEach(() => {
    h.fake.resetBehaviours();
    h.fake.requests.length = 0;
  });

  test('When Ollama is down (connection refused), then 503 OLLAMA_UNAVAILABLE with Retry-After, fast', async () => {
    const url = await closedPortUrl();
    const config = loadConfig({ OLLAMA_BASE_URL: url, RATE_LIMIT_PER_MIN: '0' });
    const logger = createSilentLogger();
    const ollama = createOllamaClient({ baseUrl: url, requestTimeoutMs: 2000, retries: 2 });
    const app = createApp({ config, logger, services: createServices(config, createClients(config, logger, { ollama, docker: undefined }), logger) });
    const t0 = Date.now();
    const res = await request(app).post('/v1/generate').send({ prompt: 'hi' }).expect(503);
    const elapsed = Date.now() - t0;
    expect(res.body.error).toMatchObject({ code: 'OLLAMA_UNAVAILABLE', hint: expect.stringContaining('fall back') });
    expect(res.headers['retry-after']).toBe('10');
    expect(res.body.error.requestId).toBe(res.headers['x-request-id']);
    // Connection refused is not retried: the caller can fall back at once.
    expect(elapsed).toBeLessThan(500); // two retries would take 600 ms or more
    const ready = await request(app).get('/ready').expect(503);
    expect(ready.body).toMatchObject({ status: 'unavailable', code: 'OLLAMA_UNAVAILABLE', ollama: { reachable: false } });
    await request(app).get('/health').expect(200);
  });

  test('When Ollama stops after the model list was read, then a streamed request gets a real 503 (not 200 + an error line), like a non-streamed one', async () => {
    const fake = await FakeOllama.start({});
    const config = loadConfig({ OLLAMA_BASE_URL: fake.url, RATE_LIMIT_PER_MIN: '0', MODELS_CACHE_TTL_S: '600' });
    const logger = createSilentLogger();
    const ollama = createOllamaClient({ baseUrl: fake.url, requestTimeoutMs: 2000, retries: 0 });
    const app = createApp({ config, logger, services: createServices(config, createClients(config, logger, { ollama, docker: undefined }), logger) });
    await request(app).post('/v1/generate').send({ prompt: 'warm the model list' }).expect(200);
    await fake.close();
    for (const path of ['/v1/generate', '/v1/chat']) {
      const body = path === '/v1/generate' ? { prompt: 'hi', stream: true } : { messages: [{ role: 'user', content: 'hi' }], stream: true };
      const res = await request(app).post(path).send(body).expect(503);
      expect(res.headers['content-type']).toMatch(/application\/json/);
      expect(res.body.error.code).toBe('OLLAMA_UNAVAILABLE');
      expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    }
    const native = await request(app)
      .post('/ollama/api/chat')
      .send({ model: 'llama3.1:8b', messages: [{ role: 'user', content: 'hi' }] })
      .expect(503);
    expect(native.body.error).toEqual(expect.any(String));
    const openai = await request(app)
      .post('/openai/v1/chat/completions')
      .send({ model: 'llama3.1:8b', stream: true, messages: [{ role: 'user', content: 'hi' }] })
      .expect(503);
    expect(openai.body.error.code).toBe('OLLAMA_UNAVAILABLE');
  });

  test('When Ollama cannot be reached, then the 503 comes from the first attempt (the loaded-model check), without a second connect for the generation', async () => {
    // ps is the check that sizes the timeouts; an unreachable Ollama (a name its DNS drops costs the
    // whole connect timeout) must not be tried a second time for the generation itself.
    const calls = { ps: 0, generate: 0 };
    const unreachable = await startHarness({ MODELS_CACHE_TTL_S: '600' }, {}, (c) => ({
      ...c,
      ps: async () => {
        calls.ps++;
        throw new OllamaUnavailableError('Ollama is not reachable (ECONNECTTIMEOUT)');
      },
      generate: (req, opts) => {
        calls.generate++;
        return c.generate(req, opts);
      },
    }));
    try {
      for (const stream of [false, true]) {
        const res = await request(unreachable.app).post('/v1/generate').send({ prompt: 'hi', stream }).expect(503);
        expect(res.body.error.code).toBe('OLLAMA_UNAVAILABLE');
      }
      expect(calls.ps).toBeGreaterThanOrEqual(2);
      expect(calls.generate).toBe(0);
      expect(unreachable.fake.requests.filter((r) => r.path === '/api/generate')).toHaveLength(0);
      await request(unreachable.app).get('/health').expect(200); // the status checks stay best effort
    } finally {
      await unreachable.close();
    }
  });

  test('When the model is not pulled, then 404 MODEL_NOT_FOUND with the pull command, before any generation', async () => {
    const res = await request(h.app).post('/v1/generate').send({ prompt: 'hi', model: 'qwen2:7b' }).expect(404);
    expect(res.body.error.code).toBe('MODEL_NOT_FOUND');
    expect(res.body.error.hint).toContain('make pull MODEL=qwen2:7b');
    expect(h.fake.requests.filter((r) => r.path === '/api/generate')).toHaveLength(0);
  });

  test('When Ollama itself says the model is gone (deleted after our cache), then 404 MODEL_NOT_FOUND too', async () => {
    h.fake.setBehaviour('llama3.1:8b', { kind: 'reject', status: 404, error: "model 'llama3.1:8b' not found" });
    const res = await request(h.app)
      .post('/v1/chat')
      .send({ messages: [{ role: 'user', content: 'hi' }] })
      .expect(404);
    expect(res.body.error.code).toBe('MODEL_NOT_FOUND');
  });

  test('When the model does not answer within its timeout, then 504 UPSTREAM_TIMEOUT and the upstream call is aborted', async () => {
    h.fake.setBehaviour('mistral:7b', { kind: 'hang' });
    const t0 = Date.now();
    const res = await request(h.app).post('/v1/generate').send({ prompt: 'hi', model: 'mistral:7b' }).expect(504);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    expect(res.body.error.code).toBe('UPSTREAM_TIMEOUT');
    await h.fake.waitFor(() => h.fake.stats.active === 0);
  });

  test('When a stream stalls mid-answer, then it ends with a final UPSTREAM_TIMEOUT line', async () => {
    h.fake.setBehaviour('mistral:7b', { kind: 'stall-after', chunks: 2 });
    const base = await h.listen();
    const { res, lines } = await readNdjson(`${base}/v1/generate`, { prompt: 'hi', model: 'mistral:7b', stream: true });
    expect(res.status).toBe(200);
    expect(lines.length).toBe(3);
    expect(lines[2].line).toMatchObject({ error: { code: 'UPSTREAM_TIMEOUT' } });
  });

  test.each([
    ['llama-server reported out-of-memory during startup: cudaMalloc failed: out of memory'],
    ['model requires more system memory (10.2 GiB) than is available (7.6 GiB)'],
  ])('When Ollama runs out of memory (%s), then 503 INSUFFICIENT_MEMORY with a suggestion', async (message) => {
    h.fake.setBehaviour('llama3.1:8b', { kind: 'oom', message });
    const res = await request(h.app).post('/v1/generate').send({ prompt: 'hi' }).expect(503);
    expect(res.body.error.code).toBe('INSUFFICIENT_MEMORY');
    expect(res.body.error.hint).toMatch(/smaller model|NUM_CTX/);
    expect(res.headers['retry-after']).toBe('30');
  });

  test("When Ollama's own queue is full, then 503 QUEUE_FULL with Retry-After", async () => {
    h.fake.setBehaviour('llama3.1:8b', { kind: 'queue-full' });
    const res = await request(h.app).post('/v1/generate').send({ prompt: 'hi' }).expect(503);
    expect(res.body.error.code).toBe('QUEUE_FULL');
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
  });

  test('When an error line arrives inside a stream, then the stream ends with a final error line, never a hang', async () => {
    h.fake.setBehaviour('llama3.1:8b', { kind: 'midstream-error', afterChunks: 2 });
    const base = await h.listen();
    const { res, lines } = await readNdjson(`${base}/v1/chat`, { messages: [{ role: 'user', content: 'hi' }], stream: true });
    expect(res.status).toBe(200);
    expect(lines).toHaveLength(3);
    expect(lines[2].line).toMatchObject({
      error: { code: 'UPSTREAM_ERROR', message: expect.stringContaining('an error was encountered while running the model') },
    });
  });

  test('When an error line arrives for a non-streamed caller, then 502 UPSTREAM_ERROR', async () => {
    h.fake.setBehaviour('llama3.1:8b', { kind: 'midstream-error', afterChunks: 2 });
    const res = await request(h.app).post('/v1/generate').send({ prompt: 'hi' }).expect(502);
    expect(res.body.error.code).toBe('UPSTREAM_ERROR');
  });

  test('When the runner crashes, then 502 UPSTREAM_ERROR with a hint about resources', async () => {
    h.fake.setBehaviour('llama3.1:8b', { kind: 'crash' });
    const res = await request(h.app).post('/v1/generate').send({ prompt: 'hi' }).expect(502);
    expect(res.body.error.hint).toMatch(/VRAM|restart/);
  });

  test('When Ollama drops the connection, then 502 and the caller is not left hanging', async () => {
    h.fake.setBehaviour('llama3.1:8b', { kind: 'drop-connection' });
    const res = await request(h.app).post('/v1/generate').send({ prompt: 'hi' }).expect(502);
    expect(res.body.error.code).toBe('UPSTREAM_ERROR');
  });

  test('When Ollama rejects an option, then 400 UPSTREAM_REJECTED carries its message', async () => {
    h.fake.setBehaviour('llama3.1:8b', { kind: 'reject', status: 400, error: 'registry.ollama.ai/library/llama3.1:8b does not support tools' });
    const res = await request(h.app)
      .post('/v1/chat')
      .send({ messages: [{ role: 'user', content: 'hi' }], tools: [{ type: 'function', function: { name: 'f' } }] })
      .expect(400);
    expect(res.body.error).toMatchObject({ code: 'UPSTREAM_REJECTED', message: expect.stringContaining('does not support tools') });
  });

  test('When something unexpected throws, then 500 INTERNAL with no stack in the body', async () => {
    const boom = await startHarness({}, {}, (c) => ({ ...c, tags: () => Promise.reject(new TypeError('secret internals at /src/x.ts:1')) }));
    try {
      const res = await request(boom.app).get('/v1/models').expect(500);
      expect(res.body).toEqual({ error: { code: 'INTERNAL', message: 'Internal server error', requestId: expect.any(String) } });
      expect(JSON.stringify(res.body)).not.toContain('secret internals');
    } finally {
      await boom.close();
    }
  });
});

describe('cold load allowance', () => {
  test('When the model is cold, then the first chunk may take the load allowance on top of the model timeout', async () => {
    const h = await startHarness({ MODEL_TIMEOUTS: 'llama3.1:8b=1', MODEL_LOAD_TIMEOUT_S: '3' }, { loadDelayMs: 1500 });
    try {
      const res = await request(h.app).post('/v1/generate').send({ prompt: 'hi' }).expect(200);
      expect(res.body.usage.load_ms).toBeGreaterThanOrEqual(1400);
    } finally {
      await h.close();
    }
  });

  test('When there is no load allowance, then the same cold load times out', async () => {
    const h = await startHarness({ MODEL_TIMEOUTS: 'llama3.1:8b=1', MODEL_LOAD_TIMEOUT_S: '0' }, { loadDelayMs: 1500 });
    try {
      const res = await request(h.app).post('/v1/generate').send({ prompt: 'hi' }).expect(504);
      expect(res.body.error.code).toBe('UPSTREAM_TIMEOUT');
    } finally {
      await h.close();
    }
  });
});
