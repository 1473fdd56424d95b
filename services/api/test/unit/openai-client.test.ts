/**
 * The OpenAI-compatible upstream client against the fake OpenAI server on loopback: mapped chunks,
 * acceptance before streaming, error mapping to the app's errors, timeouts, aborts, the Bearer key.
 */
import { Readable } from 'node:stream';
import { AppError } from '../../src/errors';
import { createOpenAiClient, type OpenAiClient } from '../../src/clients/openai.client';
import { mapOpenAiError } from '../../src/clients/openai-errors';
import { readSse } from '../../src/wire/openai-sse';
import type { OllamaChatChunk, StreamCallOptions } from '../../src/clients/ollama.types';
import { FakeOpenAi } from '../fakes/fake-openai';

const KEY = 'sk-test-Hn4vB8qZ2wX7rT5m';
const MODEL = 'meta-llama/Llama-3.1-8B-Instruct';
const EMBED = 'BAAI/bge-small-en-v1.5';
const timeouts: StreamCallOptions = { firstChunkTimeoutMs: 5_000, idleTimeoutMs: 5_000 };
const hello = [{ role: 'user' as const, content: 'say hello' }];

async function drain<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

async function failure(p: Promise<unknown>): Promise<AppError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AppError);
  return err as AppError;
}

describe('readSse', () => {
  test('When events arrive split anywhere, with CRLF, comments and multi-line data, then each event comes out whole', async () => {
    const text = ': keep-alive\r\ndata: {"a":\r\ndata: 1}\r\n\r\nevent: note\nid: 7\ndata:x\n\ndata: [DONE]\n\ndata: tail';
    for (const size of [1, 3, 7, 1000]) {
      const pieces: Buffer[] = [];
      const bytes = Buffer.from(text);
      for (let i = 0; i < bytes.length; i += size) pieces.push(bytes.subarray(i, i + size));
      const events = await drain(readSse(Readable.from(pieces)));
      expect(events).toEqual([{ data: '{"a":\n1}' }, { data: 'x', event: 'note', id: '7' }, { data: '[DONE]', id: '7' }, { data: 'tail', id: '7' }]);
    }
  });

  test('When a multi-byte character is split between pieces, then it is decoded whole', async () => {
    const bytes = Buffer.from('data: grüße\n\n');
    const events = await drain(readSse(Readable.from([bytes.subarray(0, 10), bytes.subarray(10)])));
    expect(events).toEqual([{ data: 'grüße' }]);
  });
});

describe('mapOpenAiError', () => {
  test.each([
    [
      401,
      '{"error":{"message":"Incorrect API key provided: sk-abc","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}',
      'UPSTREAM_ERROR',
      502,
    ],
    [404, '{"error":{"message":"The model `x` does not exist","type":"invalid_request_error","param":null,"code":"model_not_found"}}', 'MODEL_NOT_FOUND', 404],
    [404, '{"detail":"Not Found"}', 'UPSTREAM_ERROR', 502],
    [400, '{"object":"error","message":"maximum context length is 8192 tokens","type":"BadRequestError","param":null,"code":400}', 'UPSTREAM_REJECTED', 400],
    [429, '{"error":{"message":"Rate limit","type":"requests","param":null,"code":"rate_limit_exceeded"}}', 'QUEUE_FULL', 503],
    [500, '{"error":"boom"}', 'UPSTREAM_ERROR', 502],
    [503, 'Service Unavailable', 'OLLAMA_UNAVAILABLE', 503],
    [504, '', 'UPSTREAM_TIMEOUT', 504],
  ])('When the upstream answers %i, then the app error is %s', (status, body, code, httpStatus) => {
    const err = mapOpenAiError(status, body, 'vllm', 'x', '3');
    expect(err.code).toBe(code);
    expect(err.status).toBe(httpStatus);
    expect(`${err.message} ${err.hint ?? ''}`).toContain("'vllm'");
    expect(JSON.stringify({ m: err.message, h: err.hint, d: err.details })).not.toContain('sk-abc');
  });
});

describe('createOpenAiClient against the fake', () => {
  let fake: FakeOpenAi;
  let client: OpenAiClient;

  beforeAll(async () => {
    fake = await FakeOpenAi.start({ apiKey: KEY, reply: 'Hello there, friend.', embeddingDims: 8 });
    client = createOpenAiClient({ name: 'vllm', baseUrl: `${fake.url}/v1/`, apiKey: KEY, requestTimeoutMs: 5_000, retries: 0, connectTimeoutMs: 1_000 });
  });
  afterAll(() => fake.close());
  afterEach(() => fake.resetBehaviours());

  test('When models are listed, then they come as ids and as catalog tags; the Bearer key goes out', async () => {
    expect((await client.models()).map((m) => m.id)).toEqual([MODEL, EMBED]);
    expect((await client.tags()).map((t) => t.name)).toEqual([MODEL, EMBED]);
    expect(fake.requests.at(-1)?.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(client.baseUrl).toBe(fake.url);
  });

  test('When a chat streams, then Ollama-shaped chunks come out, ending in done with usage and durations', async () => {
    const chunks = await drain(client.chat({ model: MODEL, messages: hello, options: { temperature: 0, num_ctx: 4096, num_predict: 100 } }, timeouts));
    const text = chunks
      .filter((c) => !c.done)
      .map((c) => c.message.content)
      .join('');
    expect(text).toBe('Hello there, friend.');
    const last = chunks.at(-1) as OllamaChatChunk;
    expect(last).toMatchObject({ model: MODEL, done: true, done_reason: 'stop', prompt_eval_count: 2, eval_count: 3, load_duration: 0 });
    expect(last.total_duration).toBeGreaterThan(0);
    const sent = fake.requests.at(-1)?.body as Record<string, unknown>;
    expect(sent).toMatchObject({ model: MODEL, stream: true, stream_options: { include_usage: true }, temperature: 0, max_tokens: 100 });
    expect(sent).not.toHaveProperty('num_ctx');
  });

  test('When a generate runs, then it goes out as a chat (system + user) and comes back as generate chunks', async () => {
    const chunks = await drain(client.generate({ model: MODEL, prompt: 'Hi', system: 'Be brief' }, timeouts));
    expect(
      chunks
        .filter((c) => !c.done)
        .map((c) => c.response)
        .join(''),
    ).toBe('Hello there, friend.');
    expect(chunks.at(-1)).toMatchObject({ done: true, response: '' });
    expect(fake.requests.at(-1)).toMatchObject({
      path: '/v1/chat/completions',
      body: {
        messages: [
          { role: 'system', content: 'Be brief' },
          { role: 'user', content: 'Hi' },
        ],
      },
    });
    const raw = await drain(client.generate({ model: MODEL, prompt: '[INST] Hi [/INST]', raw: true }, timeouts));
    expect(
      raw
        .filter((c) => !c.done)
        .map((c) => c.response)
        .join(''),
    ).toBe('Hello there, friend.');
    expect(fake.requests.at(-1)?.path).toBe('/v1/completions');
  });

  test('When a chat is asked for whole, then the non-streamed answer maps to the same chunks', async () => {
    const chunks = await client.chatOnce({ model: MODEL, messages: hello, format: 'json' }, timeouts);
    expect(chunks.map((c) => c.message.content)).toEqual(['{"answer":"fake"}', '']);
    expect(chunks[1]).toMatchObject({ done: true, eval_count: 1 });
    expect(fake.requests.at(-1)?.body).toMatchObject({ stream: false, response_format: { type: 'json_object' } });
  });

  test('When embeddings are asked for, then Ollama-shaped vectors come back in input order', async () => {
    const r = await client.embed({ model: EMBED, input: ['one', 'two words'] }, timeouts);
    expect(r.model).toBe(EMBED);
    expect(r.embeddings).toHaveLength(2);
    expect(r.embeddings[0]).toHaveLength(8);
    expect(r.prompt_eval_count).toBe(3);
  });

  test('When the upstream refuses the request, then openChat rejects with the mapped error before anything is iterated', async () => {
    const before = fake.stats.generations;
    fake.setBehaviour(MODEL, { kind: 'error', status: 503 });
    const e503 = await failure(client.openChat({ model: MODEL, messages: hello }, timeouts));
    expect(e503).toMatchObject({ code: 'OLLAMA_UNAVAILABLE', status: 503, retryAfterS: 2 });
    fake.setBehaviour(MODEL, { kind: 'error', status: 500 });
    expect(await failure(client.openChat({ model: MODEL, messages: hello }, timeouts))).toMatchObject({ code: 'UPSTREAM_ERROR', status: 502 });
    fake.setBehaviour(MODEL, { kind: 'error', status: 429 });
    expect(await failure(client.openChat({ model: MODEL, messages: hello }, timeouts))).toMatchObject({ code: 'QUEUE_FULL', status: 503, retryAfterS: 2 });
    expect(await failure(client.openChat({ model: 'nope', messages: hello }, timeouts))).toMatchObject({ code: 'MODEL_NOT_FOUND', status: 404 });
    expect(await failure(drain(client.chat({ model: MODEL, messages: [] }, timeouts)))).toMatchObject({ code: 'UPSTREAM_REJECTED', status: 400 });
    expect(fake.stats.generations).toBe(before);
  });

  test('When the key is wrong, then 502 UPSTREAM_ERROR naming the upstream, never the key', async () => {
    const bad = createOpenAiClient({ name: 'vllm', baseUrl: fake.url, apiKey: 'sk-wrong-Lm3kP9qW2zR8', requestTimeoutMs: 2_000, retries: 0 });
    const err = await failure(bad.models());
    expect(err).toMatchObject({ code: 'UPSTREAM_ERROR', status: 502 });
    expect(JSON.stringify({ m: err.message, h: err.hint, d: err.details })).not.toMatch(/sk-/);
  });

  test('When openChat resolves, then the upstream has accepted (status known) though no token came yet', async () => {
    const slow = await FakeOpenAi.start({ firstChunkDelayMs: 1_500, reply: 'late' });
    try {
      const c = createOpenAiClient({ name: 'slow', baseUrl: slow.url, requestTimeoutMs: 2_000, retries: 0 });
      const t0 = Date.now();
      const it = await c.openChat({ model: MODEL, messages: hello }, timeouts);
      expect(Date.now() - t0).toBeLessThan(1_000);
      expect(slow.stats.generations).toBe(1);
      const chunks = await drain(it);
      expect(chunks.at(-1)?.done).toBe(true);
    } finally {
      await slow.close();
    }
  });

  test('When the upstream is stopped, then the connection is refused at once: 503 OLLAMA_UNAVAILABLE', async () => {
    const gone = await FakeOpenAi.start();
    const c = createOpenAiClient({ name: 'mac', baseUrl: gone.url, requestTimeoutMs: 2_000, retries: 2 });
    await gone.close();
    const t0 = Date.now();
    const err = await failure(c.openChat({ model: MODEL, messages: hello }, timeouts));
    expect(err).toMatchObject({ code: 'OLLAMA_UNAVAILABLE', status: 503 });
    expect(err.message).toContain("'mac'");
    expect(Date.now() - t0).toBeLessThan(1_000);
    await gone.restart();
    try {
      expect((await c.models()).length).toBe(2);
    } finally {
      await gone.close();
    }
  });

  test('When no token comes within the first-chunk timeout, then 504 UPSTREAM_TIMEOUT and the upstream request is aborted', async () => {
    fake.setBehaviour(MODEL, { kind: 'hang' });
    const aborted = fake.stats.aborted;
    const err = await failure(drain(client.chat({ model: MODEL, messages: hello }, { firstChunkTimeoutMs: 200, idleTimeoutMs: 5_000 })));
    expect(err).toMatchObject({ code: 'UPSTREAM_TIMEOUT', status: 504 });
    await fake.waitFor(() => fake.stats.aborted === aborted + 1);
  });

  test('When the stream stalls after some tokens, then the idle timeout fires', async () => {
    fake.setBehaviour(MODEL, { kind: 'stall-after', chunks: 1 });
    const seen: string[] = [];
    const err = await failure(
      (async () => {
        for await (const c of client.chat({ model: MODEL, messages: hello }, { firstChunkTimeoutMs: 2_000, idleTimeoutMs: 200 })) seen.push(c.message.content);
      })(),
    );
    expect(err.code).toBe('UPSTREAM_TIMEOUT');
    expect(seen).toEqual(['Hello']);
  });

  test('When an error event arrives mid-stream, then it is thrown mapped after the tokens before it', async () => {
    fake.setBehaviour(MODEL, { kind: 'midstream-error', afterChunks: 2 });
    const seen: string[] = [];
    const err = await failure(
      (async () => {
        for await (const c of client.chat({ model: MODEL, messages: hello }, timeouts)) seen.push(c.message.content);
      })(),
    );
    expect(err).toMatchObject({ code: 'UPSTREAM_ERROR', status: 502 });
    expect(seen).toEqual(['Hello', ' there,']);
  });

  test('When the body ends without a finish_reason or [DONE], then the answer is an error, not a short success', async () => {
    fake.setBehaviour(MODEL, { kind: 'truncate', afterChunks: 1 });
    const seen: OllamaChatChunk[] = [];
    const err = await failure(
      (async () => {
        for await (const c of client.chat({ model: MODEL, messages: hello }, timeouts)) seen.push(c);
      })(),
    );
    expect(err).toMatchObject({ code: 'UPSTREAM_ERROR', status: 502 });
    expect(seen.some((c) => c.done)).toBe(false);
  });

  test('When the caller aborts or stops reading, then the upstream request is cut (the GPU is freed)', async () => {
    const slow = await FakeOpenAi.start({ chunkDelayMs: 100, reply: 'a b c d e f g h i j' });
    try {
      const c = createOpenAiClient({ name: 'slow', baseUrl: slow.url, requestTimeoutMs: 2_000, retries: 0 });
      const ctrl = new AbortController();
      const err = await failure(
        (async () => {
          for await (const chunk of c.chat({ model: MODEL, messages: hello }, { ...timeouts, signal: ctrl.signal })) if (chunk.message.content) ctrl.abort();
        })(),
      );
      expect(err.code).toBe('CLIENT_CLOSED_REQUEST');
      await slow.waitFor(() => slow.stats.aborted === 1);
      for await (const chunk of c.chat({ model: MODEL, messages: hello }, timeouts)) if (chunk.message.content) break;
      await slow.waitFor(() => slow.stats.aborted === 2);
      expect(slow.stats.completed).toBe(0);
    } finally {
      await slow.close();
    }
  });

  test('When a call is proxied, then status and body pass through and the key is added', async () => {
    const r = await client.proxy({
      method: 'POST',
      path: '/v1/chat/completions',
      body: { model: MODEL, messages: hello, stream: true },
      firstByteTimeoutMs: 2_000,
      idleTimeoutMs: 2_000,
    });
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/text\/event-stream/);
    const events = await drain(readSse(r.body));
    expect(events.at(-1)?.data).toBe('[DONE]');
    expect(fake.requests.at(-1)?.headers.authorization).toBe(`Bearer ${KEY}`);
    const nf = await client.proxy({
      method: 'POST',
      path: '/v1/chat/completions',
      body: { model: 'nope', messages: hello },
      firstByteTimeoutMs: 2_000,
      idleTimeoutMs: 2_000,
    });
    expect(nf.status).toBe(404);
    expect(JSON.parse(Buffer.concat(await drain(nf.body)).toString()).error.code).toBe('model_not_found');
  });
});
