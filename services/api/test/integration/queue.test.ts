import request from 'supertest';
import { startHarness, type Harness } from '../support/harness';

const post = (base: string, path: string, body: unknown, signal?: AbortSignal) =>
  fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal });

describe('the GPU queue in front of Ollama', () => {
  let h: Harness;
  let base: string;
  beforeAll(async () => {
    h = await startHarness({ MAX_CONCURRENT: '1', MAX_QUEUE: '1', QUEUE_TIMEOUT_S: '30' }, { tokenDelayMs: 30 });
    base = await h.listen();
  });
  afterAll(() => h.close());
  beforeEach(() => {
    h.fake.resetBehaviours();
    h.fake.requests.length = 0;
  });

  test('When more requests come than slots, then Ollama never sees more than MAX_CONCURRENT per model', async () => {
    h.fake.setDefaultReply('one two three four five six');
    const before = h.fake.stats.maxActive;
    const results = await Promise.all([post(base, '/v1/generate', { prompt: 'a' }), post(base, '/v1/generate', { prompt: 'b' })]);
    expect(results.map((r) => r.status)).toEqual([200, 200]);
    expect(Math.max(before, h.fake.stats.maxActive)).toBe(1);
  });

  /** One generation stuck at Ollama, one waiting behind it: the default model's queue is full. */
  async function fillQueue() {
    h.fake.setBehaviour('llama3.1:8b', { kind: 'hang' });
    const ctrl = new AbortController();
    const running = post(base, '/v1/generate', { prompt: 'running' }, ctrl.signal).catch(() => undefined);
    await h.fake.waitFor(() => h.fake.stats.active === 1);
    const queued = post(base, '/v1/generate', { prompt: 'queued' }, ctrl.signal).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 50));
    return async () => {
      ctrl.abort();
      await Promise.all([running, queued]);
      await h.fake.waitFor(() => h.fake.stats.active === 0);
    };
  }

  test('When the queue is full, then the next caller gets 503 QUEUE_FULL at once with an estimated Retry-After', async () => {
    const empty = await fillQueue();
    const t0 = Date.now();
    const refused = await request(h.app).post('/v1/generate').send({ prompt: 'refused' }).expect(503);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(refused.body.error).toMatchObject({ code: 'QUEUE_FULL', model: 'llama3.1:8b', running: 1, queued: 1 });
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    // An embedding has its own lane: it does not wait behind the stuck generation.
    await request(h.app).post('/v1/embeddings').send({ input: 'still served' }).expect(200);
    await empty();
  });

  test('When the queue is full, then a request is refused before its body is validated, on every surface, and Ollama never sees it', async () => {
    const empty = await fillQueue();
    const seen = h.fake.requests.length;
    const refusedBefore = h.services.pool.members[0].queue.stats()[0].lanes.normal.refused;
    // Bodies that validation would refuse with 400: the full queue answers first (503, Retry-After).
    const early: Array<[string, unknown]> = [
      ['/v1/generate', { prompt: 42 }],
      ['/v1/chat', { messages: 'not a list' }],
      ['/v1/structured', { prompt: 'x' }],
      ['/v1/complete', { user: '' }],
      ['/v1/translate', { text: 'x' }],
      ['/ollama/api/generate', { model: 'llama3.1:8b', prompt: 'x', options: 'bad' }],
      ['/openai/v1/chat/completions', { model: 'llama3.1:8b', messages: 7 }],
    ];
    for (const [path, body] of early) {
      const res = await request(h.app)
        .post(path)
        .send(body as object);
      expect({ path, status: res.status }).toEqual({ path, status: 503 });
      expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      // Ollama's shape is {"error": "<message>"}; ours and OpenAI's carry the code
      if (path.startsWith('/ollama')) expect(res.body.error).toMatch(/queue for 'llama3.1:8b' is full/);
      else expect(res.body.error.code).toBe('QUEUE_FULL');
    }
    // Not refused early: another model's queue has room, and a deterministic request may be a
    // cache hit; both are validated as usual.
    await request(h.app).post('/v1/generate').send({ model: 'mistral:7b', prompt: 42 }).expect(400);
    await request(h.app)
      .post('/v1/generate')
      .send({ prompt: 42, options: { temperature: 0, seed: 1 } })
      .expect(400);
    expect(h.fake.requests.length).toBe(seen);
    expect(h.services.pool.members[0].queue.stats()[0].lanes.normal.refused).toBe(refusedBefore + early.length);
    await empty();
  });

  test('When a streaming caller disconnects, then the upstream generation is aborted and the slot freed', async () => {
    h.fake.setDefaultReply(Array.from({ length: 200 }, (_, i) => `w${i}`).join(' '));
    const abortedBefore = h.fake.stats.aborted;
    const ctrl = new AbortController();
    const res = await post(base, '/v1/generate', { prompt: 'long', stream: true }, ctrl.signal);
    const reader = res.body!.getReader();
    await reader.read(); // first chunk arrived: the GPU is busy for us
    ctrl.abort();
    await h.fake.waitFor(() => h.fake.stats.aborted === abortedBefore + 1, 3000);
    h.fake.setDefaultReply('short answer');
    // The only slot is free again: a new request is served, not queued behind a ghost.
    const next = await request(h.app).post('/v1/generate').send({ prompt: 'next' }).expect(200);
    expect(next.body.response).toBe('short answer');
  });

  test('When a queued caller disconnects, then it leaves the queue (the place is free for the next one)', async () => {
    h.fake.setBehaviour('llama3.1:8b', { kind: 'hang' });
    const holder = new AbortController();
    const running = post(base, '/v1/generate', { prompt: 'running' }, holder.signal).catch(() => undefined);
    await h.fake.waitFor(() => h.fake.stats.active === 1);
    const leaver = new AbortController();
    const leaving = post(base, '/v1/generate', { prompt: 'leaves' }, leaver.signal).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 50));
    leaver.abort();
    await leaving;
    await new Promise((r) => setTimeout(r, 50));
    // MAX_QUEUE is 1: if the leaver still held its place this would be a 503.
    const taker = new AbortController();
    const takes = post(base, '/v1/generate', { prompt: 'takes the place' }, taker.signal);
    const early = await Promise.race([takes.then((r) => r.status), new Promise((r) => setTimeout(() => r('waiting'), 300))]);
    expect(early).toBe('waiting');
    holder.abort();
    taker.abort();
    await Promise.all([running, takes.catch(() => undefined)]);
    await h.fake.waitFor(() => h.fake.stats.active === 0);
  });

  test('When a caller waits longer than QUEUE_TIMEOUT_S, then 503 QUEUE_TIMEOUT', async () => {
    const t = await startHarness({ MAX_CONCURRENT: '1', MAX_QUEUE: '4', QUEUE_TIMEOUT_S: '0.3' });
    try {
      t.fake.setBehaviour('llama3.1:8b', { kind: 'hang' });
      const b = await t.listen();
      const ctrl = new AbortController();
      const running = post(b, '/v1/generate', { prompt: 'x' }, ctrl.signal).catch(() => undefined);
      await t.fake.waitFor(() => t.fake.stats.active === 1);
      const res = await request(t.app).post('/v1/generate').send({ prompt: 'y' }).expect(503);
      expect(res.body.error.code).toBe('QUEUE_TIMEOUT');
      ctrl.abort();
      await running;
    } finally {
      await t.close();
    }
  });

  test('When a streamed request waits in the queue, then its headers come once Ollama takes it, with the wait and the upstream named', async () => {
    h.fake.setDefaultReply('after the wait');
    h.fake.setBehaviour('llama3.1:8b', { kind: 'hang' });
    const holder = new AbortController();
    const running = post(base, '/v1/generate', { prompt: 'running' }, holder.signal).catch(() => undefined);
    await h.fake.waitFor(() => h.fake.stats.active === 1);
    const pending = post(base, '/v1/generate', { prompt: 'queued', stream: true });
    // Queued: no status yet (a refusal could still be a real 503), well inside HOLD_HEADERS_MS.
    const early = await Promise.race([pending.then(() => 'headers'), new Promise((r) => setTimeout(() => r('waiting'), 300))]);
    expect(early).toBe('waiting');
    h.fake.resetBehaviours();
    holder.abort();
    await running;
    const streamed = await pending;
    expect(streamed.status).toBe(200);
    expect(streamed.headers.get('x-upstream')).toBe('ollama');
    expect(Number(streamed.headers.get('x-queue-wait-ms'))).toBeGreaterThanOrEqual(250);
    const text = await streamed.text();
    const lines = text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(
      lines
        .filter((l) => !l.done)
        .map((l) => l.response)
        .join(''),
    ).toBe('after the wait');
  });
});
