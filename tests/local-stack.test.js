'use strict';
// The stack without containers (scripts/local-stack.sh): the real nginx with the stack's template,
// in front of the API from services/api, against the fake Ollama. Loopback only.
const { missingTools, skipSuite } = require('./lib/skip');
// off CI a machine without these tools skips this file with one line (scripts/test-skip.sh)
if (skipSuite(__filename, missingTools(['nginx', 'envsubst', 'perl', 'curl']), 'apt-get install nginx-light gettext-base perl-base curl')) return;
const test = require('node:test');
const assert = require('node:assert/strict');
const { startFakeAndLocalStack, request } = require('./lib/helpers');

const ADMIN = 'admin:Adm1n-pw-7Yq3kTz9';
const USER = 'waldus:W4ldus-pw-2Lm8vRx4';
const MODEL = 'llama3.1:8b';
const TOKEN_DELAY_MS = 100;
let stack;
let url;
let tunnelUrl;
let apiUrl;

test.before(async () => {
  stack = await startFakeAndLocalStack({
    tokenDelayMs: TOKEN_DELAY_MS,
    users: `${ADMIN},${USER}`,
    admins: 'admin',
    env: { MODEL_DEFAULT: MODEL, NGINX_RATE_LIMIT: '20r/s', NGINX_RATE_BURST: '30', NGINX_CONN_LIMIT: '8', NGINX_CLIENT_MAX_BODY_SIZE: '64k' },
  });
  ({ url, tunnelUrl, apiUrl } = stack);
});

test.after(() => stack?.stop());

function assertJsonError(res, status, code) {
  assert.equal(res.status, status, res.body);
  assert.match(res.headers['content-type'], /^application\/json/);
  assert.equal(res.json?.error?.code, code, res.body);
  assert.equal(typeof res.json.error.message, 'string');
}

test('/health is open', async () => {
  const res = await request(`${url}/health`);
  assert.equal(res.status, 200);
  assert.equal(res.json.status, 'ok');
});

test('401 JSON without credentials, with a wrong password, for an unknown user', async () => {
  for (const user of [undefined, 'waldus:wrong', 'nobody:W4ldus-pw', 'waldus:']) {
    const res = await request(`${url}/v1/models`, { user });
    assertJsonError(res, 401, 'UNAUTHORIZED');
    assert.match(res.headers['www-authenticate'], /^Basic realm="ai-local-core"/);
    assert.equal(res.headers.server, 'nginx', 'no version in the Server header');
  }
});

test('200 with valid credentials, the request reaches the API', async () => {
  for (const user of [USER, ADMIN]) {
    const res = await request(`${url}/v1/models`, { user });
    assert.equal(res.status, 200, res.body);
    assert.ok(Array.isArray(res.json.models) || Array.isArray(res.json.data), res.body);
  }
});

test('/admin/ is refused (403 JSON) to a valid non-admin user, 401 to wrong credentials, passed for admins', async () => {
  assertJsonError(await request(`${url}/admin/ollama/status`, { user: USER }), 403, 'FORBIDDEN');
  assertJsonError(await request(`${url}/admin/ollama/restart`, { method: 'POST', user: USER, body: {} }), 403, 'FORBIDDEN');
  assertJsonError(await request(`${url}/admin/ollama/status`, { user: 'waldus:wrong' }), 401, 'UNAUTHORIZED');
  assertJsonError(await request(`${url}/admin/ollama/status`, { user: 'admin:wrong' }), 401, 'UNAUTHORIZED');
  assertJsonError(await request(`${url}/admin/ollama/status`), 401, 'UNAUTHORIZED');
  const admin = await request(`${url}/admin/ollama`, { user: ADMIN });
  assert.ok(![401, 403].includes(admin.status), `admin stopped at the door: ${admin.status} ${admin.body}`);
});

test('413 JSON for an oversized body, before it reaches the API', async () => {
  const big = JSON.stringify({ model: MODEL, prompt: 'x'.repeat(100 * 1024) });
  assertJsonError(await request(`${url}/v1/generate`, { method: 'POST', user: USER, body: big }), 413, 'PAYLOAD_TOO_LARGE');
});

/** Arrival times of NDJSON content: [{t, lines}] per network chunk. */
async function streamed(base) {
  const res = await request(`${base}/v1/generate`, {
    method: 'POST', user: USER, body: { model: MODEL, prompt: 'Say hello', stream: true }, timeoutMs: 30_000,
  });
  assert.equal(res.status, 200, res.body);
  assert.match(res.headers['content-type'], /^application\/x-ndjson/);
  const lines = res.body.split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const gaps = res.chunks.slice(1).map((c, i) => c.t - res.chunks[i].t);
  return { res, lines, gaps };
}

test('a streamed generation reaches the client chunk by chunk, with the time gaps preserved', async (t) => {
  const direct = await streamed(apiUrl);
  const viaNginx = await streamed(url);
  const { res, lines, gaps } = viaNginx;
  assert.ok(lines.length >= 4, `expected several NDJSON lines, got ${lines.length}`);
  assert.equal(lines.at(-1).done, true);
  // one network chunk per token (not one buffered blob at the end) ...
  assert.ok(res.chunks.length >= lines.length - 1, `${res.chunks.length} chunks for ${lines.length} lines: nginx buffered`);
  // ... arriving TOKEN_DELAY_MS apart, as the upstream produced them
  const sorted = [...gaps].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)];
  assert.ok(median >= TOKEN_DELAY_MS * 0.6, `median gap ${median.toFixed(1)} ms, expected about ${TOKEN_DELAY_MS}`);
  const spread = res.chunks.at(-1).t - res.chunks[0].t;
  assert.ok(spread >= TOKEN_DELAY_MS * (lines.length - 2) * 0.6, `all chunks within ${spread.toFixed(0)} ms`);
  const med = (g) => [...g].sort((a, b) => a - b)[Math.floor(g.length / 2)];
  t.diagnostic(`chunks via nginx: ${res.chunks.length}, lines: ${lines.length}, median gap ${median.toFixed(1)} ms ` +
    `(direct to the API: ${direct.res.chunks.length} chunks, median gap ${med(direct.gaps).toFixed(1)} ms), ` +
    `first chunk after ${res.chunks[0].t.toFixed(1)} ms via nginx vs ${direct.res.chunks[0].t.toFixed(1)} ms direct`);
});

test('429 JSON after a burst (limit_req per client); behind the tunnel the client is CF-Connecting-IP', async (t) => {
  const statuses = [];
  let sample429;
  // 60 requests, 6 at a time: above 20 r/s + burst 30, under the 8-connection limit
  for (let i = 0; i < 10; i++) {
    const batch = await Promise.all(Array.from({ length: 6 }, () => request(`${url}/v1/models`, { user: USER })));
    for (const r of batch) {
      statuses.push(r.status);
      if (r.status === 429) sample429 = r;
    }
  }
  const count = (s) => statuses.filter((x) => x === s).length;
  t.diagnostic(`burst of ${statuses.length}: ${count(200)} x 200, ${count(429)} x 429`);
  assert.ok(count(429) > 0, 'no 429 after the burst');
  assert.ok(count(200) >= 20, 'the burst allowance was served');
  assert.deepEqual(statuses.filter((s) => s !== 200 && s !== 429), []);
  assertJsonError(sample429, 429, 'RATE_LIMITED');
  // the published listener ignores CF-Connecting-IP: a made-up one does not escape the limit ...
  // (18 at once, each with its own made-up address: on a busy machine the bucket refills a little
  // between two requests, so one lone request could pass; fresh buckets would pass them all)
  const spoofed = [];
  for (let i = 0; i < 3; i++) {
    spoofed.push(...(await Promise.all(Array.from({ length: 6 }, (_, j) => request(`${url}/v1/models`, { user: USER, headers: { 'cf-connecting-ip': `198.51.100.${i * 6 + j + 1}` } })))));
  }
  const refused = spoofed.filter((r) => r.status === 429);
  t.diagnostic(`spoofed CF-Connecting-IP: ${refused.length} of ${spoofed.length} refused`);
  assert.ok(refused.length >= 6, `spoofed addresses escaped the limit: ${spoofed.map((r) => r.status).join(' ')}`);
  assertJsonError(refused[0], 429, 'RATE_LIMITED');
  // ... while on the tunnel listener it is the client's address: another client, another bucket
  const viaTunnel = await request(`${tunnelUrl}/v1/models`, { user: USER, headers: { 'cf-connecting-ip': '203.0.113.10' } });
  assert.equal(viaTunnel.status, 200, viaTunnel.body);
  assertJsonError(await request(`${tunnelUrl}/v1/models`, { headers: { 'cf-connecting-ip': '203.0.113.10' } }), 401, 'UNAUTHORIZED');
  await new Promise((r) => setTimeout(r, 2000));
  assert.equal((await request(`${url}/v1/models`, { user: USER })).status, 200, 'served again after the bucket refilled');
});

test('502 JSON when the API is down', async () => {
  const pid = stack.apiPid;
  assert.ok(pid > 0);
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 100; i++) {
    try { process.kill(pid, 0); } catch { break; }
    await new Promise((r) => setTimeout(r, 100));
  }
  assertJsonError(await request(`${url}/v1/models`, { user: USER }), 502, 'API_UNAVAILABLE');
  assertJsonError(await request(`${url}/health`), 502, 'API_UNAVAILABLE');
  // the door still checks credentials first
  assertJsonError(await request(`${url}/v1/models`), 401, 'UNAUTHORIZED');
});
