'use strict';
// The official `ollama` and `openai` npm clients through the local stack (real nginx with the
// stack's template + the API + the fake Ollama), on /ollama and /openai/v1. Loopback only.
const { missingTools, skipSuite } = require('./lib/skip');
// off CI a machine without these tools skips this file with one line (scripts/test-skip.sh)
if (skipSuite(__filename, missingTools(['nginx', 'envsubst', 'perl', 'curl']), 'apt-get install nginx-light gettext-base perl-base curl')) return;
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { API_DIR, startFakeAndLocalStack } = require('./lib/helpers');

// The clients are the API's dev dependencies (services/api/node_modules).
const { Ollama } = require(path.join(API_DIR, 'node_modules', 'ollama'));
const { OpenAI, AuthenticationError } = require(path.join(API_DIR, 'node_modules', 'openai'));

const ADMIN = ['admin', 'Adm1n-pw-7Yq3kTz9'];
const USER = ['waldus', 'W4ldus-pw-2Lm8vRx4'];
const MODEL = 'llama3.1:8b';
const TOKEN_DELAY_MS = 80;
const basic = ([u, p]) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
let stack;
let url;

test.before(async () => {
  stack = await startFakeAndLocalStack({
    tokenDelayMs: TOKEN_DELAY_MS,
    users: `${ADMIN.join(':')},${USER.join(':')}`,
    admins: 'admin',
    env: { MODEL_DEFAULT: MODEL, NGINX_RATE_LIMIT: '50r/s', NGINX_RATE_BURST: '50' },
  });
  url = stack.url;
});

test.after(() => stack?.stop());

const ollama = (user = USER) => new Ollama({ host: `${url}/ollama`, headers: { Authorization: basic(user) } });
const openai = (user = USER) => new OpenAI({ baseURL: `${url}/openai/v1`, apiKey: 'unused', defaultHeaders: { Authorization: basic(user) }, maxRetries: 0 });

async function rejection(fn) {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  assert.fail('expected a failure');
}

test('ollama-js through nginx: list, version, chat not streamed', async () => {
  const client = ollama();
  assert.ok((await client.list()).models.some((m) => m.name === MODEL));
  assert.match((await client.version()).version, /^\d+\.\d+\.\d+$/);
  const r = await client.chat({ model: MODEL, messages: [{ role: 'user', content: 'hello' }] });
  assert.equal(r.message.role, 'assistant');
  assert.ok(r.message.content.length > 0);
});

test('ollama-js through nginx: a streamed generate arrives token by token, with the gaps kept', async (t) => {
  const arrivals = [];
  const t0 = performance.now();
  let text = '';
  for await (const c of await ollama().generate({ model: MODEL, prompt: 'Say hello', stream: true })) {
    arrivals.push(performance.now() - t0);
    text += c.response;
  }
  assert.ok(arrivals.length >= 4, `${arrivals.length} chunks`);
  assert.ok(text.length > 0);
  const spread = arrivals.at(-1) - arrivals[0];
  assert.ok(spread >= TOKEN_DELAY_MS * (arrivals.length - 2) * 0.6, `all chunks within ${spread.toFixed(0)} ms: buffered`);
  t.diagnostic(`${arrivals.length} chunks over ${spread.toFixed(0)} ms`);
});

test('ollama-js through nginx: wrong credentials → ResponseError 401 with a message (nginx answers in Ollama shape)', async () => {
  const err = await rejection(() => ollama(['waldus', 'wrong']).list());
  assert.equal(err.name, 'ResponseError');
  assert.equal(err.status_code, 401);
  assert.equal(err.error, 'Missing or wrong credentials');
});

test('ollama-js through nginx: unknown model → ResponseError 404 "model \'x\' not found"', async () => {
  const err = await rejection(() => ollama().generate({ model: 'nope:1b', prompt: 'x' }));
  assert.equal(err.status_code, 404);
  assert.equal(err.error, "model 'nope:1b' not found");
});

test('ollama-js through nginx: an admin pull streams its progress; a non-admin gets 403', async () => {
  const statuses = [];
  for await (const p of await ollama(ADMIN).pull({ model: 'qwen2.5:0.5b', stream: true })) statuses.push(p.status);
  assert.equal(statuses[0], 'pulling manifest');
  assert.equal(statuses.at(-1), 'success');
  const err = await rejection(() => ollama().pull({ model: 'qwen2.5:0.5b' }));
  assert.equal(err.status_code, 403);
  assert.equal(err.error, 'This route is for admin users only');
});

test('openai through nginx: models, a chat completion streamed token by token, embeddings', async (t) => {
  const client = openai();
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.ok(ids.includes(MODEL));
  const arrivals = [];
  const t0 = performance.now();
  let text = '';
  for await (const c of await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hello' }], stream: true })) {
    arrivals.push(performance.now() - t0);
    text += c.choices[0]?.delta?.content ?? '';
  }
  assert.ok(text.length > 0);
  const spread = arrivals.at(-1) - arrivals[0];
  assert.ok(arrivals.length >= 4 && spread >= TOKEN_DELAY_MS * (arrivals.length - 3) * 0.6, `${arrivals.length} events within ${spread.toFixed(0)} ms`);
  t.diagnostic(`${arrivals.length} SSE events over ${spread.toFixed(0)} ms`);
  const e = await client.embeddings.create({ model: 'nomic-embed-text', input: 'hello' });
  assert.equal(e.data[0].embedding.length, 768);
});

test('openai through nginx: wrong credentials → AuthenticationError', async () => {
  const err = await rejection(() => openai(['waldus', 'wrong']).models.list());
  assert.ok(err instanceof AuthenticationError, String(err));
  assert.equal(err.status, 401);
});
