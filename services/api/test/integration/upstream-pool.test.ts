/**
 * The upstream pool (UPSTREAMS) end to end: the real app (createClients → createServices →
 * createApp, every upstream with its own real client) listening on loopback, over two or three
 * fakes on 127.0.0.1. Routing by model, failover before the first byte (a generation runs once),
 * spill-over, the per-upstream breaker, the priority lanes (X-Priority, USER_PRIORITY, aging),
 * real statuses when nobody can serve, X-Upstream on every answer, openai-kind upstreams through
 * the mapping, /ready, and the status views without the apiKey.
 *
 * Synchronisation (who is running, who is queued) reads the pool's own status in-process; every
 * assertion is on what went over HTTP: statuses, headers, bodies, and what the fakes received.
 */
import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApp } from '../../src/app';
import { createClients, createServices, type Services } from '../../src/composition';
import { loadConfig } from '../../src/config';
import { createSilentLogger } from '../../src/logger';
import { DEFAULT_MODELS, FakeOllama } from '../fakes/fake-ollama';
import { DEFAULT_OPENAI_MODELS, FakeOpenAi } from '../fakes/fake-openai';
import { capturingLogger, closedPortUrl } from '../support/harness';

const LLAMA = 'llama3.1:8b';
const MISTRAL = 'mistral:7b';
const EMBED = 'nomic-embed-text';
const OAI_CHAT = DEFAULT_OPENAI_MODELS[0];
const OAI_EMBED = DEFAULT_OPENAI_MODELS[1];
const OAI_REPLY = 'Hello from the fake OpenAI server.';
const hello = [{ role: 'user', content: 'hello' }];

/** Random credential material (base64url: no ',' or ':' that would split AUTH_USERS). */
const secret = (n: number) => randomBytes(n).toString('base64url').slice(0, n);
const basic = (user: string, password: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The fake Ollama's default models, only these. */
const only = (...names: string[]) => DEFAULT_MODELS.filter((m) => names.includes(m.name));

async function fakeOllama(names: string[], reply: string): Promise<FakeOllama> {
  const fake = await FakeOllama.start({ models: only(...names) });
  fake.setDefaultReply(reply);
  return fake;
}

async function until(pred: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await sleep(5);
  }
}

// --- the app over a pool -------------------------------------------------------------------------

interface UpstreamSpec {
  name: string;
  url: string;
  kind: 'ollama' | 'openai';
  priority: number;
  maxConcurrent?: number;
  apiKey?: string;
}

interface PoolApp {
  base: string;
  services: Services;
  logs: string[];
  close(): Promise<void>;
}

/** Builds the app as main.ts does (no `ollama` given: each upstream gets its real client), discovery done. */
async function startPool(upstreams: UpstreamSpec[], env: Record<string, string> = {}): Promise<PoolApp> {
  const config = loadConfig({
    UPSTREAMS: JSON.stringify(upstreams),
    MODEL_DEFAULT: LLAMA,
    RATE_LIMIT_PER_MIN: '0',
    MODEL_LOAD_TIMEOUT_S: '5',
    HEALTH_CACHE_TTL_S: '0',
    ...env,
  });
  const logs: string[] = [];
  const logger = env.CAPTURE_LOGS ? capturingLogger(logs) : createSilentLogger();
  const services = createServices(config, createClients(config, logger, { docker: undefined }), logger);
  services.pool.start();
  await services.pool.refresh();
  const app = createApp({ config, logger, services });
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    services,
    logs,
    close: async () => {
      services.pool.stop();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

// --- HTTP -----------------------------------------------------------------------------------------

/** Untyped JSON, as JSON.parse gives it: the assertions check its shape. */
type Json = ReturnType<typeof JSON.parse>;

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  body: Json;
}

/** GET without a body, POST (JSON) with one; the whole answer read. */
async function call(base: string, path: string, body?: unknown, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<Answer> {
  const res = await fetch(
    `${base}${path}`,
    body === undefined
      ? { headers, signal }
      : { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body), signal },
  );
  const text = await res.text();
  let parsed: Json;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: res.status, headers: res.headers, text, body: parsed };
}

/** The objects of an NDJSON answer. */
const ndjson = (text: string): Json[] =>
  text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l));

/** The generated text of an answer of ours, whole (JSON) or streamed (NDJSON). */
function generatedText(a: Answer): string {
  if (a.body !== undefined) return a.body.response ?? a.body.message?.content;
  return ndjson(a.text)
    .map((l) => l.response ?? l.message?.content ?? '')
    .join('');
}

const GEN_PATHS = new Set(['/api/generate', '/api/chat', '/v1/chat/completions', '/v1/completions']);

/** Generation requests a fake Ollama received (optionally for one model). */
const generations = (fake: FakeOllama, model?: string) =>
  fake.requests.filter((r) => GEN_PATHS.has(r.path) && (model === undefined || (r.body as { model?: string } | undefined)?.model === model)).length;

/** The prompts of the /api/generate calls a fake received, in arrival order. */
const prompts = (fake: FakeOllama) => fake.requests.filter((r) => r.path === '/api/generate').map((r) => (r.body as { prompt: string }).prompt);

const upstreamStatus = (s: Services, name: string) => s.pool.status().find((u) => u.name === name)!;

/** A sample of a Prometheus text exposition, by name and (a subset of) its labels. */
function metric(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z_:][\w:]*)\{([^}]*)\} (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...m[2].matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}

/** The access-log line of one request. */
function accessLine(logs: string[], requestId: string | null): Record<string, unknown> | undefined {
  return logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.message === 'request' && l.requestId === requestId);
}

/**
 * Holds the only slot at `fake` with a hanging generation (the fake answers nothing until the
 * caller leaves). `release()` lets the fake answer normally again and makes the holder leave.
 */
async function holdSlot(fake: FakeOllama, base: string, headers: Record<string, string> = {}) {
  fake.setBehaviour(LLAMA, { kind: 'hang' });
  const ctrl = new AbortController();
  const holder = call(base, '/v1/generate', { prompt: 'holder' }, headers, ctrl.signal).catch(() => undefined);
  await fake.waitFor(() => fake.stats.active === 1, 5000);
  return {
    release: async () => {
      fake.resetBehaviours();
      ctrl.abort();
      await holder;
    },
  };
}

/** Sends the requests one by one, each only once the one before is queued at `upstream`. */
async function queueInOrder(
  s: Services,
  base: string,
  upstream: string,
  items: Array<{ prompt: string; headers?: Record<string, string> }>,
): Promise<Array<Promise<Answer>>> {
  const pending: Array<Promise<Answer>> = [];
  const before = upstreamStatus(s, upstream).queue.queued;
  for (const [i, it] of items.entries()) {
    pending.push(call(base, '/v1/generate', { prompt: it.prompt }, it.headers ?? {}));
    await until(() => upstreamStatus(s, upstream).queue.queued === before + i + 1, `'${it.prompt}' queued at ${upstream}`);
  }
  return pending;
}

// ---------------------------------------------------------------------------------------------------

describe('the upstream pool: routing by model over two ollama upstreams and an openai one', () => {
  let a: FakeOllama;
  let b: FakeOllama;
  let c: FakeOpenAi;
  let p: PoolApp;
  beforeAll(async () => {
    a = await fakeOllama([LLAMA, EMBED], 'reply from a');
    b = await fakeOllama([LLAMA, MISTRAL], 'reply from b');
    c = await FakeOpenAi.start();
    p = await startPool(
      [
        { name: 'a', url: a.url, kind: 'ollama', priority: 1 },
        { name: 'b', url: b.url, kind: 'ollama', priority: 2 },
        { name: 'c', url: c.url, kind: 'openai', priority: 3 },
      ],
      { CAPTURE_LOGS: '1' },
    );
  });
  afterAll(async () => {
    await p.close();
    await Promise.all([a.close(), b.close(), c.close()]);
  });
  beforeEach(() => {
    a.requests.length = 0;
    b.requests.length = 0;
    c.requests.length = 0;
  });

  test('Given a model only b has, when it is asked for whole and streamed, then b serves it (X-Upstream: b) and a never sees it', async () => {
    const whole = await call(p.base, '/v1/generate', { prompt: 'hi', model: MISTRAL });
    const streamed = await call(p.base, '/v1/chat', { messages: hello, model: MISTRAL, stream: true });
    expect([whole.status, streamed.status]).toEqual([200, 200]);
    expect([whole.headers.get('x-upstream'), streamed.headers.get('x-upstream')]).toEqual(['b', 'b']);
    expect(generatedText(whole)).toBe('reply from b');
    expect(generatedText(streamed)).toBe('reply from b');
    expect(generations(a)).toBe(0);
    expect(generations(b, MISTRAL)).toBe(2);
    expect(c.requests.filter((r) => r.method === 'POST')).toHaveLength(0);
  });

  test('Given a pool, when any surface answers, then X-Upstream names the upstream that served it', async () => {
    const schema = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] };
    const cases: Array<[string, Record<string, unknown>, string]> = [
      ['/v1/generate', { prompt: 'hi' }, 'a'],
      ['/v1/generate', { prompt: 'hi', stream: true }, 'a'],
      ['/v1/chat', { messages: hello }, 'a'],
      ['/v1/chat', { messages: hello, stream: true }, 'a'],
      ['/v1/chat', { messages: hello, model: MISTRAL, stream: true }, 'b'],
      ['/v1/embeddings', { input: `not cached ${secret(12)}` }, 'a'],
      ['/v1/embeddings', { input: `not cached ${secret(12)}`, model: OAI_EMBED }, 'c'],
      ['/v1/structured', { prompt: 'a city', schema }, 'a'],
      ['/openai/v1/chat/completions', { model: LLAMA, messages: hello }, 'a'],
      ['/openai/v1/chat/completions', { model: LLAMA, messages: hello, stream: true }, 'a'],
      ['/openai/v1/chat/completions', { model: OAI_CHAT, messages: hello, stream: true }, 'c'],
      ['/ollama/api/chat', { model: LLAMA, messages: hello }, 'a'],
      ['/ollama/api/chat', { model: MISTRAL, messages: hello, stream: false }, 'b'],
    ];
    const seen: Array<[string, number, string | null]> = [];
    for (const [path, body] of cases) {
      if (path === '/v1/structured') a.queueReplies(LLAMA, ['{"city":"Paris"}']);
      const r = await call(p.base, path, body);
      seen.push([path, r.status, r.headers.get('x-upstream')]);
    }
    expect(seen).toEqual(cases.map(([path, , upstream]) => [path, 200, upstream]));
  });

  test('Given an openai-kind upstream, when /v1/generate, /v1/chat (whole and streamed) and /v1/embeddings ask for its models, then they are mapped onto its /v1 API', async () => {
    const before = { ...c.stats };
    const gen = await call(p.base, '/v1/generate', { prompt: 'hi', model: OAI_CHAT });
    const chat = await call(p.base, '/v1/chat', { messages: hello, model: OAI_CHAT });
    const streamed = await call(p.base, '/v1/chat', { messages: hello, model: OAI_CHAT, stream: true });
    const emb = await call(p.base, '/v1/embeddings', { input: ['one', `two ${secret(12)}`], model: OAI_EMBED });

    for (const r of [gen, chat, streamed, emb]) {
      expect(r.status).toBe(200);
      expect(r.headers.get('x-upstream')).toBe('c');
    }
    expect(generatedText(gen)).toBe(OAI_REPLY);
    expect(chat.body).toMatchObject({ model: OAI_CHAT, message: { role: 'assistant', content: OAI_REPLY }, done_reason: 'stop' });
    expect(streamed.headers.get('content-type')).toMatch(/ndjson/);
    const lines = ndjson(streamed.text);
    expect(generatedText(streamed)).toBe(OAI_REPLY);
    expect(lines[lines.length - 1]).toMatchObject({ done: true, done_reason: 'stop' });
    expect(emb.body).toMatchObject({ model: OAI_EMBED, dimensions: 8 });
    expect(emb.body.embeddings).toHaveLength(2);

    // What the openai upstream received: its own API, once per request.
    const posts = c.requests.filter((r) => r.method === 'POST');
    expect(posts.map((r) => r.path)).toEqual(['/v1/chat/completions', '/v1/chat/completions', '/v1/chat/completions', '/v1/embeddings']);
    expect(posts[1].body).toMatchObject({ model: OAI_CHAT, messages: [{ role: 'user', content: 'hello' }] });
    expect(posts[3].body).toMatchObject({ model: OAI_EMBED, input: ['one', expect.stringMatching(/^two /)] });
    expect(c.stats.generations - before.generations).toBe(3);
    expect(c.stats.embeddings - before.embeddings).toBe(1);
    expect(generations(a) + generations(b)).toBe(0);
  });

  test('Given a model only the openai upstream has, when /ollama/api/chat asks for it, then 400 UPSTREAM_KIND_UNSUPPORTED naming that upstream, and nothing is sent', async () => {
    const r = await call(p.base, '/ollama/api/chat', { model: OAI_CHAT, messages: hello });
    expect(r.status).toBe(400);
    // The /ollama surface keeps Ollama's error shape ({"error":"<message>"}); the code is in the access line.
    expect(r.body.error).toEqual(expect.stringContaining(`'${OAI_CHAT}' is served by an openai upstream (c)`));
    expect(accessLine(p.logs, r.headers.get('x-request-id'))).toMatchObject({ status: 400, errorCode: 'UPSTREAM_KIND_UNSUPPORTED' });
    expect(c.requests.filter((x) => x.method === 'POST')).toHaveLength(0);
    expect(generations(a) + generations(b)).toBe(0);
  });

  test('Given a bad X-Priority, when a request comes on /v1 or /openai/v1, then 400 VALIDATION_ERROR before any upstream call', async () => {
    const v1 = await call(p.base, '/v1/generate', { prompt: 'hi' }, { 'x-priority': 'urgent' });
    expect(v1.status).toBe(400);
    expect(v1.body.error).toMatchObject({ code: 'VALIDATION_ERROR' });
    const oai = await call(p.base, '/openai/v1/chat/completions', { model: LLAMA, messages: hello }, { 'x-priority': 'HIGHEST' });
    expect(oai.status).toBe(400);
    expect(oai.body.error).toMatchObject({ code: 'VALIDATION_ERROR' });
    // Case and spaces are forgiven for good values.
    const ok = await call(p.base, '/v1/generate', { prompt: 'hi' }, { 'x-priority': ' High ' });
    expect(ok.status).toBe(200);
    expect(generations(a) + generations(b)).toBe(1);
  });
});

describe('the upstream pool: /v1/structured (several attempts in one slot)', () => {
  const schema = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] };
  let a: FakeOllama;
  let b: FakeOllama;
  let p: PoolApp;
  beforeEach(async () => {
    a = await fakeOllama([LLAMA], 'reply from a');
    b = await fakeOllama([LLAMA], 'reply from b');
    p = await startPool([
      { name: 'a', url: a.url, kind: 'ollama', priority: 1 },
      { name: 'b', url: b.url, kind: 'ollama', priority: 2 },
    ]);
  });
  afterEach(async () => {
    await p.close();
    await Promise.all([a.close(), b.close()]);
  });

  test('Given a valid answer, then 200 with the data and X-Upstream: a', async () => {
    a.queueReplies(LLAMA, ['{"city":"Paris"}']);
    const r = await call(p.base, '/v1/structured', { prompt: 'capital of France', schema });
    expect([r.status, r.headers.get('x-upstream')]).toEqual([200, 'a']);
    expect(r.body).toMatchObject({ data: { city: 'Paris' }, attempts: 1 });
  });

  // The attempts pass the upstream's acceptance on: a 422 names the upstream that answered too.
  test('Given a never complies, then 422 SCHEMA_VALIDATION_FAILED still names the upstream that answered (X-Upstream: a)', async () => {
    a.queueReplies(LLAMA, ['no json here', 'still no json']);
    const r = await call(p.base, '/v1/structured', { prompt: 'capital of France', schema });
    expect(r.status).toBe(422);
    expect(r.body.error.code).toBe('SCHEMA_VALIDATION_FAILED');
    expect(generations(b)).toBe(0);
    expect(r.headers.get('x-upstream')).toBe('a');
  });

  // The attempt loop runs inside the pool's try: the first event commits it to a (no rerun on b).
  test('Given a fails in the middle of its answer, then the request is not run again on b (after the first byte nothing is retried)', async () => {
    a.setBehaviour(LLAMA, { kind: 'midstream-error', afterChunks: 1 });
    const r = await call(p.base, '/v1/structured', { prompt: 'capital of France', schema });
    expect(generations(a)).toBe(1);
    expect(generations(b)).toBe(0);
    expect(r.status).toBeGreaterThanOrEqual(500);
  });
});

describe('the upstream pool: failover before the first byte', () => {
  const combos: Array<[string, Record<string, unknown>]> = [
    ['/v1/generate', { prompt: 'whole' }],
    ['/v1/generate', { prompt: 'streamed', stream: true }],
    ['/v1/chat', { messages: hello }],
    ['/v1/chat', { messages: hello, stream: true }],
  ];

  /** Every combination of `combos`, one after the other: 200 from b ("reply from b"), one generation each at b. */
  async function expectEachServedOnceByB(p: PoolApp, b: FakeOllama): Promise<void> {
    for (const [i, [path, body]] of combos.entries()) {
      const r = await call(p.base, path, body);
      expect([path, r.status, r.headers.get('x-upstream')]).toEqual([path, 200, 'b']);
      expect(generatedText(r)).toBe('reply from b');
      expect(generations(b, LLAMA)).toBe(i + 1);
    }
  }

  test('Given a refuses connections from the start, when generate and chat ask (whole and streamed) for a model both list, then b serves each exactly once', async () => {
    const b = await fakeOllama([LLAMA], 'reply from b');
    const p = await startPool([
      { name: 'a', url: await closedPortUrl(), kind: 'ollama', priority: 1 },
      { name: 'b', url: b.url, kind: 'ollama', priority: 2 },
    ]);
    try {
      await expectEachServedOnceByB(p, b);
    } finally {
      await p.close();
      await b.close();
    }
  });

  test('Given a stops after it was discovered, when generate and chat ask (whole and streamed), then each moves to b before any byte and runs there exactly once', async () => {
    const a = await fakeOllama([LLAMA], 'reply from a');
    const b = await fakeOllama([LLAMA], 'reply from b');
    const p = await startPool([
      { name: 'a', url: a.url, kind: 'ollama', priority: 1 },
      { name: 'b', url: b.url, kind: 'ollama', priority: 2 },
    ]);
    try {
      const first = await call(p.base, '/v1/generate', { prompt: 'a is up' });
      expect(first.headers.get('x-upstream')).toBe('a');
      await a.close();
      await expectEachServedOnceByB(p, b);
      expect(generations(a)).toBe(1); // only the one before it stopped
      // Three refusals open a's breaker (BREAKER.failureThreshold); the fourth request skips a.
      expect(upstreamStatus(p.services, 'a')).toMatchObject({ failedOver: 3, breaker: { state: 'open' } });
      expect(upstreamStatus(p.services, 'b').served).toBe(4);
    } finally {
      await p.close();
      await b.close();
    }
  });

  test('Given a fails after its first byte, when generate asks (whole and streamed), then nothing is retried on b: an error, and b saw no generation', async () => {
    const a = await fakeOllama([LLAMA], 'one two three four');
    const b = await fakeOllama([LLAMA], 'reply from b');
    const p = await startPool([
      { name: 'a', url: a.url, kind: 'ollama', priority: 1 },
      { name: 'b', url: b.url, kind: 'ollama', priority: 2 },
    ]);
    try {
      a.setBehaviour(LLAMA, { kind: 'midstream-error', afterChunks: 1 });
      const whole = await call(p.base, '/v1/generate', { prompt: 'whole' });
      expect(whole.status).toBeGreaterThanOrEqual(500);
      expect(whole.body.error.code).toEqual(expect.any(String));
      const streamed = await call(p.base, '/v1/generate', { prompt: 'streamed', stream: true });
      // The headers went out with a's first token: the stream ends with an error line.
      expect([streamed.status, streamed.headers.get('x-upstream')]).toEqual([200, 'a']);
      const lines = ndjson(streamed.text);
      expect(lines[0]).toMatchObject({ response: 'one', done: false });
      expect(lines[lines.length - 1].error.code).toEqual(expect.any(String));
      expect(generations(a)).toBe(2);
      expect(generations(b)).toBe(0);
    } finally {
      await p.close();
      await Promise.all([a.close(), b.close()]);
    }
  });
});

describe('the upstream pool: spill-over to the next upstream', () => {
  test('Given a (maxConcurrent 1) busy with one queued behind it, when its estimated wait (2 rounds × 5 s with no service time yet) exceeds SPILL_AFTER_MS, then the next request goes to b', async () => {
    const a = await fakeOllama([LLAMA], 'reply from a');
    const b = await fakeOllama([LLAMA], 'reply from b');
    // 7000: one running at a (1 round × the 5000 ms fallback) is not enough to spill, one queued (2 rounds) is.
    const p = await startPool(
      [
        { name: 'a', url: a.url, kind: 'ollama', priority: 1, maxConcurrent: 1 },
        { name: 'b', url: b.url, kind: 'ollama', priority: 2 },
      ],
      { SPILL_AFTER_MS: '7000' },
    );
    try {
      const hold = await holdSlot(a, p.base);
      const [queuedAtA] = await queueInOrder(p.services, p.base, 'a', [{ prompt: 'waits at a' }]);
      expect(upstreamStatus(p.services, 'a').queue.estimatedWaitMs).toBeGreaterThan(7000);

      const spilled = await call(p.base, '/v1/generate', { prompt: 'spilled' });
      expect(spilled.status).toBe(200);
      expect(spilled.headers.get('x-upstream')).toBe('b');
      expect(generatedText(spilled)).toBe('reply from b');

      await hold.release();
      const waited = await queuedAtA;
      expect(waited.status).toBe(200);
      expect(waited.headers.get('x-upstream')).toBe('a');
      expect(Number(waited.headers.get('x-queue-wait-ms'))).toBeGreaterThan(0);
      expect(prompts(a)).toEqual(['holder', 'waits at a']);
      expect(prompts(b)).toEqual(['spilled']);
    } finally {
      await p.close();
      await Promise.all([a.close(), b.close()]);
    }
  });

  test('Given SPILL_AFTER_MS 1 and a busy, when a request comes, then it goes to b at once instead of queueing at a', async () => {
    const a = await fakeOllama([LLAMA], 'reply from a');
    const b = await fakeOllama([LLAMA], 'reply from b');
    const p = await startPool(
      [
        { name: 'a', url: a.url, kind: 'ollama', priority: 1, maxConcurrent: 1 },
        { name: 'b', url: b.url, kind: 'ollama', priority: 2 },
      ],
      { SPILL_AFTER_MS: '1' },
    );
    try {
      const hold = await holdSlot(a, p.base);
      const r = await call(p.base, '/v1/chat', { messages: hello, stream: true });
      expect(r.status).toBe(200);
      expect(r.headers.get('x-upstream')).toBe('b');
      expect(upstreamStatus(p.services, 'a').queue.queued).toBe(0);
      await hold.release();
      expect(generations(a)).toBe(1);
      expect(generations(b)).toBe(1);
    } finally {
      await p.close();
      await Promise.all([a.close(), b.close()]);
    }
  });
});

describe('the upstream pool: the per-upstream breaker', () => {
  test('Given a fails 3 times, then its breaker is open (status.json, /metrics) and b serves alone; when a is back on its port and the open time is over, then a probe request closes it', async () => {
    const owner = secret(24);
    const ADMIN = basic('owner', owner);
    const a = await fakeOllama([LLAMA], 'reply from a');
    const b = await fakeOllama([LLAMA], 'reply from b');
    const aPort = a.port;
    let back: FakeOllama | undefined;
    const p = await startPool(
      [
        { name: 'a', url: a.url, kind: 'ollama', priority: 1 },
        { name: 'b', url: b.url, kind: 'ollama', priority: 2 },
      ],
      { AUTH_USERS: `owner:${owner}`, ADMIN_USERS: 'owner' },
    );
    const gen = (prompt: string) => call(p.base, '/v1/generate', { prompt }, ADMIN);
    const upstreamsJson = async () => {
      const r = await call(p.base, '/admin/status.json', undefined, ADMIN);
      expect(r.status).toBe(200);
      return r.body.upstreams as Array<{ name: string; state: string; breaker: { state: string; retryInMs: number } }>;
    };
    const metrics = async () => {
      const r = await call(p.base, '/metrics', undefined, ADMIN);
      expect(r.status).toBe(200);
      return r.text;
    };
    try {
      expect((await gen('a is up')).headers.get('x-upstream')).toBe('a');
      await a.close();
      for (let i = 0; i < 3; i++) {
        const r = await gen(`a is down ${i}`);
        expect([r.status, r.headers.get('x-upstream')]).toEqual([200, 'b']);
      }

      const open = (await upstreamsJson()).find((u) => u.name === 'a')!;
      expect(open).toMatchObject({ state: 'down', breaker: { state: 'open' } });
      expect(open.breaker.retryInMs).toBeGreaterThan(0);
      let text = await metrics();
      expect(metric(text, 'ai_local_upstream_breaker_open', { upstream: 'a', kind: 'ollama' })).toBe(1);
      expect(metric(text, 'ai_local_upstream_breaker_open', { upstream: 'b', kind: 'ollama' })).toBe(0);
      expect(metric(text, 'ai_local_upstream_up', { upstream: 'a', kind: 'ollama' })).toBe(0);
      expect(metric(text, 'ai_local_upstream_up', { upstream: 'b', kind: 'ollama' })).toBe(1);
      expect(metric(text, 'ai_local_upstream_failovers_total', { from: 'a', to: 'b' })).toBe(3);

      // Open: a is not tried at all any more.
      const skipped = await gen('breaker open');
      expect([skipped.status, skipped.headers.get('x-upstream')]).toEqual([200, 'b']);
      expect(metric(await metrics(), 'ai_local_upstream_failovers_total', { from: 'a', to: 'b' })).toBe(3);

      // a comes back on the same port; once the open time is over, the next request is the probe.
      back = await FakeOllama.start({ port: aPort, models: only(LLAMA) });
      back.setDefaultReply('reply from a again');
      await sleep(open.breaker.retryInMs + 500);
      const probe = await gen('probe');
      expect([probe.status, probe.headers.get('x-upstream')]).toEqual([200, 'a']);
      expect(generatedText(probe)).toBe('reply from a again');

      const closed = (await upstreamsJson()).find((u) => u.name === 'a')!;
      expect(closed).toMatchObject({ state: 'up', breaker: { state: 'closed' } });
      text = await metrics();
      expect(metric(text, 'ai_local_upstream_breaker_open', { upstream: 'a', kind: 'ollama' })).toBe(0);
      expect(metric(text, 'ai_local_upstream_up', { upstream: 'a', kind: 'ollama' })).toBe(1);
      expect((await gen('back to normal')).headers.get('x-upstream')).toBe('a');
    } finally {
      await p.close();
      await Promise.all([b.close(), back?.close()]);
    }
  }, 45_000);
});

describe('the upstream pool: priority lanes', () => {
  const single = (a: FakeOllama): UpstreamSpec[] => [{ name: 'a', url: a.url, kind: 'ollama', priority: 1, maxConcurrent: 1 }];

  test('Given the only slot is taken, when low, normal and high requests queue in that order, then they are served high, normal, low', async () => {
    const a = await fakeOllama([LLAMA], 'reply from a');
    const p = await startPool(single(a));
    try {
      const hold = await holdSlot(a, p.base);
      const pending = await queueInOrder(p.services, p.base, 'a', [
        { prompt: 'low', headers: { 'x-priority': 'low' } },
        { prompt: 'normal', headers: { 'x-priority': 'normal' } },
        { prompt: 'high', headers: { 'x-priority': 'high' } },
      ]);
      await hold.release();
      const answers = await Promise.all(pending);
      expect(answers.map((r) => [r.status, r.headers.get('x-upstream')])).toEqual([
        [200, 'a'],
        [200, 'a'],
        [200, 'a'],
      ]);
      expect(prompts(a)).toEqual(['holder', 'high', 'normal', 'low']);
    } finally {
      await p.close();
      await a.close();
    }
  });

  test('Given PRIORITY_AGING_S 0.2, when a low request has waited longer than that before a normal one queues, then the low one is served first (aged)', async () => {
    const a = await fakeOllama([LLAMA], 'reply from a');
    const p = await startPool(single(a), { PRIORITY_AGING_S: '0.2' });
    try {
      const hold = await holdSlot(a, p.base);
      const [low] = await queueInOrder(p.services, p.base, 'a', [{ prompt: 'low', headers: { 'x-priority': 'low' } }]);
      await sleep(500); // ≥ 2 aging steps: low now counts as high, placed at enqueue + 400 ms
      const [normal] = await queueInOrder(p.services, p.base, 'a', [{ prompt: 'normal' }]);
      await hold.release();
      expect((await low).status).toBe(200);
      expect((await normal).status).toBe(200);
      expect(prompts(a)).toEqual(['holder', 'low', 'normal']);
      const lanes = p.services.pool.stats().find((s) => s.model === LLAMA)!.lanes;
      expect(lanes.low).toMatchObject({ served: 1, aged: 1 });
    } finally {
      await p.close();
      await a.close();
    }
  });

  test('Given USER_PRIORITY waldus=high and auth on, when waldus queues after another user, then waldus is served first; an explicit X-Priority still wins', async () => {
    const pw = { waldus: secret(24), other: secret(24) };
    const WALDUS = basic('waldus', pw.waldus);
    const OTHER = basic('other', pw.other);
    const a = await fakeOllama([LLAMA], 'reply from a');
    const p = await startPool(single(a), { AUTH_USERS: `waldus:${pw.waldus},other:${pw.other}`, USER_PRIORITY: 'waldus=high' });
    try {
      const hold = await holdSlot(a, p.base, OTHER);
      const pending = await queueInOrder(p.services, p.base, 'a', [
        { prompt: 'other', headers: OTHER },
        { prompt: 'waldus explicitly low', headers: { ...WALDUS, 'x-priority': 'low' } },
        { prompt: 'waldus', headers: WALDUS },
      ]);
      await hold.release();
      expect((await Promise.all(pending)).map((r) => r.status)).toEqual([200, 200, 200]);
      expect(prompts(a)).toEqual(['holder', 'waldus', 'other', 'waldus explicitly low']);
    } finally {
      await p.close();
      await a.close();
    }
  });
});

describe('the upstream pool: nobody can serve', () => {
  const requests: Array<[string, Record<string, unknown>]> = [
    ['/v1/generate', { prompt: 'hi' }],
    ['/v1/generate', { prompt: 'hi', stream: true }],
    ['/v1/chat', { messages: hello, stream: true }],
    ['/ollama/api/chat', { model: LLAMA, messages: hello }],
    ['/openai/v1/chat/completions', { model: LLAMA, messages: hello, stream: true }],
  ];

  /** A real 503 with Retry-After and a JSON error body (our code where the surface's shape has one). */
  function expectUnavailable(path: string, r: Answer) {
    expect([path, r.status]).toEqual([path, 503]);
    expect(r.headers.get('retry-after')).toMatch(/^[1-9]\d*$/);
    expect(r.headers.get('content-type')).toMatch(/^application\/json/);
    if (path.startsWith('/ollama')) expect(typeof r.body.error).toBe('string');
    else expect(['OLLAMA_UNAVAILABLE', 'NO_UPSTREAM']).toContain(r.body.error.code);
  }

  test('Given every upstream refuses connections from the start, when each surface asks (whole and streamed), then a real 503 with Retry-After, never 200 + an error line', async () => {
    const p = await startPool(
      [
        { name: 'a', url: await closedPortUrl(), kind: 'ollama', priority: 1 },
        { name: 'b', url: await closedPortUrl(), kind: 'openai', priority: 2 },
      ],
      { CAPTURE_LOGS: '1' },
    );
    try {
      for (const [path, body] of requests) {
        const r = await call(p.base, path, body);
        expectUnavailable(path, r);
        if (path.startsWith('/ollama')) expect(accessLine(p.logs, r.headers.get('x-request-id'))?.errorCode).toBe('OLLAMA_UNAVAILABLE');
      }
    } finally {
      await p.close();
    }
  });

  test('Given both upstreams were up and then stop, when each surface asks (failover to nowhere, then open breakers), then a real 503 with Retry-After', async () => {
    const a = await fakeOllama([LLAMA], 'reply from a');
    const b = await FakeOpenAi.start({ models: [LLAMA] });
    const p = await startPool([
      { name: 'a', url: a.url, kind: 'ollama', priority: 1 },
      { name: 'b', url: b.url, kind: 'openai', priority: 2 },
    ]);
    try {
      expect((await call(p.base, '/v1/generate', { prompt: 'up' })).status).toBe(200);
      await Promise.all([a.close(), b.close()]);
      for (const [path, body] of requests) expectUnavailable(path, await call(p.base, path, body));
      // The first calls failed over from a to b; by now both breakers are open: still 503.
      expect(p.services.pool.status().map((u) => u.breaker.state)).toEqual(['open', 'open']);
      for (const [path, body] of requests) expectUnavailable(path, await call(p.base, path, body));
    } finally {
      await p.close();
    }
  });
});

describe('the upstream pool: /ready', () => {
  test('Given both upstreams up, then /ready is 200 and lists both; when both stop, then the next check is 503 NO_UPSTREAM', async () => {
    const a = await fakeOllama([LLAMA], 'reply from a');
    const b = await FakeOpenAi.start({ models: [LLAMA, OAI_CHAT] });
    const p = await startPool([
      { name: 'a', url: a.url, kind: 'ollama', priority: 1 },
      { name: 'b', url: b.url, kind: 'openai', priority: 2 },
    ]);
    try {
      const ready = await call(p.base, '/ready');
      expect(ready.status).toBe(200);
      expect(ready.body).toMatchObject({ status: 'ready', defaultModel: { name: LLAMA, installed: true } });
      expect(ready.body.upstreams).toEqual([
        { name: 'a', kind: 'ollama', state: 'up', breaker: 'closed', servesDefault: true },
        { name: 'b', kind: 'openai', state: 'up', breaker: 'closed', servesDefault: true },
      ]);

      await Promise.all([a.close(), b.close()]);
      // The check asks both upstreams; both refusing is enough (no wait for the breakers to open).
      const down = await call(p.base, '/ready?force=true');
      expect(down.status).toBe(503);
      expect(down.body).toMatchObject({ status: 'unavailable', code: 'NO_UPSTREAM' });
      expect(down.headers.get('retry-after')).toMatch(/^[1-9]\d*$/);
      expect(down.body.upstreams.map((u: { name: string }) => u.name)).toEqual(['a', 'b']);
    } finally {
      await p.close();
    }
  });

  test('Given every upstream refuses connections from the start, then /ready is 503 NO_UPSTREAM listing both', async () => {
    const p = await startPool([
      { name: 'a', url: await closedPortUrl(), kind: 'ollama', priority: 1 },
      { name: 'b', url: await closedPortUrl(), kind: 'openai', priority: 2 },
    ]);
    try {
      const r = await call(p.base, '/ready');
      expect(r.status).toBe(503);
      expect(r.body).toMatchObject({ status: 'unavailable', code: 'NO_UPSTREAM' });
      expect(r.body.upstreams).toEqual([
        expect.objectContaining({ name: 'a', kind: 'ollama', state: 'down', servesDefault: false }),
        expect.objectContaining({ name: 'b', kind: 'openai', state: 'down', servesDefault: false }),
      ]);
    } finally {
      await p.close();
    }
  });
});

describe('the upstream pool: secrets stay out of the status views', () => {
  test('Given b has an apiKey, then it reaches b as a Bearer token and appears in neither /admin/status.json, /ready, /metrics nor the logs', async () => {
    const apiKey = `sk-test-${secret(24)}`;
    const owner = secret(24);
    const ADMIN = basic('owner', owner);
    const a = await fakeOllama([LLAMA], 'reply from a');
    const b = await FakeOpenAi.start({ apiKey });
    const p = await startPool(
      [
        { name: 'a', url: a.url, kind: 'ollama', priority: 1 },
        { name: 'b', url: b.url, kind: 'openai', priority: 2, apiKey },
      ],
      { AUTH_USERS: `owner:${owner}`, ADMIN_USERS: 'owner', CAPTURE_LOGS: '1' },
    );
    try {
      // b is used (discovery and a chat), so its key is live in the process.
      const chat = await call(p.base, '/v1/chat', { messages: hello, model: OAI_CHAT }, ADMIN);
      expect([chat.status, chat.headers.get('x-upstream')]).toEqual([200, 'b']);
      expect(b.requests.find((r) => r.path === '/v1/chat/completions')?.headers.authorization).toBe(`Bearer ${apiKey}`);

      const status = await call(p.base, '/admin/status.json', undefined, ADMIN);
      expect(status.status).toBe(200);
      expect(status.body.upstreams.map((u: { name: string }) => u.name)).toEqual(['a', 'b']);
      expect(status.body.upstreams[1]).toMatchObject({ name: 'b', kind: 'openai', url: b.url });
      expect(status.body.upstreams[1]).not.toHaveProperty('apiKey');
      const ready = await call(p.base, '/ready', undefined, ADMIN);
      const metrics = await call(p.base, '/metrics', undefined, ADMIN);
      expect(metrics.status).toBe(200);
      expect(metric(metrics.text, 'ai_local_upstream_up', { upstream: 'b', kind: 'openai' })).toBe(1);

      const keyPart = apiKey.slice('sk-test-'.length);
      for (const [what, text] of [
        ['/admin/status.json', status.text],
        ['/ready', ready.text],
        ['/metrics', metrics.text],
        ['logs', p.logs.join('\n')],
      ]) {
        expect([what, text.includes(keyPart)]).toEqual([what, false]);
      }
    } finally {
      await p.close();
      await Promise.all([a.close(), b.close()]);
    }
  });
});

describe('the upstream pool: model management takes ?upstream=', () => {
  const admin = { user: 'owner', password: secret(24) };
  let a: FakeOllama;
  let b: FakeOllama;
  let c: FakeOpenAi;
  let p: PoolApp;
  beforeAll(async () => {
    a = await fakeOllama([LLAMA], 'from a');
    b = await fakeOllama([LLAMA], 'from b');
    c = await FakeOpenAi.start({});
    p = await startPool(
      [
        { name: 'a', url: a.url, kind: 'ollama', priority: 1 },
        { name: 'b', url: b.url, kind: 'ollama', priority: 2 },
        { name: 'c', url: c.url, kind: 'openai', priority: 3 },
      ],
      { AUTH_USERS: `${admin.user}:${admin.password}`, ADMIN_USERS: admin.user },
    );
  });
  afterAll(async () => {
    await p.close();
    await Promise.all([a.close(), b.close(), c.close()]);
  });

  const pulls = (f: FakeOllama) => f.requests.filter((r) => r.path === '/api/pull').length;

  test('Given no ?upstream, when an admin pulls, then the first ollama upstream pulls it; ?upstream=b sends it to b', async () => {
    const auth = basic(admin.user, admin.password);
    const first = await call(p.base, '/admin/models/pull', { model: 'mistral:7b', stream: false }, auth);
    expect(first.status).toBe(200);
    expect([pulls(a), pulls(b)]).toEqual([1, 0]);
    const second = await call(p.base, '/admin/models/pull?upstream=b', { model: 'mistral:7b', stream: false }, auth);
    expect(second.status).toBe(200);
    expect([pulls(a), pulls(b)]).toEqual([1, 1]);
    const native = await call(p.base, '/ollama/api/pull?upstream=b', { model: 'mistral:7b', stream: false }, auth);
    expect(native.status).toBe(200);
    expect([pulls(a), pulls(b)]).toEqual([1, 2]);
  });

  test('Given ?upstream names an openai upstream or nobody, then 400 UPSTREAM_KIND_UNSUPPORTED or 404, and nothing is pulled', async () => {
    const auth = basic(admin.user, admin.password);
    const before = [pulls(a), pulls(b)];
    const openai = await call(p.base, '/admin/models/pull?upstream=c', { model: 'mistral:7b', stream: false }, auth);
    expect(openai.status).toBe(400);
    expect(openai.body.error).toMatchObject({ code: 'UPSTREAM_KIND_UNSUPPORTED', message: expect.stringContaining("'c' is an openai upstream") });
    const nobody = await call(p.base, '/admin/models/pull?upstream=nope', { model: 'mistral:7b', stream: false }, auth);
    expect(nobody.status).toBe(404);
    expect(nobody.body.error.message).toContain("No upstream is named 'nope'");
    expect([pulls(a), pulls(b)]).toEqual(before);
    expect(c.requests.filter((r) => r.method === 'POST')).toHaveLength(0);
  });
});
