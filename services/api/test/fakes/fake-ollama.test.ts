import * as http from 'node:http';
import { Ollama } from 'ollama';
import OpenAI from 'openai';
import { ERR_CRASH, ERR_OOM_DEFAULT, ERR_OOM_LEGACY, ERR_QUEUE_FULL, FakeOllama, fakeEmbedding, goQuote, parseGoDuration, tokenize } from './fake-ollama';
import { parseArgs, parseBehaviour } from './run-fake-ollama';

const JSON_CT = 'application/json; charset=utf-8';

let fake: FakeOllama;
let ollama: Ollama;
let openai: OpenAI;

async function post(path: string, body: unknown, init: RequestInit = {}): Promise<Response> {
  return fetch(fake.url + path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    ...init,
  });
}

function ndjson(text: string): Array<Record<string, unknown>> {
  expect(text.endsWith('\n')).toBe(true);
  return text
    .slice(0, -1)
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Raw request: resolves with the time until the response head arrived and the whole body. */
function rawRequest(path: string, body: unknown): Promise<{ status: number; headMs: number; headers: http.IncomingHttpHeaders; text: string }> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const data = JSON.stringify(body);
    const req = http.request(
      fake.url + path,
      { method: 'POST', headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) } },
      (res) => {
        const headMs = Date.now() - t0;
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headMs, headers: res.headers, text }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

async function expectOllamaError(p: Promise<unknown>, status: number, message: string): Promise<void> {
  await expect(p).rejects.toMatchObject({ status_code: status, error: message });
}

async function restart(opts: Parameters<typeof FakeOllama.start>[0]): Promise<void> {
  fake = await FakeOllama.start(opts);
  ollama = new Ollama({ host: fake.url });
  openai = new OpenAI({ baseURL: fake.url + '/v1', apiKey: 'x', maxRetries: 0 });
}

beforeEach(async () => {
  await restart({ tokenDelayMs: 1, pullDelayMs: 10 });
});

afterEach(async () => {
  await fake.close();
});

describe('helpers', () => {
  it('goQuote matches Go %q', () => {
    expect(goQuote('"xml"')).toBe('"\\"xml\\""');
    expect(goQuote('a\nb\\')).toBe('"a\\nb\\\\"');
  });
  it('parseGoDuration follows time.ParseDuration', () => {
    expect(parseGoDuration('5m')).toBe(300_000);
    expect(parseGoDuration('1h30m')).toBe(5_400_000);
    expect(parseGoDuration('-1m')).toBe(-60_000);
    expect(parseGoDuration('0')).toBe(0);
    expect(() => parseGoDuration('300')).toThrow('time: missing unit in duration "300"');
    expect(() => parseGoDuration('5x')).toThrow('time: unknown unit "x" in duration "5x"');
  });
  it('tokenize keeps the spaces', () => {
    expect(tokenize('Hello from the fake Ollama.')).toEqual(['Hello', ' from', ' the', ' fake', ' Ollama.']);
    expect(tokenize('a  b ').join('')).toBe('a  b ');
  });
  it('fakeEmbedding is deterministic and unit length', () => {
    const a = fakeEmbedding('hello', 768);
    expect(a).toHaveLength(768);
    expect(fakeEmbedding('hello', 768)).toEqual(a);
    expect(fakeEmbedding('other', 768)).not.toEqual(a);
    expect(Math.sqrt(a.reduce((s, x) => s + x * x, 0))).toBeCloseTo(1, 5);
  });
  it('CLI argument parsing', () => {
    const { opts, behaviours } = parseArgs([
      '--port',
      '0',
      '--token-delay-ms',
      '20',
      '--load-delay-ms=5',
      '--models',
      'llama3.1:8b,nomic-embed-text',
      '--behaviour',
      'llama3.1:8b=midstream-error:3',
    ]);
    expect(opts).toMatchObject({ port: 0, tokenDelayMs: 20, loadDelayMs: 5 });
    expect(opts.models?.map((m) => [m.name, m.capabilities])).toEqual([
      ['llama3.1:8b', ['completion', 'tools']],
      ['nomic-embed-text', ['embedding']],
    ]);
    expect(behaviours).toEqual([['llama3.1:8b', { kind: 'midstream-error', afterChunks: 3 }]]);
    expect(parseBehaviour('reject:400:"m" does not support tools')).toEqual({ kind: 'reject', status: 400, error: '"m" does not support tools' });
    expect(() => parseArgs(['--bogus'])).toThrow('unknown argument');
  });
});

describe('metadata routes (official ollama client)', () => {
  it('GET/HEAD / and version', async () => {
    const r = await fetch(fake.url + '/');
    expect(r.status).toBe(200);
    expect(await r.text()).toBe('Ollama is running');
    const h = await fetch(fake.url + '/', { method: 'HEAD' });
    expect(h.status).toBe(200);
    expect(await ollama.version()).toEqual({ version: '0.32.15' });
  });

  it('list returns full tag entries', async () => {
    const { models } = await ollama.list();
    expect(models.map((m) => m.name)).toEqual(['llama3.1:8b', 'mistral:7b', 'nomic-embed-text:latest', 'llava:7b']);
    const llava = models.find((m) => m.name === 'llava:7b');
    expect(llava).toMatchObject({
      model: 'llava:7b',
      size: 4_733_363_377,
      details: { format: 'gguf', family: 'llama', families: ['llama', 'clip'], parameter_size: '7B', quantization_level: 'Q4_0', parent_model: '' },
    });
    expect(llava?.digest).toMatch(/^[0-9a-f]{64}$/);
    expect(new Date(String(llava?.modified_at)).getTime()).toBeGreaterThan(0);
    const raw = (await (await fetch(fake.url + '/api/tags')).json()) as { models: Array<{ capabilities: string[] }> };
    expect(raw.models[2].capabilities).toEqual(['embedding']);
  });

  it('show returns modelfile, parameters, template, details, model_info, capabilities', async () => {
    const s = await ollama.show({ model: 'llava:7b' });
    expect(s.capabilities).toEqual(['completion', 'vision']);
    expect(s.modelfile).toContain('FROM ');
    expect(s.template).toContain('.Prompt');
    expect(s.parameters).toContain('stop');
    expect(s.details.family).toBe('llama');
    expect((s.model_info as unknown as Record<string, unknown>)['general.architecture']).toBe('llama');
    expect(((await ollama.show({ model: 'nomic-embed-text' })).model_info as unknown as Record<string, unknown>)['nomic-bert.embedding_length']).toBe(768);
    await expectOllamaError(ollama.show({ model: 'nope' }), 404, "model 'nope' not found");
  });

  it('ps reflects loads, keep_alive and partial offload', async () => {
    fake.addModel({ name: 'big:70b', sizeBytes: 40e9, sizeVramBytes: 11e9, capabilities: ['completion'] });
    expect((await ollama.ps()).models).toEqual([]);
    await ollama.generate({ model: 'big:70b', prompt: 'hi', keep_alive: -1 });
    await ollama.generate({ model: 'llama3.1:8b', prompt: 'hi', keep_alive: '10m', options: { num_ctx: 8192 } });
    const { models } = await ollama.ps();
    expect(models.map((m) => m.name).sort()).toEqual(['big:70b', 'llama3.1:8b']);
    const big = models.find((m) => m.name === 'big:70b');
    expect(big?.size_vram).toBeLessThan(big?.size ?? 0);
    expect(new Date(String(big?.expires_at)).getFullYear()).toBeGreaterThan(2200);
    const llama = models.find((m) => m.name === 'llama3.1:8b');
    const exp = new Date(String(llama?.expires_at)).getTime() - Date.now();
    expect(exp).toBeGreaterThan(9 * 60_000);
    expect(exp).toBeLessThanOrEqual(10 * 60_000);
    expect((llama as unknown as { context_length: number }).context_length).toBe(8192);
    // keep_alive 0 unloads right after the request
    await ollama.generate({ model: 'llama3.1:8b', prompt: 'bye', keep_alive: 0, options: { num_ctx: 8192 } });
    expect(fake.loadedModels()).toEqual(['big:70b']);
  });
});

describe('generate and chat (official ollama client)', () => {
  it('generate non-stream returns the default reply with metrics', async () => {
    const r = await ollama.generate({ model: 'llama3.1:8b', prompt: 'say hello to me' });
    expect(r.response).toBe('Hello from the fake Ollama.');
    expect(r.done).toBe(true);
    expect(r.done_reason).toBe('stop');
    expect(r.model).toBe('llama3.1:8b');
    expect(r.eval_count).toBe(5);
    expect(r.prompt_eval_count).toBe(4);
    for (const k of ['total_duration', 'load_duration', 'prompt_eval_duration', 'eval_duration'] as const) {
      expect(Number.isInteger(r[k])).toBe(true);
      expect(r[k]).toBeGreaterThan(0);
    }
    expect(r.total_duration).toBeGreaterThanOrEqual(r.eval_duration);
  });

  it('generate stream: one chunk per word, metrics only on the final chunk', async () => {
    const it = await ollama.generate({ model: 'mistral:7b', prompt: 'hi', stream: true });
    const parts: Array<Record<string, unknown>> = [];
    for await (const p of it) parts.push(p as unknown as Record<string, unknown>);
    expect(parts.map((p) => p.response)).toEqual(['Hello', ' from', ' the', ' fake', ' Ollama.', '']);
    expect(parts.slice(0, -1).every((p) => p.done === false && p.eval_count === undefined && p.total_duration === undefined)).toBe(true);
    expect(parts[5]).toMatchObject({ done: true, done_reason: 'stop', eval_count: 5, prompt_eval_count: 1 });
  });

  it('chat stream and non-stream, with queued replies then the default', async () => {
    fake.queueReplies('llama3.1:8b', ['First scripted answer', 'Second']);
    const c1 = await ollama.chat({ model: 'llama3.1:8b', messages: [{ role: 'user', content: 'one two three' }] });
    expect(c1.message).toEqual({ role: 'assistant', content: 'First scripted answer' });
    expect(c1.prompt_eval_count).toBe(3);
    expect(c1.eval_count).toBe(3);
    const it = await ollama.chat({ model: 'llama3.1:8b', messages: [{ role: 'user', content: 'x' }], stream: true });
    let text = '';
    let last: Record<string, unknown> = {};
    for await (const p of it) {
      text += p.message.content;
      last = p as unknown as Record<string, unknown>;
    }
    expect(text).toBe('Second');
    expect(last).toMatchObject({ done: true, done_reason: 'stop', eval_count: 1 });
    fake.setDefaultReply('Custom default.');
    expect((await ollama.chat({ model: 'llama3.1:8b', messages: [{ role: 'user', content: 'x' }] })).message.content).toBe('Custom default.');
  });

  it('num_predict limits tokens (done_reason length) and stop truncates', async () => {
    const r = await ollama.generate({ model: 'llama3.1:8b', prompt: 'x', options: { num_predict: 2 } });
    expect(r).toMatchObject({ response: 'Hello from', done_reason: 'length', eval_count: 2 });
    const s = await ollama.generate({ model: 'llama3.1:8b', prompt: 'x', options: { stop: [' the'] } });
    expect(s).toMatchObject({ response: 'Hello from', done_reason: 'stop' });
  });

  it('empty prompt / messages load the model; keep_alive 0 unloads', async () => {
    expect(fake.loadedModels()).toEqual([]);
    const r = await post('/api/generate', { model: 'llama3.1:8b' });
    expect(r.headers.get('content-type')).toBe(JSON_CT);
    const body = (await r.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ model: 'llama3.1:8b', response: '', done: true, done_reason: 'load' });
    expect(body.eval_count).toBeUndefined();
    expect(fake.loadedModels()).toEqual(['llama3.1:8b']);
    const c = await ollama.chat({ model: 'mistral:7b', messages: [] });
    expect(c).toMatchObject({ message: { role: 'assistant', content: '' }, done_reason: 'load' });
    expect(fake.loadedModels().sort()).toEqual(['llama3.1:8b', 'mistral:7b']);
    const u = await ollama.generate({ model: 'llama3.1:8b', prompt: '', keep_alive: 0 });
    expect(u.done_reason).toBe('unload');
    const u2 = await ollama.chat({ model: 'mistral:7b', messages: [], keep_alive: 0 });
    expect(u2.done_reason).toBe('unload');
    expect(fake.loadedModels()).toEqual([]);
  });

  it('format: json / schema accepted (valid JSON by default), anything else 400', async () => {
    const j = await ollama.generate({ model: 'llama3.1:8b', prompt: 'x', format: 'json' });
    expect(JSON.parse(j.response ?? '')).toEqual({ response: 'Hello from the fake Ollama.' });
    const schema = {
      type: 'object',
      properties: { name: { type: 'string' }, age: { type: 'integer' }, tags: { type: 'array', items: { type: 'string' } } },
      required: ['name', 'age'],
    };
    const c = await ollama.chat({ model: 'llama3.1:8b', messages: [{ role: 'user', content: 'x' }], format: schema });
    expect(JSON.parse(c.message.content)).toEqual({ name: 'fake', age: 1, tags: [] });
    const r = await post('/api/generate', { model: 'llama3.1:8b', prompt: 'x', format: 'xml' });
    expect(r.status).toBe(400);
    expect(await r.json()).toEqual({ error: 'invalid format: "\\"xml\\""; expected "json" or a valid JSON Schema object' });
  });

  it('images: vision model accepts, text model rejects', async () => {
    const img = Buffer.from('fake-png').toString('base64');
    const ok = await ollama.chat({ model: 'llava:7b', messages: [{ role: 'user', content: 'what is this', images: [img] }] });
    expect(ok.message.content).toBe('Hello from the fake Ollama.');
    await expectOllamaError(
      ollama.generate({ model: 'llama3.1:8b', prompt: 'what', images: [img] }),
      400,
      'this model is missing data required for image input',
    );
  });

  it('tools and think validation', async () => {
    fake.addModel({ name: 'phi:2.7b', capabilities: ['completion'] });
    const tools = [{ type: 'function', function: { name: 'f', description: 'd', parameters: { type: 'object', properties: {} } } }];
    const ok = await ollama.chat({ model: 'llama3.1:8b', messages: [{ role: 'user', content: 'x' }], tools });
    expect(ok.done).toBe(true);
    await expectOllamaError(
      ollama.chat({ model: 'phi:2.7b', messages: [{ role: 'user', content: 'x' }], tools }),
      400,
      'registry.ollama.ai/library/phi:2.7b does not support tools',
    );
    await expectOllamaError(
      ollama.chat({ model: 'llama3.1:8b', messages: [{ role: 'user', content: 'x' }], think: true }),
      400,
      '"llama3.1:8b" does not support thinking',
    );
    const bad = await post('/api/chat', { model: 'llama3.1:8b', messages: [], think: 'extreme' });
    expect(await bad.json()).toEqual({ error: 'invalid think value: "extreme" (must be "high", "medium", "low", "max", true, or false)' });
    await expectOllamaError(ollama.generate({ model: 'nomic-embed-text', prompt: 'x' }), 400, '"nomic-embed-text" does not support generate');
  });
});

describe('raw HTTP contract', () => {
  it('streams NDJSON by default with exact framing and content-type', async () => {
    const r = await post('/api/generate', { model: 'llama3.1:8b', prompt: 'hi' });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('application/x-ndjson');
    const lines = ndjson(await r.text());
    expect(lines).toHaveLength(6);
    expect(lines.filter((l) => 'total_duration' in l)).toHaveLength(1);
    expect(lines[5]).toMatchObject({ done: true, response: '' });
    const nr = await post('/api/chat', { model: 'llama3.1:8b', messages: [{ role: 'user', content: 'a' }], stream: false });
    expect(nr.headers.get('content-type')).toBe(JSON_CT);
    expect(((await nr.json()) as { message: { content: string } }).message.content).toBe('Hello from the fake Ollama.');
  });

  it('exact error bodies per route', async () => {
    const cases: Array<[string, string, unknown, number, unknown]> = [
      ['POST', '/api/generate', { model: 'llama9', prompt: 'x' }, 404, { error: "model 'llama9' not found" }],
      ['POST', '/api/chat', { model: 'llama9', messages: [] }, 404, { error: "model 'llama9' not found" }],
      ['POST', '/api/embed', { model: 'llama9', input: 'x' }, 404, { error: "model 'llama9' not found" }],
      ['POST', '/api/show', { model: 'llama9' }, 404, { error: "model 'llama9' not found" }],
      ['DELETE', '/api/delete', { model: 'llama9' }, 404, { error: "model 'llama9' not found" }],
      ['POST', '/api/embeddings', { model: 'llama9', prompt: 'x' }, 404, { error: 'model "llama9" not found, try pulling it first' }],
      ['POST', '/api/copy', { source: 'llama9', destination: 'y' }, 404, { error: 'model "llama9" not found' }],
      ['POST', '/api/chat', { messages: [] }, 400, { error: 'model is required' }],
      ['POST', '/api/embed', { model: 'nomic-embed-text', input: ['a', 1] }, 400, { error: 'invalid input type' }],
      ['POST', '/api/generate', { model: 'llama3.1:8b', keep_alive: '300' }, 400, { error: 'time: missing unit in duration "300"' }],
      [
        'POST',
        '/api/generate',
        { model: 'llama3.1:8b', prompt: 'x', raw: true, system: 's' },
        400,
        { error: 'raw mode does not support template, system, or context' },
      ],
      ['POST', '/api/chat', { model: 'llama3.1:8b', messages: [], top_logprobs: 21 }, 400, { error: 'top_logprobs must be between 0 and 20' }],
    ];
    for (const [method, path, body, status, expected] of cases) {
      const r = await fetch(fake.url + path, { method, body: JSON.stringify(body) });
      expect([path, r.status]).toEqual([path, status]);
      expect(r.headers.get('content-type')).toBe(JSON_CT);
      expect(await r.json()).toEqual(expected);
    }
    const empty = await fetch(fake.url + '/api/generate', { method: 'POST' });
    expect(empty.status).toBe(400);
    expect(await empty.json()).toEqual({ error: 'missing request body' });
  });

  it('405 on a wrong method, 404 on an unknown route', async () => {
    const r = await fetch(fake.url + '/api/generate');
    expect(r.status).toBe(405);
    expect(await r.text()).toBe('405 method not allowed');
    expect((await fetch(fake.url + '/api/tags', { method: 'POST' })).status).toBe(405);
    expect((await fetch(fake.url + '/api/delete', { method: 'POST', body: '{}' })).status).toBe(405);
    const n = await fetch(fake.url + '/api/nope');
    expect(n.status).toBe(404);
    expect(await n.text()).toBe('404 page not found');
  });

  it('Origin not allowed → 403 with an empty body; allowed origins pass', async () => {
    for (const origin of ['https://evil.example.com', 'ollama.example.com', 'null', 'http://localhost.evil.com']) {
      const r = await fetch(fake.url + '/api/tags', { headers: { Origin: origin } });
      expect([origin, r.status]).toEqual([origin, 403]);
      expect(r.headers.get('content-length')).toBe('0');
      expect(await r.text()).toBe('');
    }
    const p = await post('/api/generate', { model: 'llama3.1:8b', prompt: 'x' }, { headers: { Origin: 'http://example.org' } });
    expect(p.status).toBe(403);
    for (const origin of [
      'http://localhost',
      'https://localhost:3000',
      'http://127.0.0.1:8080',
      'http://0.0.0.0:1',
      'app://x',
      'file://',
      'tauri://localhost',
      'vscode-webview://abc',
      'vscode-file://vscode-app',
    ]) {
      const r = await fetch(fake.url + '/api/version', { headers: { Origin: origin } });
      expect([origin, r.status]).toEqual([origin, 200]);
    }
    // every request is recorded, including rejected ones
    expect(fake.requests.filter((q) => q.headers.origin === 'https://evil.example.com')).toHaveLength(1);
    expect(fake.requests.find((q) => q.path === '/api/generate')?.body).toEqual({ model: 'llama3.1:8b', prompt: 'x' });
  });
});

describe('embeddings', () => {
  it('embed: string and array, dims from the model, deterministic unit vectors', async () => {
    const one = await ollama.embed({ model: 'nomic-embed-text', input: 'hello world' });
    expect(one.embeddings).toHaveLength(1);
    expect(one.embeddings[0]).toHaveLength(768);
    expect(one.prompt_eval_count).toBe(2);
    expect(one.total_duration).toBeGreaterThan(0);
    const norm = Math.sqrt(one.embeddings[0].reduce((s, x) => s + x * x, 0));
    expect(norm).toBeCloseTo(1, 4);
    const many = await ollama.embed({ model: 'nomic-embed-text', input: ['hello world', 'other'] });
    expect(many.embeddings[0]).toEqual(one.embeddings[0]);
    expect(many.embeddings[1]).not.toEqual(one.embeddings[0]);
    expect((await ollama.embed({ model: 'llama3.1:8b', input: 'x' })).embeddings[0]).toHaveLength(4096);
    expect((await ollama.embed({ model: 'nomic-embed-text', input: 'x', dimensions: 256 })).embeddings[0]).toHaveLength(256);
    const legacy = await ollama.embeddings({ model: 'nomic-embed-text', prompt: 'hello world' });
    expect(legacy.embedding).toEqual(one.embeddings[0]);
  });
});

describe('pull / delete / copy', () => {
  it('pull streams progress (legacy name field) and adds the model', async () => {
    const it = await ollama.pull({ model: 'qwen2.5:0.5b', stream: true });
    const statuses: string[] = [];
    let progress = 0;
    for await (const p of it) {
      statuses.push(p.status);
      if (p.total) {
        expect(p.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
        progress++;
      }
    }
    expect(statuses[0]).toBe('pulling manifest');
    expect(statuses[1]).toMatch(/^pulling [0-9a-f]{12}$/);
    expect(progress).toBeGreaterThanOrEqual(3);
    expect(statuses.slice(-4)).toEqual(['verifying sha256 digest', 'writing manifest', 'removing any unused layers', 'success']);
    expect(fake.requests.find((r) => r.path === '/api/pull')?.body).toMatchObject({ name: 'qwen2.5:0.5b' });
    expect((await ollama.list()).models.map((m) => m.name)).toContain('qwen2.5:0.5b');
    expect((await ollama.generate({ model: 'qwen2.5:0.5b', prompt: 'x' })).done).toBe(true);
  });

  it('pull stream:false returns a single success; failures come inside the stream', async () => {
    const r = await post('/api/pull', { model: 'tinyllama', stream: false });
    expect(r.headers.get('content-type')).toBe(JSON_CT);
    expect(await r.json()).toEqual({ status: 'success' });
    expect(fake.requests.length).toBeGreaterThan(0);
    const f = await post('/api/pull', { model: 'fail-model' });
    expect(f.status).toBe(200);
    const lines = ndjson(await f.text());
    expect(lines[0]).toEqual({ status: 'pulling manifest' });
    expect(lines[lines.length - 1]).toEqual({ error: 'pull model manifest: file does not exist' });
    await expect(
      (async () => {
        for await (const p of await ollama.pull({ model: 'fail-again', stream: true })) void p;
      })(),
    ).rejects.toThrow('pull model manifest: file does not exist');
    expect((await ollama.list()).models.map((m) => m.name)).not.toContain('fail-model:latest');
  });

  it('delete (name or model) and copy', async () => {
    expect(await ollama.delete({ model: 'mistral:7b' })).toEqual({ status: 'success' });
    expect(fake.requests.at(-1)).toMatchObject({ method: 'DELETE', path: '/api/delete', body: { name: 'mistral:7b' } });
    expect((await ollama.list()).models.map((m) => m.name)).not.toContain('mistral:7b');
    await expectOllamaError(ollama.delete({ model: 'mistral:7b' }), 404, "model 'mistral:7b' not found");
    const c = await post('/api/copy', { source: 'llama3.1:8b', destination: 'mine:v1' });
    expect(c.status).toBe(200);
    expect(await c.text()).toBe('');
    expect((await ollama.show({ model: 'mine:v1' })).capabilities).toEqual(['completion', 'tools']);
  });
});

describe('OpenAI compatibility (official openai client)', () => {
  it('models.list', async () => {
    const page = await openai.models.list();
    expect(page.data.map((m) => m.id)).toContain('llama3.1:8b');
    expect(page.data[0]).toMatchObject({ object: 'model', owned_by: 'library' });
    expect((await openai.models.retrieve('llava:7b')).id).toBe('llava:7b');
  });

  it('chat.completions non-stream with usage, stream via SSE', async () => {
    const r = await openai.chat.completions.create({ model: 'llama3.1:8b', messages: [{ role: 'user', content: 'hello there' }] });
    expect(r.object).toBe('chat.completion');
    expect(r.choices[0].message.content).toBe('Hello from the fake Ollama.');
    expect(r.choices[0].finish_reason).toBe('stop');
    expect(r.usage).toEqual({ prompt_tokens: 2, completion_tokens: 5, total_tokens: 7 });
    const stream = await openai.chat.completions.create({ model: 'llama3.1:8b', messages: [{ role: 'user', content: 'hi' }], stream: true, max_tokens: 3 });
    let text = '';
    let finish: string | null = null;
    for await (const ch of stream) {
      expect(ch.object).toBe('chat.completion.chunk');
      text += ch.choices[0]?.delta.content ?? '';
      finish = ch.choices[0]?.finish_reason ?? finish;
    }
    expect(text).toBe('Hello from the');
    expect(finish).toBe('length');
  });

  it('raw SSE framing ends with [DONE]; non-stream is default on /v1', async () => {
    const r = await post('/v1/chat/completions', { model: 'llama3.1:8b', messages: [{ role: 'user', content: 'x' }], stream: true });
    expect(r.headers.get('content-type')).toBe('text/event-stream');
    const text = await r.text();
    const frames = text.split('\n\n').filter(Boolean);
    expect(frames.every((f) => f.startsWith('data: '))).toBe(true);
    expect(frames[frames.length - 1]).toBe('data: [DONE]');
    expect(text.endsWith('data: [DONE]\n\n')).toBe(true);
    expect(frames).toHaveLength(7);
    const d = await post('/v1/chat/completions', { model: 'llama3.1:8b', messages: [{ role: 'user', content: 'x' }] });
    expect(d.headers.get('content-type')).toBe(JSON_CT);
  });

  it('response_format json_schema / json_object', async () => {
    const r = await openai.chat.completions.create({
      model: 'llama3.1:8b',
      messages: [{ role: 'user', content: 'x' }],
      response_format: { type: 'json_schema', json_schema: { name: 'p', schema: { type: 'object', properties: { ok: { type: 'boolean' } } } } },
    });
    expect(JSON.parse(r.choices[0].message.content ?? '')).toEqual({ ok: true });
    const j = await openai.chat.completions.create({
      model: 'llama3.1:8b',
      messages: [{ role: 'user', content: 'x' }],
      response_format: { type: 'json_object' },
    });
    expect(JSON.parse(j.choices[0].message.content ?? '')).toEqual({ response: 'Hello from the fake Ollama.' });
  });

  it('embeddings.create (base64 by default and float)', async () => {
    const e = await openai.embeddings.create({ model: 'nomic-embed-text', input: ['hello world', 'b'] });
    expect(e.data).toHaveLength(2);
    expect(e.data[0].embedding).toHaveLength(768);
    const native = await ollama.embed({ model: 'nomic-embed-text', input: 'hello world' });
    expect(e.data[0].embedding[0]).toBeCloseTo(native.embeddings[0][0], 6);
    const f = await openai.embeddings.create({ model: 'nomic-embed-text', input: 'hello world', encoding_format: 'float' });
    expect(f.data[0].embedding).toEqual(native.embeddings[0]);
    expect(f.usage).toEqual({ prompt_tokens: 2, total_tokens: 2 });
  });

  it('OpenAI-shaped errors', async () => {
    await expect(openai.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'x' }] })).rejects.toMatchObject({
      status: 404,
      error: { message: "model 'nope' not found", type: 'not_found_error', param: null, code: null },
    });
    const r = await post('/v1/chat/completions', { model: 'llama3.1:8b', messages: [] });
    expect(r.status).toBe(400);
    expect(await r.json()).toEqual({ error: { message: "[] is too short - 'messages'", type: 'invalid_request_error', param: null, code: null } });
    fake.setBehaviour('llama3.1:8b', { kind: 'queue-full' });
    const q = await post('/v1/chat/completions', { model: 'llama3.1:8b', messages: [{ role: 'user', content: 'x' }] });
    expect(q.status).toBe(503);
    expect(await q.json()).toEqual({ error: { message: ERR_QUEUE_FULL, type: 'api_error', param: null, code: null } });
    const img = await post('/v1/chat/completions', {
      model: 'mistral:7b',
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'x' },
            { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } },
          ],
        },
      ],
    });
    expect(img.status).toBe(400);
    expect(((await img.json()) as { error: { type: string } }).error.type).toBe('invalid_request_error');
  });
});

describe('load behaviour and concurrency', () => {
  it('sends no byte before the load delay; concurrent requests share one load; loaded model answers fast', async () => {
    await fake.close();
    await restart({ tokenDelayMs: 1, loadDelayMs: 200 });
    const [a, b] = await Promise.all([
      rawRequest('/api/generate', { model: 'llama3.1:8b', prompt: 'hi' }),
      rawRequest('/api/chat', { model: 'llama3.1:8b', messages: [{ role: 'user', content: 'hi' }] }),
    ]);
    expect(a.headMs).toBeGreaterThanOrEqual(190);
    expect(b.headMs).toBeGreaterThanOrEqual(190);
    expect(b.headMs).toBeLessThan(390); // shared load, not two sequential loads
    const last = ndjson(a.text).at(-1) as { load_duration: number; total_duration: number };
    expect(last.load_duration).toBeGreaterThanOrEqual(190e6);
    expect(last.total_duration).toBeGreaterThan(last.load_duration);
    const c = await rawRequest('/api/generate', { model: 'llama3.1:8b', prompt: 'hi', stream: false });
    expect(c.headMs).toBeLessThan(150);
    expect((JSON.parse(c.text) as { load_duration: number }).load_duration).toBeLessThan(50e6);
    // changing num_ctx forces a reload
    const d = await rawRequest('/api/generate', { model: 'llama3.1:8b', prompt: 'hi', options: { num_ctx: 8192 } });
    expect(d.headMs).toBeGreaterThanOrEqual(190);
  });

  it('tracks active / maxActive / completed', async () => {
    await fake.close();
    await restart({ tokenDelayMs: 10 });
    await Promise.all([1, 2, 3].map(() => ollama.generate({ model: 'llama3.1:8b', prompt: 'x' })));
    expect(fake.stats).toEqual({ active: 0, completed: 3, aborted: 0, maxActive: 3 });
    await ollama.list();
    expect(fake.stats.completed).toBe(3); // metadata routes are not counted
  });
});

describe('behaviours', () => {
  it('oom (default, legacy), crash, queue-full, reject → exact native error bodies', async () => {
    const cases: Array<[Parameters<FakeOllama['setBehaviour']>[1], number, string]> = [
      [{ kind: 'oom' }, 500, ERR_OOM_DEFAULT],
      [{ kind: 'oom', message: ERR_OOM_LEGACY }, 500, 'model requires more system memory (10.2 GiB) than is available (7.6 GiB)'],
      [
        { kind: 'crash' },
        500,
        'model runner has unexpectedly stopped, this may be due to resource limitations or an internal error, check ollama server logs for details',
      ],
      [{ kind: 'queue-full' }, 503, 'server busy, please try again.  maximum pending requests exceeded'],
      [{ kind: 'reject', status: 400, error: '"m" does not support tools' }, 400, '"m" does not support tools'],
    ];
    for (const [b, status, msg] of cases) {
      fake.setBehaviour('llama3.1:8b', b);
      const r = await post('/api/generate', { model: 'llama3.1:8b', prompt: 'x' });
      expect([b.kind, r.status]).toEqual([b.kind, status]);
      expect(r.headers.get('content-type')).toBe(JSON_CT);
      expect(await r.json()).toEqual({ error: msg });
    }
    expect(fake.loadedModels()).toEqual([]);
    // other models are unaffected; '*' applies to all; reset clears
    expect((await ollama.generate({ model: 'mistral:7b', prompt: 'x' })).done).toBe(true);
    fake.setBehaviour('*', { kind: 'crash' });
    await expectOllamaError(ollama.embed({ model: 'nomic-embed-text', input: 'x' }), 500, ERR_CRASH);
    fake.resetBehaviours();
    expect((await ollama.generate({ model: 'llama3.1:8b', prompt: 'x' })).done).toBe(true);
  });

  it('midstream-error: 200, N chunks, then an error line (stream); 500 when not streaming', async () => {
    fake.setBehaviour('llama3.1:8b', { kind: 'midstream-error', afterChunks: 2 });
    const r = await post('/api/chat', { model: 'llama3.1:8b', messages: [{ role: 'user', content: 'x' }] });
    expect(r.status).toBe(200);
    const lines = ndjson(await r.text());
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatchObject({ message: { content: 'Hello' }, done: false });
    expect(lines[2]).toEqual({ error: 'an error was encountered while running the model' });
    await expect(
      (async () => {
        for await (const p of await ollama.generate({ model: 'llama3.1:8b', prompt: 'x', stream: true })) void p;
      })(),
    ).rejects.toThrow('an error was encountered while running the model');
    await expectOllamaError(ollama.generate({ model: 'llama3.1:8b', prompt: 'x' }), 500, 'an error was encountered while running the model');
    fake.setBehaviour('llama3.1:8b', { kind: 'midstream-error', afterChunks: 1, message: 'boom' });
    const s = await post('/v1/chat/completions', { model: 'llama3.1:8b', messages: [{ role: 'user', content: 'x' }], stream: true });
    const sse = await s.text();
    expect(s.status).toBe(200);
    expect(sse).toContain('"message":"boom"');
    expect(sse).not.toContain('[DONE]');
  });

  it('hang: never answers; client abort counts as aborted; close() ends it', async () => {
    fake.setBehaviour('llama3.1:8b', { kind: 'hang' });
    const ac = new AbortController();
    const p = post('/api/generate', { model: 'llama3.1:8b', prompt: 'x' }, { signal: ac.signal });
    await fake.waitFor(() => fake.stats.active === 1);
    await new Promise((r) => setTimeout(r, 50));
    expect(fake.stats.completed).toBe(0);
    ac.abort();
    await expect(p).rejects.toThrow();
    await fake.waitFor(() => fake.stats.aborted === 1);
    expect(fake.stats.active).toBe(0);
    const hanging = rawRequest('/api/chat', { model: 'llama3.1:8b', messages: [{ role: 'user', content: 'x' }] });
    await fake.waitFor(() => fake.stats.active === 1);
    const t0 = Date.now();
    await fake.close();
    await expect(hanging).rejects.toThrow();
    expect(Date.now() - t0).toBeLessThan(1000);
    await restart({}); // for afterEach
  });

  it('stall-after: sends N chunks then stops without closing', async () => {
    fake.setBehaviour('llama3.1:8b', { kind: 'stall-after', chunks: 2 });
    const received: string[] = [];
    const done = new Promise<void>((resolve) => {
      const req = http.request(fake.url + '/api/generate', { method: 'POST' }, (res) => {
        expect(res.statusCode).toBe(200);
        res.setEncoding('utf8');
        res.on('data', (c: string) => received.push(...c.split('\n').filter(Boolean)));
      });
      req.on('error', () => resolve());
      req.on('close', () => resolve());
      req.end(JSON.stringify({ model: 'llama3.1:8b', prompt: 'x' }));
    });
    await fake.waitFor(() => received.length === 2);
    await new Promise((r) => setTimeout(r, 80));
    expect(received.map((l) => (JSON.parse(l) as { response: string }).response)).toEqual(['Hello', ' from']);
    expect(fake.stats.active).toBe(1);
    await fake.close();
    await done;
    await restart({});
  });

  it('drop-connection destroys the socket without answering', async () => {
    fake.setBehaviour('nomic-embed-text', { kind: 'drop-connection' });
    await expect(ollama.embed({ model: 'nomic-embed-text', input: 'x' })).rejects.toThrow();
    await expect(openai.embeddings.create({ model: 'nomic-embed-text', input: 'x' })).rejects.toThrow(/Connection error/);
    expect(fake.requests.filter((r) => r.path.endsWith('embed') || r.path.endsWith('embeddings'))).toHaveLength(2);
    expect(fake.stats.active).toBe(0);
  });
});
