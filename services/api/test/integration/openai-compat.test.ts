/**
 * /openai/v1/* with the official `openai` npm client, against the real app and the fake Ollama
 * behind it, auth on. Basic auth goes in `defaultHeaders` (it replaces the SDK's Bearer header).
 */
import OpenAI, { AuthenticationError, BadRequestError, InternalServerError, NotFoundError, RateLimitError } from 'openai';
import request from 'supertest';
import { closedPortUrl, startHarness, type Harness } from '../support/harness';

const USERS = { AUTH_USERS: 'waldus:Wq7-pLz3Rk9vXt2mNa,owner:Ow5-hYc8Tj1dGs6eKb', ADMIN_USERS: 'owner' };
const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
const WALDUS = basic('waldus', 'Wq7-pLz3Rk9vXt2mNa');

const client = (base: string, auth = WALDUS) =>
  new OpenAI({ baseURL: `${base}/openai/v1`, apiKey: 'unused', defaultHeaders: { Authorization: auth }, maxRetries: 0, timeout: 10_000 });

async function thrown(fn: () => Promise<unknown>): Promise<Error & { status?: number; code?: string | null; type?: string }> {
  try {
    await fn();
  } catch (err) {
    return err as Error & { status?: number; code?: string | null; type?: string };
  }
  throw new Error('expected a failure');
}

const lastRequest = (h: Harness, path: string) => [...h.fake.requests].reverse().find((r) => r.path === path);
const hello = [{ role: 'user' as const, content: 'hello' }];

describe('/openai/v1 with the official openai client', () => {
  let h: Harness;
  let base: string;
  let openai: OpenAI;
  beforeAll(async () => {
    h = await startHarness({ ...USERS, MAX_CONCURRENT: '1', MAX_QUEUE: '4', MODEL_ALIASES: 'fast=mistral:7b', CAPTURE_LOGS: '1' }, { tokenDelayMs: 15 });
    base = await h.listen();
    openai = client(base);
  });
  afterAll(() => h.close());
  beforeEach(() => {
    h.fake.resetBehaviours();
    h.fake.requests.length = 0;
  });

  test('When response_format carries a JSON schema, then it reaches Ollama and the answer parses', async () => {
    const schema = {
      type: 'object',
      properties: { city: { type: 'string' }, population: { type: 'integer', minimum: 1000 } },
      required: ['city', 'population'],
    };
    const r = await openai.chat.completions.create({
      model: 'llama3.1:8b',
      messages: [{ role: 'user', content: 'Largest city in France?' }],
      response_format: { type: 'json_schema', json_schema: { name: 'city', schema, strict: true } },
    });
    expect(JSON.parse(r.choices[0].message.content!)).toEqual({ city: 'fake', population: 1000 });
    expect(lastRequest(h, '/v1/chat/completions')!.body).toMatchObject({ response_format: { type: 'json_schema', json_schema: { schema } } });
  });

  test("When models.list is called, then Ollama's model list comes back", async () => {
    const ids: string[] = [];
    for await (const m of openai.models.list()) ids.push(m.id);
    expect(ids).toEqual(expect.arrayContaining(['llama3.1:8b', 'mistral:7b', 'nomic-embed-text:latest']));
    expect((await openai.models.retrieve('mistral:7b')).id).toBe('mistral:7b');
  });

  test('When a chat completion is not streamed, then the whole answer and the usage come back', async () => {
    const r = await openai.chat.completions.create({ model: 'llama3.1:8b', messages: hello });
    expect(r.object).toBe('chat.completion');
    expect(r.choices[0].message).toMatchObject({ role: 'assistant', content: 'Hello from the fake Ollama.' });
    expect(r.choices[0].finish_reason).toBe('stop');
    expect(r.usage?.completion_tokens).toBe(5);
    expect(r.id).toMatch(/^chatcmpl-/);
    // Collected from a streamed upstream call (bounded per token, not per answer).
    expect(lastRequest(h, '/v1/chat/completions')!.body).toMatchObject({ stream: true, stream_options: { include_usage: true } });
  });

  test('When Ollama fails during a non-streamed completion, then InternalServerError with its message', async () => {
    h.fake.setBehaviour('llama3.1:8b', { kind: 'midstream-error', afterChunks: 2 });
    const err = await thrown(() => openai.chat.completions.create({ model: 'llama3.1:8b', messages: hello }));
    expect(err).toBeInstanceOf(InternalServerError);
    expect(err.status).toBe(500);
    expect(err.message).toBe('500 an error was encountered while running the model');
  });

  test('When logprobs are asked for, then the completion is passed through unstreamed', async () => {
    await openai.chat.completions.create({ model: 'llama3.1:8b', messages: hello, logprobs: true });
    expect(lastRequest(h, '/v1/chat/completions')!.body).not.toHaveProperty('stream');
  });

  test('When an alias or no model is given, then it is resolved like on /v1', async () => {
    await openai.chat.completions.create({ model: 'fast', messages: hello });
    expect(lastRequest(h, '/v1/chat/completions')!.body).toMatchObject({ model: 'mistral:7b' });
  });

  test('When a chat completion is streamed, then SSE chunks arrive one by one and join to the answer', async () => {
    const stream = await openai.chat.completions.create({ model: 'llama3.1:8b', messages: hello, stream: true, stream_options: { include_usage: true } });
    let text = '';
    let chunks = 0;
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const c of stream) {
      chunks++;
      text += c.choices[0]?.delta?.content ?? '';
      if (c.usage) usage = c.usage;
    }
    expect(text).toBe('Hello from the fake Ollama.');
    expect(chunks).toBeGreaterThanOrEqual(5);
    expect(usage?.completion_tokens).toBe(5);
  });

  test('When a stream is read at the socket, then it comes in several pieces over time with SSE headers', async () => {
    const t0 = performance.now();
    const res = await fetch(`${base}/openai/v1/chat/completions`, {
      method: 'POST',
      headers: { Authorization: WALDUS, 'Content-Type': 'application/json', Origin: 'https://evil.example' },
      body: JSON.stringify({ model: 'llama3.1:8b', messages: hello, stream: true }),
    });
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(res.headers.get('x-accel-buffering')).toBe('no');
    const reader = res.body!.getReader();
    const arrivals: number[] = [];
    let all = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      arrivals.push(performance.now() - t0);
      all += new TextDecoder().decode(value);
    }
    expect(all.trimEnd().endsWith('data: [DONE]')).toBe(true);
    expect(arrivals.length).toBeGreaterThanOrEqual(4);
    expect(arrivals[arrivals.length - 1] - arrivals[0]).toBeGreaterThan(40);
    // No Origin (nor our credentials) reached Ollama, which would answer 403 to that origin.
    const headers = lastRequest(h, '/v1/chat/completions')!.headers;
    expect(headers.origin).toBeUndefined();
    expect(headers.authorization).toBeUndefined();
  });

  test('When embeddings are created, then vectors come back on the embedding model', async () => {
    const r = await openai.embeddings.create({ model: 'nomic-embed-text', input: ['one', 'two'] });
    expect(r.data).toHaveLength(2);
    expect(r.data[0].embedding).toHaveLength(768);
    // The SDK asks for base64 by default and decodes it: both shapes pass through.
    expect(lastRequest(h, '/v1/embeddings')!.body).toMatchObject({ model: 'nomic-embed-text', encoding_format: 'base64' });
  });

  test('When the model is unknown, then NotFoundError with our code', async () => {
    const err = await thrown(() => openai.chat.completions.create({ model: 'nope:1b', messages: hello }));
    expect(err).toBeInstanceOf(NotFoundError);
    expect(err.status).toBe(404);
    expect(err.code).toBe('MODEL_NOT_FOUND');
    expect(err.type).toBe('not_found_error');
    expect(err.message).toMatch(/Model 'nope:1b' is not installed/);
    const streamed = await thrown(() => openai.chat.completions.create({ model: 'nope:1b', messages: hello, stream: true }));
    expect(streamed).toBeInstanceOf(NotFoundError);
  });

  test('When our validation refuses the body, then BadRequestError VALIDATION_ERROR in OpenAI shape', async () => {
    const res = await request(h.app).post('/openai/v1/chat/completions').set('Authorization', WALDUS).send({ model: 5, messages: hello }).expect(400);
    expect(res.body).toEqual({ error: { message: '"model" must be a string', type: 'invalid_request_error', param: null, code: 'VALIDATION_ERROR' } });
    const err = await thrown(() => openai.chat.completions.create({ model: 5 as unknown as string, messages: hello }));
    expect(err).toBeInstanceOf(BadRequestError);
    expect(err.code).toBe('VALIDATION_ERROR');
  });

  test('When Ollama rejects the request, then its OpenAI-shaped error passes through (BadRequestError)', async () => {
    const err = await thrown(() => openai.chat.completions.create({ model: 'llama3.1:8b', messages: [] }));
    expect(err).toBeInstanceOf(BadRequestError);
    expect(err.message).toBe("400 [] is too short - 'messages'");
    expect(err.code).toBeNull();
  });

  test('When Ollama fails mid-stream, then the SDK raises its error from the stream', async () => {
    h.fake.setBehaviour('llama3.1:8b', { kind: 'midstream-error', afterChunks: 2 });
    const stream = await openai.chat.completions.create({ model: 'llama3.1:8b', messages: hello, stream: true });
    const seen: string[] = [];
    const err = await thrown(async () => {
      for await (const c of stream) seen.push(c.choices[0]?.delta?.content ?? '');
    });
    expect(seen).toHaveLength(2);
    expect(err.message).toMatch(/an error was encountered while running the model/);
  });

  test('When the SDK sends only its Bearer key, then 401 AuthenticationError (Basic must go in defaultHeaders)', async () => {
    const bearerOnly = new OpenAI({ baseURL: `${base}/openai/v1`, apiKey: 'sk-whatever', maxRetries: 0 });
    const err = await thrown(() => bearerOnly.models.list());
    expect(err).toBeInstanceOf(AuthenticationError);
    expect(err.code).toBe('UNAUTHORIZED');
    const wrong = await thrown(() => client(base, basic('waldus', 'nope')).models.list());
    expect(wrong).toBeInstanceOf(AuthenticationError);
    expect(wrong.message).toBe('401 Invalid credentials');
  });

  test('When several completions run at once, then Ollama never sees more than MAX_CONCURRENT', async () => {
    h.fake.stats.maxActive = 0;
    const plain = [1, 2].map(() => openai.chat.completions.create({ model: 'llama3.1:8b', messages: hello }));
    const streamed = (async () => {
      let t = '';
      for await (const c of await openai.chat.completions.create({ model: 'llama3.1:8b', messages: hello, stream: true }))
        t += c.choices[0]?.delta?.content ?? '';
      return t;
    })();
    const results = await Promise.all(plain);
    expect(results.map((r) => r.choices[0].message.content)).toEqual(['Hello from the fake Ollama.', 'Hello from the fake Ollama.']);
    expect(await streamed).toBe('Hello from the fake Ollama.');
    expect(h.fake.stats.maxActive).toBe(1);
  });

  test('When a completion is logged, then the access line has the model and the queue wait', async () => {
    h.logs.length = 0;
    await openai.chat.completions.create({ model: 'llama3.1:8b', messages: [{ role: 'user', content: 'SECRET-OPENAI-PROMPT' }] });
    const line = h.logs.map((l) => JSON.parse(l)).find((l) => l.message === 'request' && l.route === '/openai/v1/chat/completions');
    expect(line).toMatchObject({ status: 200, user: 'waldus', model: 'llama3.1:8b', stream: false });
    expect(typeof line.queueWaitMs).toBe('number');
    expect(h.logs.join('\n')).not.toContain('SECRET-OPENAI-PROMPT');
    h.logs.length = 0;
    for await (const _c of await openai.chat.completions.create({
      model: 'llama3.1:8b',
      messages: hello,
      stream: true,
      stream_options: { include_usage: true },
    })) {
      /* read all */
    }
    await new Promise((r) => setTimeout(r, 50));
    const streamed = h.logs.map((l) => JSON.parse(l)).find((l) => l.message === 'request' && l.route === '/openai/v1/chat/completions');
    expect(streamed).toMatchObject({ status: 200, stream: true, tokens: 5 });
  });

  test('When an unknown path is asked for, then 404 in OpenAI shape', async () => {
    const res = await request(h.app).post('/openai/v1/audio/speech').set('Authorization', WALDUS).send({}).expect(404);
    expect(res.body.error).toMatchObject({ type: 'not_found_error', code: 'NOT_FOUND', param: null });
  });
});

describe('/openai/v1 refusals from our side', () => {
  test('When the queue is full, then InternalServerError 503 QUEUE_FULL with Retry-After', async () => {
    const h = await startHarness({ ...USERS, MAX_CONCURRENT: '1', MAX_QUEUE: '0' });
    try {
      const base = await h.listen();
      h.fake.setBehaviour('llama3.1:8b', { kind: 'hang' });
      const holder = new AbortController();
      const running = client(base)
        .chat.completions.create({ model: 'llama3.1:8b', messages: hello }, { signal: holder.signal })
        .catch(() => undefined);
      await h.fake.waitFor(() => h.fake.stats.active === 1);
      const err = await thrown(() => client(base).chat.completions.create({ model: 'llama3.1:8b', messages: hello }));
      expect(err).toBeInstanceOf(InternalServerError);
      expect(err.status).toBe(503);
      expect(err.code).toBe('QUEUE_FULL');
      expect(err.message).toMatch(/^503 The queue for 'llama3.1:8b' is full/);
      expect(Number((err as unknown as { headers: Headers }).headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      holder.abort();
      await running;
    } finally {
      await h.close();
    }
  });

  test('When Ollama is down, then InternalServerError 503 OLLAMA_UNAVAILABLE at once', async () => {
    const h = await startHarness({ ...USERS, OLLAMA_BASE_URL: await closedPortUrl() });
    try {
      const openai = client(await h.listen());
      const t0 = Date.now();
      const list = await thrown(() => openai.models.list());
      expect(list).toBeInstanceOf(InternalServerError);
      expect(list.code).toBe('OLLAMA_UNAVAILABLE');
      const chat = await thrown(() => openai.chat.completions.create({ model: 'llama3.1:8b', messages: hello, stream: true }));
      expect(chat).toBeInstanceOf(InternalServerError);
      expect(chat.code).toBe('OLLAMA_UNAVAILABLE');
      expect(Date.now() - t0).toBeLessThan(3000);
    } finally {
      await h.close();
    }
  });

  test('When the rate limit is reached, then RateLimitError RATE_LIMITED', async () => {
    const h = await startHarness({ ...USERS, RATE_LIMIT_PER_MIN: '1' });
    try {
      const openai = client(await h.listen());
      await openai.models.list();
      const err = await thrown(() => openai.models.list());
      expect(err).toBeInstanceOf(RateLimitError);
      expect(err.code).toBe('RATE_LIMITED');
      expect(err.type).toBe('rate_limit_error');
    } finally {
      await h.close();
    }
  });

  test('When Ollama goes silent in a streamed completion, then the stream ends with an UPSTREAM_TIMEOUT error event', async () => {
    const h = await startHarness({ ...USERS, REQUEST_TIMEOUT_S: '1', MODEL_LOAD_TIMEOUT_S: '0' });
    try {
      const openai = client(await h.listen());
      await openai.chat.completions.create({ model: 'llama3.1:8b', messages: hello });
      h.fake.setBehaviour('llama3.1:8b', { kind: 'stall-after', chunks: 1 });
      const stream = await openai.chat.completions.create({ model: 'llama3.1:8b', messages: hello, stream: true });
      const err = await thrown(async () => {
        for await (const _c of stream) {
          /* one chunk, then silence */
        }
      });
      expect(err.message).toMatch(/did not answer for 'llama3.1:8b' within 1 s/);
      expect(err.code).toBe('UPSTREAM_TIMEOUT');
    } finally {
      await h.close();
    }
  });
});
