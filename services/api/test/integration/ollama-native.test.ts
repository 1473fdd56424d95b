/**
 * /ollama/* with the official `ollama` npm client (ollama-js), against the real app and the fake
 * Ollama behind it, auth on.
 */
import { Ollama } from 'ollama';
import request from 'supertest';
import { closedPortUrl, readNdjson, startHarness, type Harness } from '../support/harness';

const USERS = { AUTH_USERS: 'waldus:Wq7-pLz3Rk9vXt2mNa,owner:Ow5-hYc8Tj1dGs6eKb', ADMIN_USERS: 'owner' };
const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
const WALDUS = basic('waldus', 'Wq7-pLz3Rk9vXt2mNa');
const OWNER = basic('owner', 'Ow5-hYc8Tj1dGs6eKb');

const client = (base: string, auth = WALDUS) => new Ollama({ host: `${base}/ollama`, headers: { Authorization: auth } });

/** Runs `fn` and returns what it threw (ollama-js ResponseError: `.error`, `.status_code`). */
async function thrown(fn: () => Promise<unknown>): Promise<Error & { error?: string; status_code?: number }> {
  try {
    await fn();
  } catch (err) {
    return err as Error & { error?: string; status_code?: number };
  }
  throw new Error('expected a failure');
}

const lastRequest = (h: Harness, path: string) => [...h.fake.requests].reverse().find((r) => r.path === path);

describe('/ollama with the official ollama-js client', () => {
  let h: Harness;
  let base: string;
  let ollama: Ollama;
  beforeAll(async () => {
    h = await startHarness(
      { ...USERS, NUM_CTX: '2048', OLLAMA_KEEP_ALIVE: '30m', MAX_CONCURRENT: '1', MAX_QUEUE: '4', CAPTURE_LOGS: '1' },
      { tokenDelayMs: 15 },
    );
    base = await h.listen();
    ollama = client(base);
  });
  afterAll(() => h.close());
  beforeEach(() => {
    h.fake.resetBehaviours();
    h.fake.requests.length = 0;
  });

  test('When list, version, show and ps are called, then Ollama answers come back unchanged', async () => {
    const list = await ollama.list();
    expect(list.models.map((m) => m.name)).toEqual(expect.arrayContaining(['llama3.1:8b', 'nomic-embed-text:latest']));
    expect((await ollama.version()).version).toBe('0.32.15');
    const show = await ollama.show({ model: 'llama3.1:8b' });
    expect(show.capabilities).toEqual(['completion', 'tools']);
    await ollama.generate({ model: 'llama3.1:8b', prompt: 'warm up' });
    const ps = await ollama.ps();
    expect(ps.models.map((m) => m.name)).toContain('llama3.1:8b');
    expect((ps.models[0] as unknown as { context_length: number }).context_length).toBe(2048);
  });

  test('When generate is not streamed, then the collected answer has the text and the metrics; upstream streamed with num_ctx and keep_alive pinned', async () => {
    h.fake.setDefaultReply('one two three');
    const r = await ollama.generate({ model: 'llama3.1:8b', prompt: 'count', options: { num_ctx: 999, temperature: 0.1, num_gpu: 3 } });
    expect(r.response).toBe('one two three');
    expect(r.done).toBe(true);
    expect(r.eval_count).toBe(3);
    const up = lastRequest(h, '/api/generate')!.body as Record<string, unknown>;
    expect(up).toMatchObject({ model: 'llama3.1:8b', stream: true, keep_alive: '30m', options: { num_ctx: 2048, temperature: 0.1 } });
    expect(up.options).not.toHaveProperty('num_gpu');
  });

  test('When an admin sends keep_alive, then it is kept; a regular user cannot unload the model for everyone', async () => {
    await client(base, OWNER).generate({ model: 'llama3.1:8b', prompt: 'x', keep_alive: '5m' });
    expect(lastRequest(h, '/api/generate')!.body).toMatchObject({ keep_alive: '5m' });
    await ollama.generate({ model: 'llama3.1:8b', prompt: 'x', keep_alive: 0 });
    expect(lastRequest(h, '/api/generate')!.body).toMatchObject({ keep_alive: '30m' });
  });

  test('When generate is streamed, then the NDJSON chunks arrive one by one and the iterator ends on done', async () => {
    h.fake.setDefaultReply('alpha beta gamma delta epsilon');
    const parts: string[] = [];
    let final: { done: boolean; eval_count?: number } | undefined;
    for await (const chunk of await ollama.generate({ model: 'llama3.1:8b', prompt: 'greek', stream: true })) {
      parts.push(chunk.response ?? '');
      if (chunk.done) final = chunk;
    }
    expect(parts.join('')).toBe('alpha beta gamma delta epsilon');
    expect(final).toMatchObject({ done: true, eval_count: 5 });
  });

  test('When a stream is read at the socket, then it comes in several pieces over time, unbuffered', async () => {
    h.fake.setDefaultReply('a b c d e f');
    const { res, lines } = await readNdjson(`${base}/ollama/api/generate`, { model: 'llama3.1:8b', prompt: 'p' }, { Authorization: WALDUS });
    expect(res.headers.get('content-type')).toMatch(/application\/x-ndjson/);
    expect(res.headers.get('x-accel-buffering')).toBe('no');
    expect(lines.length).toBe(7);
    // 15 ms between tokens upstream: the last line comes clearly after the first.
    expect(lines[lines.length - 1].at - lines[0].at).toBeGreaterThan(50);
    expect(new Set(lines.map((l) => Math.round(l.at / 5))).size).toBeGreaterThan(3);
  });

  test('When chat is called streamed and not, then both carry the assistant message', async () => {
    h.fake.setDefaultReply('Hi there friend');
    const whole = await ollama.chat({ model: 'llama3.1:8b', messages: [{ role: 'user', content: 'hello' }] });
    expect(whole.message).toMatchObject({ role: 'assistant', content: 'Hi there friend' });
    expect(whole.done_reason).toBe('stop');
    let text = '';
    let chunks = 0;
    for await (const c of await ollama.chat({ model: 'llama3.1:8b', messages: [{ role: 'user', content: 'hello' }], stream: true })) {
      text += c.message.content;
      chunks++;
    }
    expect(text).toBe('Hi there friend');
    expect(chunks).toBe(4);
    expect(lastRequest(h, '/api/chat')!.body).toMatchObject({ options: { num_ctx: 2048 }, keep_alive: '30m' });
  });

  test('When embed and the legacy embeddings are called, then vectors come back on the embedding model', async () => {
    const e = await ollama.embed({ model: 'nomic-embed-text', input: ['a', 'b'] });
    expect(e.embeddings).toHaveLength(2);
    expect(e.embeddings[0]).toHaveLength(768);
    const legacy = await ollama.embeddings({ model: 'nomic-embed-text', prompt: 'a' });
    expect(legacy.embedding).toHaveLength(768);
    expect(lastRequest(h, '/api/embed')!.body).toMatchObject({ options: { num_ctx: 2048 } });
  });

  test('When the caller sends Origin, Cookie and its credentials, then none of them reach Ollama', async () => {
    const res = await fetch(`${base}/ollama/api/chat`, {
      method: 'POST',
      headers: { Authorization: WALDUS, Origin: 'https://evil.example', Cookie: 'session=abc', 'Content-Type': 'application/json' },
      body: JSON.stringify({ model: 'llama3.1:8b', messages: [{ role: 'user', content: 'hi' }], stream: false }),
    });
    expect(res.status).toBe(200); // Ollama would have answered 403 with an empty body to that Origin
    await res.json();
    await fetch(`${base}/ollama/api/tags`, { headers: { Authorization: WALDUS, Origin: 'https://evil.example' } }).then((r) => r.text());
    for (const path of ['/api/chat', '/api/tags']) {
      const headers = lastRequest(h, path)!.headers;
      expect(headers.origin).toBeUndefined();
      expect(headers.cookie).toBeUndefined();
      expect(headers.authorization).toBeUndefined();
      expect(headers.host).toBe(new URL(h.fake.url).host);
    }
  });

  test('When the model is unknown, then ResponseError 404 "model \'x\' not found", as from Ollama', async () => {
    const err = await thrown(() => ollama.generate({ model: 'nope:1b', prompt: 'x' }));
    expect(err.name).toBe('ResponseError');
    expect(err.status_code).toBe(404);
    expect(err.error).toBe("model 'nope:1b' not found");
    // Streamed too: the refusal comes before the stream starts, so it is a real status.
    const s = await thrown(async () => {
      for await (const _c of await ollama.chat({ model: 'nope:1b', messages: [{ role: 'user', content: 'x' }], stream: true })) {
        /* nothing */
      }
    });
    expect(s.status_code).toBe(404);
  });

  test('When Ollama rejects the request, then its status and message pass through verbatim', async () => {
    h.fake.setBehaviour('llama3.1:8b', { kind: 'reject', status: 400, error: 'registry.ollama.ai/library/llama3.1:8b does not support thinking' });
    const err = await thrown(() => ollama.generate({ model: 'llama3.1:8b', prompt: 'x' }));
    expect(err.status_code).toBe(400);
    expect(err.error).toBe('registry.ollama.ai/library/llama3.1:8b does not support thinking');
    // Streamed: the answer already started (200), so the message is the stream's last line.
    const s = await thrown(async () => {
      for await (const _c of await ollama.generate({ model: 'llama3.1:8b', prompt: 'x', stream: true })) {
        /* nothing */
      }
    });
    expect(s.message).toBe('registry.ollama.ai/library/llama3.1:8b does not support thinking');
  });

  test('When Ollama fails in the middle of a stream, then its error line reaches the client', async () => {
    h.fake.setBehaviour('llama3.1:8b', { kind: 'midstream-error', afterChunks: 2 });
    const seen: string[] = [];
    const err = await thrown(async () => {
      for await (const c of await ollama.generate({ model: 'llama3.1:8b', prompt: 'x', stream: true })) seen.push(c.response ?? '');
    });
    expect(seen).toHaveLength(2);
    expect(err.message).toBe('an error was encountered while running the model');
  });

  test('When credentials are wrong, then ResponseError 401 with our message', async () => {
    const err = await thrown(() => client(base, basic('waldus', 'wrong')).list());
    expect(err.status_code).toBe(401);
    expect(err.error).toBe('Invalid credentials');
  });

  test('When the body is not JSON, then 400 in Ollama shape', async () => {
    const res = await request(h.app).post('/ollama/api/chat').set('Authorization', WALDUS).set('Content-Type', 'application/json').send('{oops').expect(400);
    expect(res.body).toEqual({ error: 'The request body is not valid JSON' });
  });

  test('When an unknown path is asked for, then 404 in Ollama shape', async () => {
    const res = await request(h.app).get('/ollama/api/nothing').set('Authorization', WALDUS).expect(404);
    expect(res.body).toEqual({ error: 'No route for GET /ollama/api/nothing' });
  });

  test('When several callers chat at once, then Ollama never sees more than MAX_CONCURRENT', async () => {
    h.fake.setDefaultReply('w1 w2 w3 w4');
    h.fake.stats.maxActive = 0;
    const calls = [1, 2, 3].map((i) => ollama.chat({ model: 'llama3.1:8b', messages: [{ role: 'user', content: `q${i}` }] }));
    const streamed = (async () => {
      let t = '';
      for await (const c of await ollama.generate({ model: 'llama3.1:8b', prompt: 'q4', stream: true })) t += c.response ?? '';
      return t;
    })();
    const results = await Promise.all(calls);
    expect(results.map((r) => r.message.content)).toEqual(['w1 w2 w3 w4', 'w1 w2 w3 w4', 'w1 w2 w3 w4']);
    expect(await streamed).toBe('w1 w2 w3 w4');
    expect(h.fake.stats.maxActive).toBe(1);
  });

  test('When a streaming caller leaves, then the upstream call is aborted and the slot freed', async () => {
    h.fake.setDefaultReply(Array.from({ length: 100 }, (_, i) => `t${i}`).join(' '));
    const abortedBefore = h.fake.stats.aborted;
    const stream = await ollama.generate({ model: 'llama3.1:8b', prompt: 'long', stream: true });
    for await (const _c of stream) {
      stream.abort(); // leaves after the first chunk (a bare `break` would leave the socket open)
      break;
    }
    await h.fake.waitFor(() => h.fake.stats.aborted === abortedBefore + 1, 3000);
    h.fake.setDefaultReply('next');
    expect((await ollama.generate({ model: 'llama3.1:8b', prompt: 'next' })).response).toBe('next');
  });

  test('When a generation is logged, then the access line has the model and the queue wait, never the prompt', async () => {
    h.logs.length = 0;
    await ollama.chat({ model: 'llama3.1:8b', messages: [{ role: 'user', content: 'SECRET-PROMPT-42' }] });
    const line = h.logs.map((l) => JSON.parse(l)).find((l) => l.message === 'request' && l.route === '/ollama/api/chat');
    expect(line).toMatchObject({ status: 200, user: 'waldus', model: 'llama3.1:8b', stream: false });
    expect(typeof line.queueWaitMs).toBe('number');
    expect(h.logs.join('\n')).not.toContain('SECRET-PROMPT-42');
  });

  test('When a streamed generation is logged, then the line has the token count from the final chunk', async () => {
    h.fake.setDefaultReply('one two three');
    h.logs.length = 0;
    for await (const _c of await ollama.generate({ model: 'llama3.1:8b', prompt: 'x', stream: true })) {
      /* read all */
    }
    await new Promise((r) => setTimeout(r, 50)); // the access line is written on 'finish'
    const line = h.logs.map((l) => JSON.parse(l)).find((l) => l.message === 'request' && l.route === '/ollama/api/generate');
    expect(line).toMatchObject({ status: 200, model: 'llama3.1:8b', stream: true, tokens: 3, doneReason: 'stop' });
  });

  test('When answers come through /ollama, then /metrics counts their tokens and time to first token per model', async () => {
    h.fake.setDefaultReply('one two three');
    await ollama.generate({ model: 'mistral:7b', prompt: 'x' });
    for await (const _c of await ollama.chat({ model: 'mistral:7b', messages: [{ role: 'user', content: 'x' }], stream: true })) {
      /* read all */
    }
    await new Promise((r) => setTimeout(r, 50));
    const text = (await request(h.app).get('/metrics').set('Authorization', OWNER).expect(200)).text;
    expect(text).toMatch(/ai_local_tokens_generated_total\{model="mistral:7b"\} 6/);
    expect(text).toMatch(/ai_local_time_to_first_token_seconds_count\{model="mistral:7b"\} 2/);
  });

  describe('model management (admin only)', () => {
    test('When an admin pulls with ollama-js, then the progress streams and ends with success; ollama-js sent `name`', async () => {
      const admin = client(base, OWNER);
      const statuses: string[] = [];
      for await (const p of await admin.pull({ model: 'qwen2.5:0.5b', stream: true })) statuses.push(p.status);
      expect(statuses[0]).toBe('pulling manifest');
      expect(statuses[statuses.length - 1]).toBe('success');
      expect(statuses.length).toBeGreaterThan(5);
      expect(lastRequest(h, '/api/pull')!.body).toMatchObject({ name: 'qwen2.5:0.5b', stream: true });
      // The catalog was refreshed: the new model can be used at once.
      expect((await ollama.generate({ model: 'qwen2.5:0.5b', prompt: 'hi' })).done).toBe(true);
    });

    test('When an admin pulls without streaming, then one success object comes back', async () => {
      expect(await client(base, OWNER).pull({ model: 'gemma3:1b' })).toEqual({ status: 'success' });
    });

    test('When a pull fails inside the stream, then ollama-js throws its message', async () => {
      const err = await thrown(async () => {
        for await (const _p of await client(base, OWNER).pull({ model: 'fail-model', stream: true })) {
          /* progress */
        }
      });
      expect(err.message).toBe('pull model manifest: file does not exist');
    });

    test('When an admin copies and deletes (DELETE with a body), then Ollama does it', async () => {
      const admin = client(base, OWNER);
      await admin.copy({ source: 'mistral:7b', destination: 'mistral-copy:7b' });
      expect((await ollama.list()).models.map((m) => m.name)).toContain('mistral-copy:7b');
      await admin.delete({ model: 'mistral-copy:7b' });
      expect(lastRequest(h, '/api/delete')).toMatchObject({ method: 'DELETE', body: { name: 'mistral-copy:7b' } });
      expect((await ollama.list()).models.map((m) => m.name)).not.toContain('mistral-copy:7b');
      const missing = await thrown(() => admin.delete({ model: 'mistral-copy:7b' }));
      expect(missing.status_code).toBe(404);
      expect(missing.error).toBe("model 'mistral-copy:7b' not found");
    });

    test('When a non-admin pulls, copies, deletes or creates, then 403 and Ollama never sees it', async () => {
      for (const call of [
        () => ollama.pull({ model: 'llama3.2:1b' }),
        () => ollama.copy({ source: 'mistral:7b', destination: 'x:1' }),
        () => ollama.delete({ model: 'mistral:7b' }),
        () => ollama.create({ model: 'mine', from: 'mistral:7b' }),
        () => ollama.push({ model: 'mistral:7b' }),
      ]) {
        const err = await thrown(call);
        expect(err.status_code).toBe(403);
        expect(err.error).toBe('This route is for admin users only');
      }
      expect(h.fake.requests.filter((r) => /pull|copy|delete|create|push/.test(r.path))).toEqual([]);
    });

    test('When insecure is asked for, then 400', async () => {
      const err = await thrown(() => client(base, OWNER).pull({ model: 'x:1', insecure: true }));
      expect(err.status_code).toBe(400);
    });
  });
});

describe('/ollama refusals from our side', () => {
  test('When the queue is full, then ResponseError 503 with our message (and Retry-After)', async () => {
    const h = await startHarness({ ...USERS, MAX_CONCURRENT: '1', MAX_QUEUE: '0' });
    try {
      const base = await h.listen();
      h.fake.setBehaviour('llama3.1:8b', { kind: 'hang' });
      const holder = new AbortController();
      const running = fetch(`${base}/ollama/api/generate`, {
        method: 'POST',
        headers: { Authorization: WALDUS, 'Content-Type': 'application/json' },
        body: JSON.stringify({ model: 'llama3.1:8b', prompt: 'hold', stream: false }),
        signal: holder.signal,
      }).catch(() => undefined);
      await h.fake.waitFor(() => h.fake.stats.active === 1);
      const err = await thrown(() => client(base).generate({ model: 'llama3.1:8b', prompt: 'x' }));
      expect(err.status_code).toBe(503);
      expect(err.error).toMatch(/^The queue for 'llama3.1:8b' is full/);
      const raw = await request(h.app).post('/ollama/api/chat').set('Authorization', WALDUS).send({ model: 'llama3.1:8b', messages: [] }).expect(503);
      expect(Number(raw.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(raw.headers['content-type']).toMatch(/application\/json/);
      holder.abort();
      await running;
    } finally {
      await h.close();
    }
  });

  test('When Ollama is down, then ResponseError 503 at once, for metadata and generations', async () => {
    const h = await startHarness({ ...USERS, OLLAMA_BASE_URL: await closedPortUrl() });
    try {
      const ollama = client(await h.listen());
      const t0 = Date.now();
      const list = await thrown(() => ollama.list());
      expect(list.status_code).toBe(503);
      expect(list.error).toMatch(/^Ollama is not reachable at/);
      const gen = await thrown(() => ollama.generate({ model: 'llama3.1:8b', prompt: 'x' }));
      expect(gen.status_code).toBe(503);
      expect(gen.error).toMatch(/^Ollama is not reachable/);
      expect(Date.now() - t0).toBeLessThan(3000);
    } finally {
      await h.close();
    }
  });

  test('When Ollama goes silent mid-stream, then the stream ends with a timeout error line', async () => {
    const h = await startHarness({ ...USERS, REQUEST_TIMEOUT_S: '1', MODEL_LOAD_TIMEOUT_S: '0' });
    try {
      const ollama = client(await h.listen());
      await ollama.generate({ model: 'llama3.1:8b', prompt: 'warm' });
      h.fake.setBehaviour('llama3.1:8b', { kind: 'stall-after', chunks: 1 });
      const seen: string[] = [];
      const err = await thrown(async () => {
        for await (const c of await ollama.generate({ model: 'llama3.1:8b', prompt: 'x', stream: true })) seen.push(c.response ?? '');
      });
      expect(seen).toHaveLength(1);
      expect(err.message).toMatch(/did not answer for 'llama3.1:8b' within 1 s/);
      const whole = await thrown(() => ollama.generate({ model: 'llama3.1:8b', prompt: 'x' }));
      expect(whole.status_code).toBe(504);
    } finally {
      await h.close();
    }
  });

  test('When the rate limit is reached, then ResponseError 429', async () => {
    const h = await startHarness({ ...USERS, RATE_LIMIT_PER_MIN: '2' });
    try {
      const ollama = client(await h.listen());
      await ollama.version();
      await ollama.version();
      const err = await thrown(() => ollama.version());
      expect(err.status_code).toBe(429);
      expect(err.error).toBe('Too many requests');
    } finally {
      await h.close();
    }
  });
});
