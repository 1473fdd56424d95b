/** OllamaClient.proxy (the raw pass-through under /ollama and /openai/v1) against the fake Ollama. */
import { Readable } from 'node:stream';
import { createOllamaClient } from '../../src/clients/ollama.client';
import type { OllamaClient, ProxyResponse } from '../../src/clients/ollama.types';
import { AppError } from '../../src/errors';
import { FakeOllama } from '../fakes/fake-ollama';
import { closedPortUrl } from '../support/harness';

async function text(res: ProxyResponse): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of res.body) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function failure(p: Promise<unknown>): Promise<AppError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    return err as AppError;
  }
  throw new Error('expected a failure');
}

describe('OllamaClient.proxy', () => {
  let fake: FakeOllama;
  let ollama: OllamaClient;
  const timeouts = { firstByteTimeoutMs: 2000, idleTimeoutMs: 2000 };
  beforeAll(async () => {
    fake = await FakeOllama.start({ tokenDelayMs: 10 });
    ollama = createOllamaClient({ baseUrl: fake.url, requestTimeoutMs: 2000, retries: 1 });
  });
  afterAll(() => fake.close());
  beforeEach(() => {
    fake.resetBehaviours();
    fake.requests.length = 0;
  });

  test('When Ollama answers an error status, then it is returned as is (status, content type, body), not thrown', async () => {
    const res = await ollama.proxy({ method: 'POST', path: '/api/show', body: { model: 'nope' }, ...timeouts });
    expect(res.status).toBe(404);
    expect(res.headers['content-type']).toMatch(/application\/json/);
    expect(JSON.parse(await text(res))).toEqual({ error: "model 'nope' not found" });
  });

  test('When a JSON body is sent, then only our headers go out (JSON content type, no Origin)', async () => {
    const res = await ollama.proxy({ method: 'POST', path: '/api/generate', body: { model: 'llama3.1:8b', prompt: 'hi', stream: false }, ...timeouts });
    expect(res.status).toBe(200);
    expect(JSON.parse(await text(res)).done).toBe(true);
    const sent = fake.requests.find((r) => r.path === '/api/generate')!;
    expect(sent.headers['content-type']).toBe('application/json');
    expect(sent.headers.origin).toBeUndefined();
    expect(sent.headers['user-agent']).toBe('ai-local-core-api');
  });

  test('When the body is a byte stream, then it is sent as it comes', async () => {
    const res = await ollama.proxy({
      method: 'POST',
      path: '/api/blobs/sha256:abc',
      body: Readable.from([Buffer.from('raw '), Buffer.from('bytes')]),
      headers: { 'Content-Type': 'application/octet-stream' },
      ...timeouts,
    });
    await text(res);
    expect(fake.requests.find((r) => r.path === '/api/blobs/sha256:abc')).toMatchObject({ method: 'POST', body: 'raw bytes' });
  });

  test('When Ollama is down, then OLLAMA_UNAVAILABLE at once (no retry of a refused connection)', async () => {
    const down = createOllamaClient({ baseUrl: await closedPortUrl(), requestTimeoutMs: 2000, retries: 3 });
    const t0 = Date.now();
    const err = await failure(down.proxy({ method: 'GET', path: '/api/tags', ...timeouts }));
    expect(err.code).toBe('OLLAMA_UNAVAILABLE');
    expect(Date.now() - t0).toBeLessThan(500);
  });

  test('When no header comes within the first-byte timeout, then UPSTREAM_TIMEOUT naming the model', async () => {
    fake.setBehaviour('llama3.1:8b', { kind: 'hang' });
    const err = await failure(
      ollama.proxy({
        method: 'POST',
        path: '/api/chat',
        body: { model: 'llama3.1:8b', messages: [{ role: 'user', content: 'x' }] },
        model: 'llama3.1:8b',
        firstByteTimeoutMs: 200,
        idleTimeoutMs: 5000,
      }),
    );
    expect(err.code).toBe('UPSTREAM_TIMEOUT');
    expect(err.message).toContain("'llama3.1:8b'");
  });

  test('When Ollama goes silent mid-body, then the body fails with UPSTREAM_TIMEOUT and the upstream call is aborted', async () => {
    fake.setBehaviour('llama3.1:8b', { kind: 'stall-after', chunks: 2 });
    const abortedBefore = fake.stats.aborted;
    const res = await ollama.proxy({
      method: 'POST',
      path: '/api/generate',
      body: { model: 'llama3.1:8b', prompt: 'x' },
      model: 'llama3.1:8b',
      firstByteTimeoutMs: 2000,
      idleTimeoutMs: 200,
    });
    expect(res.status).toBe(200);
    const err = await failure(text(res));
    expect(err.code).toBe('UPSTREAM_TIMEOUT');
    await fake.waitFor(() => fake.stats.aborted === abortedBefore + 1);
  });

  test('When the caller aborts mid-body, then the body fails with CLIENT_CLOSED_REQUEST and the upstream call is aborted', async () => {
    fake.setDefaultReply(Array.from({ length: 100 }, (_, i) => `w${i}`).join(' '));
    const abortedBefore = fake.stats.aborted;
    const ctrl = new AbortController();
    const res = await ollama.proxy({ method: 'POST', path: '/api/generate', body: { model: 'llama3.1:8b', prompt: 'x' }, signal: ctrl.signal, ...timeouts });
    setTimeout(() => ctrl.abort(), 50);
    const err = await failure(text(res));
    expect(err.code).toBe('CLIENT_CLOSED_REQUEST');
    await fake.waitFor(() => fake.stats.aborted === abortedBefore + 1);
  });

  test('When the consumer destroys the body, then the upstream call is aborted', async () => {
    const abortedBefore = fake.stats.aborted;
    const res = await ollama.proxy({ method: 'POST', path: '/api/generate', body: { model: 'llama3.1:8b', prompt: 'x' }, ...timeouts });
    for await (const _c of res.body) break; // for-await's return() destroys the stream
    await fake.waitFor(() => fake.stats.aborted === abortedBefore + 1);
  });
});
