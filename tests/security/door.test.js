'use strict';
// The security suite (issue 12): hostile requests against the local stack (scripts/local-stack.sh:
// the real nginx with the stack's config in front of the API built from services/api, against the
// fake Ollama), both THROUGH NGINX (the door the internet sees) and STRAIGHT AT THE API (what a
// flaw in nginx's config would leave). Every refusal must be a clear JSON 4xx; the appliance keeps
// serving. Loopback only.
const test = require('node:test');
const assert = require('node:assert/strict');
const { startFakeAndLocalStack } = require('../lib/helpers');
const { send, raw, assertJsonRefusal, basic } = require('./lib');

const ADMIN = 'admin:Adm1n-S3cur1ty-Su1te-9xQ';
const USER = 'waldus:W4ldus-S3cur1ty-Su1te-7kP';
const WRONG = ['waldus:W4ldus-S3cur1ty-Su1te-7kQ', 'admin:not-the-admin-password-at-all', 'nobody:W4ldus-S3cur1ty-Su1te-7kP'];
const MODEL = 'llama3.1:8b';

let stack;
let door; // through nginx
let api; // straight at the API
const both = () => [['nginx', door], ['api', api]];

test.before(async () => {
  stack = await startFakeAndLocalStack({
    tokenDelayMs: 5,
    users: `${ADMIN},${USER}`,
    admins: 'admin',
    // the rate and connection limits are not under test here: room for the matrix and 200 slow clients
    env: { MODEL_DEFAULT: MODEL, NGINX_RATE_LIMIT: '1000r/s', NGINX_RATE_BURST: '1000', NGINX_CONN_LIMIT: '64', WARM_DEFAULT_MODEL: 'false' },
  });
  door = stack.url;
  api = stack.apiUrl;
});
test.after(() => stack?.stop());

async function stillServing(what) {
  const res = await send(door, '/v1/models', { user: USER, timeoutMs: 5_000 });
  assert.equal(res.status, 200, `${what}: the appliance stopped serving: ${res.status} ${res.body.slice(0, 200)}`);
}

// --- the authorization matrix ----------------------------------------------------------------------
// [method, path, body, who may use it: 'public' | 'user' | 'admin' | 'metrics']
const ROUTES = [
  ['GET', '/health', undefined, 'public'],
  ['GET', '/ready', undefined, 'user'],
  ['GET', '/v1/models', undefined, 'user'],
  ['GET', `/openai/v1/models/${MODEL}`, undefined, 'user'],
  ['POST', '/v1/generate', { model: MODEL, prompt: 'hi', stream: false }, 'user'],
  ['POST', '/v1/chat', { model: MODEL, messages: [{ role: 'user', content: 'hi' }], stream: false }, 'user'],
  ['POST', '/v1/embeddings', { input: 'hi' }, 'user'],
  ['POST', '/v1/structured', { prompt: 'hi', schema: { type: 'object' } }, 'user'],
  ['GET', '/v1/jobs/does-not-exist', undefined, 'user'],
  ['GET', '/ollama/api/tags', undefined, 'user'],
  ['GET', '/ollama/api/version', undefined, 'user'],
  ['POST', '/ollama/api/show', { model: MODEL }, 'user'],
  ['POST', '/ollama/api/generate', { model: MODEL, prompt: 'hi', stream: false }, 'user'],
  ['GET', '/openai/v1/models', undefined, 'user'],
  ['POST', '/openai/v1/chat/completions', { model: MODEL, messages: [{ role: 'user', content: 'hi' }] }, 'user'],
  ['GET', '/metrics', undefined, 'metrics'],
  ['GET', '/admin/', undefined, 'admin'],
  ['GET', '/admin/status.json', undefined, 'admin'],
  ['GET', '/admin/gpu', undefined, 'admin'],
  ['GET', '/admin/ollama', undefined, 'admin'],
  ['POST', '/admin/ollama/restart', {}, 'admin'],
  ['POST', '/admin/models/pull', { model: 'no-such-model:1b', stream: false }, 'admin'],
  ['POST', '/admin/models/no-such-model:1b/load', {}, 'admin'],
  ['POST', '/admin/models/no-such-model:1b/unload', {}, 'admin'],
  ['DELETE', '/admin/models/no-such-model:1b', undefined, 'admin'],
  // Ollama routes that change the model store: admins only, also on the /ollama surface
  ['POST', '/ollama/api/create', { model: 'evil', from: MODEL }, 'admin'],
  ['POST', '/ollama/api/copy', { source: MODEL, destination: 'evil-copy' }, 'admin'],
  ['DELETE', '/ollama/api/delete', { model: 'no-such-model:1b' }, 'admin'],
  ['POST', '/ollama/api/pull', { model: 'no-such-model:1b', stream: false }, 'admin'],
  ['POST', '/ollama/api/push', { model: 'no-such-model:1b', stream: false }, 'admin'],
  ['POST', '/ollama/api/blobs/sha256:0000000000000000000000000000000000000000000000000000000000000000', '', 'admin'],
  ['HEAD', '/ollama/api/blobs/sha256:0000000000000000000000000000000000000000000000000000000000000000', undefined, 'admin'],
];

for (const [via, base] of [['nginx'], ['api']]) {
  test(`authorization matrix ${via === 'nginx' ? 'through nginx' : 'straight at the API'}: every route x {no credentials, wrong password, user, admin}`, async (t) => {
    const b = via === 'nginx' ? door : api;
    const rows = [];
    for (const [method, path, body, who] of ROUTES) {
      const call = (user) => send(b, path, { method, user, body, timeoutMs: 20_000 });
      const none = await call(undefined);
      const wrong = await Promise.all(WRONG.map(call));
      const user = await call(USER);
      const admin = await call(ADMIN);
      rows.push(`${method} ${path}: none ${none.status}, wrong ${wrong.map((w) => w.status).join('/')}, user ${user.status}, admin ${admin.status}`);
      if (who === 'public') {
        for (const r of [none, user, admin]) assert.equal(r.status, 200, `${method} ${path}`);
        continue;
      }
      // HEAD answers have no body: the status is the check
      const refusal = (r, s, w) => (method === 'HEAD' ? assert.equal(r.status, s, w) : assertJsonRefusal(r, s, w));
      refusal(none, 401, `${via} ${method} ${path} without credentials`);
      wrong.forEach((r, i) => refusal(r, 401, `${via} ${method} ${path} as ${WRONG[i].split(':')[0]} with a wrong password`));
      if (who === 'user') {
        assert.ok(![401, 403].includes(user.status) && user.status < 500, `${via} ${method} ${path} as user: ${user.status} ${user.body.slice(0, 200)}`);
      } else {
        refusal(user, 403, `${via} ${method} ${path} as a non-admin user`);
      }
      assert.ok(![401, 403].includes(admin.status), `${via} ${method} ${path} as admin: ${admin.status} ${admin.body.slice(0, 200)}`);
      // (what an admin gets past the door is the route's business: the fake Ollama answers some in plain text)
    }
    t.diagnostic(`\n${rows.join('\n')}`);
  });
}

test('what a non-admin sends to the model store changes nothing (both ways in)', async () => {
  const names = async () => (await send(door, '/ollama/api/tags', { user: USER })).json.models.map((m) => m.name);
  const before = await names();
  for (const [via, base] of both()) {
    const tries = [
      ['POST', '/ollama/api/create', { model: `made-by-user-${via}`, from: MODEL }],
      ['POST', '/ollama/api/copy', { source: MODEL, destination: `copied-by-user-${via}` }],
      ['DELETE', '/ollama/api/delete', { model: MODEL }],
      ['POST', '/ollama/api/pull', { model: `pulled-by-user-${via}:1b`, stream: false }],
      ['POST', '/admin/models/pull', { model: `pulled-by-user-${via}:2b`, stream: false }],
      ['DELETE', `/admin/models/${MODEL}`, undefined],
    ];
    for (const [method, path, body] of tries) {
      assertJsonRefusal(await send(base, path, { method, user: USER, body }), 403, `${via} ${method} ${path} as user`);
    }
  }
  assert.deepEqual(await names(), before, 'the model list changed');
});

// --- paths that try to escape a surface ----------------------------------------------------------
const ESCAPES = [
  '/ollama/../admin/ollama',
  '/ollama/../admin/ollama/restart',
  '/v1/../admin/status.json',
  '/ollama/%2e%2e/admin/ollama',
  '/ollama/%2E%2E/admin/status.json',
  '/ollama/.%2e/admin/ollama',
  '/ollama%2f..%2fadmin',
  '/ollama%2f..%2fadmin/ollama',
  '/ollama%2F..%2Fadmin%2Fstatus.json',
  '/v1/..%2fadmin/ollama',
  '//admin/ollama',
  '//v1/admin/ollama',
  '//ollama/../admin/gpu',
  '/v1\\..\\admin\\ollama',
  '/v1%5c..%5cadmin%5cstatus.json',
  '/ollama/%c0%ae%c0%ae/admin/ollama',
  '/ollama/%c0%ae%c0%ae%c0%afadmin%c0%afollama',
  '/ollama/%e0%80%ae%e0%80%ae/admin/ollama',
  '/v1/models/%00/../../admin/ollama',
  '/admin',
  '/admin/./ollama',
];

test('escape paths through nginx: a JSON 4xx for a non-admin, never a redirect, never the admin surface', async (t) => {
  const rows = [];
  for (const p of ESCAPES) {
    for (const user of [undefined, USER]) {
      const res = await send(door, p, { user });
      rows.push(`${p} ${user ? 'user' : 'none'}: ${res.status} ${res.json?.error?.code ?? ''}`);
      assert.ok(res.status < 300 || res.status >= 400, `${p}: a redirect (${res.status} -> ${res.headers.location})`);
      assertJsonRefusal(res, [400, 401, 403, 404], `${p} (${user ? 'user' : 'no credentials'})`);
    }
  }
  t.diagnostic(`\n${rows.join('\n')}`);
  // the ones the issue names, precisely
  assertJsonRefusal(await send(door, '/ollama%2f..%2fadmin'), 400, '/ollama%2f..%2fadmin');
  assert.equal((await send(door, '/ollama%2f..%2fadmin')).json.error.code, 'BAD_PATH');
  assertJsonRefusal(await send(door, '/admin'), 401, '/admin without credentials');
  assertJsonRefusal(await send(door, '/admin', { user: USER }), 403, '/admin as user');
  assertJsonRefusal(await send(door, '/ollama'), 401, '/ollama without credentials');
  // the slashless prefixes reach the API for the right users, with no 301: /admin is no route (404
  // JSON), /ollama is Ollama's root ("Ollama is running", as the real one answers)
  const adminRoot = await send(door, '/admin', { user: ADMIN });
  assertJsonRefusal(adminRoot, 404, '/admin as admin');
  const ollamaRoot = await send(door, '/ollama', { user: USER });
  assert.equal(ollamaRoot.status, 200, ollamaRoot.body);
  assert.match(ollamaRoot.body, /Ollama is running/);
  // what nginx refuses is the dot segment, not the character: dots inside a name still pass
  assert.equal((await send(door, '/openai/v1/models/llama3.1:8b', { user: USER })).status, 200);
  const q = await send(door, '/v1/models?x=../..%2e', { user: USER });
  assert.notEqual(q.json?.error?.code, 'BAD_PATH', 'a query string is not a path: nginx passes it (the API judges it)');
  await stillServing('after the escape paths');
});

test('escape paths straight at the API: a non-admin never reaches an admin route', async (t) => {
  const rows = [];
  for (const p of ESCAPES) {
    const res = await send(api, p, { user: USER });
    rows.push(`${p}: ${res.status} ${JSON.stringify(res.json?.error?.code ?? res.json?.error ?? '')}`);
    assert.ok(res.status < 300 || res.status >= 400, `${p}: redirect`);
    assertJsonRefusal(res, [400, 401, 403, 404], `${p} straight at the API as user`);
  }
  t.diagnostic(`\n${rows.join('\n')}`);
});

test('X-HTTP-Method-Override and friends change nothing (nginx strips them; the API ignores them)', async () => {
  const tunnelling = { 'x-http-method-override': 'DELETE', 'x-http-method': 'DELETE', 'x-method-override': 'DELETE' };
  for (const [via, base] of both()) {
    // a user's show with a DELETE override: still a show, the model still there
    const show = await send(base, '/ollama/api/show', { method: 'POST', user: USER, body: { model: MODEL }, headers: tunnelling });
    assert.equal(show.status, 200, `${via}: ${show.body.slice(0, 200)}`);
    const del = await send(base, '/ollama/api/delete', { method: 'POST', user: USER, body: { model: MODEL }, headers: tunnelling });
    assert.ok([403, 404, 405].includes(del.status), `${via}: POST /ollama/api/delete with a DELETE override: ${del.status}`);
    // an admin GET with a POST override does not restart anything
    const get = await send(base, '/admin/ollama/restart', { method: 'GET', user: ADMIN, headers: { 'x-http-method-override': 'POST' } });
    assert.ok([404, 405].includes(get.status), `${via}: GET /admin/ollama/restart + override POST: ${get.status}`);
    const tags = await send(base, '/ollama/api/tags', { user: USER });
    assert.ok(tags.json.models.some((m) => m.name === MODEL), `${via}: ${MODEL} was deleted`);
  }
});

test('a Host header aimed at the admin changes nothing: the user is still refused', async () => {
  for (const host of ['admin', 'localhost', '127.0.0.1:3000', 'admin.internal', 'api:3000']) {
    for (const [via, base] of both()) {
      assertJsonRefusal(await send(base, '/admin/ollama', { user: USER, headers: { host } }), 403, `${via} Host: ${host}`);
      assertJsonRefusal(await send(base, '/admin/ollama', { headers: { host } }), 401, `${via} Host: ${host} without credentials`);
    }
  }
  // absolute-form request target naming another host: nginx routes by the path, the gate holds
  const r = await raw(door, `GET http://admin.internal/admin/ollama HTTP/1.1\r\nHost: admin.internal\r\nAuthorization: ${basic(USER)}\r\nConnection: close\r\n\r\n`);
  assertJsonRefusal(r, 403, 'absolute-form request to the admin');
});

// --- bodies ----------------------------------------------------------------------------------------
const deep = (n) => '{"model":"' + MODEL + '","prompt":"hi","stream":false,"options":' + '['.repeat(n) + ']'.repeat(n) + '}';

test('10,000-deep nested JSON on /v1: a JSON 4xx, the appliance keeps serving', async () => {
  for (const [via, base] of both()) {
    const res = await send(base, '/v1/generate', { method: 'POST', user: USER, body: deep(10_000) });
    assertJsonRefusal(res, [400, 413, 422], `${via} /v1/generate with 10,000-deep JSON`);
  }
  await stillServing('after the deep JSON');
});

test('10,000-deep nested JSON on /ollama: a JSON 400 (was 502: the forwarding overflowed)', async () => {
  for (const [via, base] of both()) {
    const res = await send(base, '/ollama/api/generate', { method: 'POST', user: USER, body: deep(10_000) });
    assertJsonRefusal(res, 400, `${via} /ollama/api/generate with 10,000-deep JSON`);
  }
});

test('a 30 MB body: 413 JSON, from nginx before it reaches the API, and from the API itself', async () => {
  const big = Buffer.alloc(30 * 1024 * 1024, 'a');
  big.write(`{"model":"${MODEL}","prompt":"`);
  big.write('"}', big.length - 2);
  const viaNginx = await send(door, '/v1/generate', { method: 'POST', user: USER, body: big, timeoutMs: 60_000 }).catch((e) => ({ error: e }));
  // nginx may answer 413 while the client is still sending, then close: the answer or a reset
  if (!viaNginx.error) {
    assertJsonRefusal(viaNginx, 413, 'nginx, 30 MB');
    assert.equal(viaNginx.json.error.code, 'PAYLOAD_TOO_LARGE');
  }
  // without credentials too: nginx checks the size... after auth: 401 first
  const direct = await send(api, '/v1/generate', { method: 'POST', user: USER, body: big, timeoutMs: 60_000 }).catch((e) => ({ error: e }));
  if (!direct.error) assertJsonRefusal(direct, 413, 'API, 30 MB');
  assert.ok(!viaNginx.error || !direct.error, `both connections were cut without an answer: ${viaNginx.error} / ${direct.error}`);
  // a declared 30 MB body is refused from the headers alone (no need to send it)
  const declared = await raw(door, `POST /v1/generate HTTP/1.1\r\nHost: x\r\nAuthorization: ${basic(USER)}\r\nContent-Type: application/json\r\nContent-Length: ${30 * 1024 * 1024}\r\nConnection: close\r\n\r\n{"model":`);
  assertJsonRefusal(declared, 413, 'nginx, 30 MB declared');
  await stillServing('after the 30 MB bodies');
});

test('a wrong Content-Type: a JSON 4xx, not a crash', async () => {
  for (const [via, base] of both()) {
    for (const ct of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml']) {
      const res = await send(base, '/v1/generate', { method: 'POST', user: USER, body: `{"model":"${MODEL}","prompt":"hi","stream":false}`, headers: { 'content-type': ct } });
      assertJsonRefusal(res, [400, 415, 422], `${via} Content-Type ${ct}`);
    }
    const none = await send(base, '/ollama/api/generate', { method: 'POST', user: USER, body: 'prompt=hi', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    assertJsonRefusal(none, [400, 415, 422], `${via} /ollama with a form body`);
  }
});

test('a body with invalid UTF-8: 400 JSON (was accepted, reaching Ollama as U+FFFD)', async () => {
  const body = Buffer.concat([Buffer.from(`{"model":"${MODEL}","prompt":"bad `), Buffer.from([0xff, 0xfe, 0xc0, 0xae]), Buffer.from('","stream":false}')]);
  for (const [via, base] of both()) {
    for (const p of ['/v1/generate', '/ollama/api/generate']) {
      assertJsonRefusal(await send(base, p, { method: 'POST', user: USER, body }), 400, `${via} ${p} with invalid UTF-8`);
    }
  }
});

test('Content-Length with Transfer-Encoding (request smuggling): nginx answers 400 JSON and closes', async () => {
  const smuggle = `POST /v1/generate HTTP/1.1\r\nHost: x\r\nAuthorization: ${basic(USER)}\r\nContent-Type: application/json\r\n` +
    'Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin/ollama HTTP/1.1\r\nHost: x\r\n\r\n';
  const res = await raw(door, smuggle);
  assertJsonRefusal(res, 400, 'nginx, CL + TE');
  assert.equal(res.json.error.code, 'BAD_REQUEST');
  assert.equal((res.raw.match(/HTTP\/1\.1 /g) || []).length, 1, 'one answer: the smuggled request was not run');
  // a malformed request line and a bad header: nginx's own 400, JSON too
  assertJsonRefusal(await raw(door, 'GET /v1/models HTTP/1.1 extra\r\nHost: x\r\n\r\n'), 400, 'bad request line');
  assertJsonRefusal(await raw(door, 'GET /v1/models HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n'), 400, 'bad header name');
  assertJsonRefusal(await raw(door, `GET /${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`), [414, 400], 'URI too long');
  assertJsonRefusal(await raw(door, `GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`), [431, 400], 'header too large');
  await stillServing('after CL+TE');
});

test('Content-Length with Transfer-Encoding straight at the API: refused with a JSON 400', async () => {
  const smuggle = `POST /v1/generate HTTP/1.1\r\nHost: x\r\nAuthorization: ${basic(USER)}\r\nContent-Type: application/json\r\n` +
    'Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n';
  const res = await raw(api, smuggle);
  assertJsonRefusal(res, 400, 'API, CL + TE');
});

test('a body that never finishes: nginx cuts it after its client_body_timeout, no worker tied up', async () => {
  const t0 = Date.now();
  const slow = raw(door, `POST /v1/generate HTTP/1.1\r\nHost: x\r\nAuthorization: ${basic(USER)}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"model":`, { timeoutMs: 25_000 });
  // meanwhile, others are served at once
  await new Promise((r) => setTimeout(r, 500));
  for (let i = 0; i < 5; i++) await stillServing('while a body hangs');
  const res = await slow;
  assert.equal(res.closedBy, 'server', 'nginx closed the connection');
  assert.ok(res.ms >= 9_000 && res.ms < 20_000, `cut after ${res.ms} ms (client_body_timeout 10s)`);
  if (res.status !== null) assertJsonRefusal(res, 408, 'slow body');
  assert.ok(Date.now() - t0 < 25_000);
});

test('200 connections sending headers one byte a second: the appliance keeps answering, nginx drops them', async (t) => {
  const net = require('node:net');
  const u = new URL(door);
  const header = `GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: ${basic(USER)}\r\nX-Pad: ${'p'.repeat(40)}\r\n\r\n`;
  const conns = [];
  let closedByServer = 0;
  for (let i = 0; i < 200; i++) {
    const s = net.connect(Number(u.port), '127.0.0.1');
    s.on('error', () => {});
    s.on('close', () => { if (!s.destroyedByUs) closedByServer++; });
    conns.push(s);
  }
  let pos = 0;
  const drip = setInterval(() => {
    if (pos >= header.length - 4) return; // never complete the headers
    for (const s of conns) if (!s.destroyed) s.write(header[pos]);
    pos++;
  }, 1000);
  try {
    await new Promise((r) => setTimeout(r, 2_000));
    const times = [];
    for (let i = 0; i < 10; i++) {
      const t0 = Date.now();
      await stillServing('during the slow headers');
      times.push(Date.now() - t0);
    }
    t.diagnostic(`10 requests served during 200 slow-header connections, slowest ${Math.max(...times)} ms`);
    // nginx's client_header_timeout (10 s) closes them; wait (bounded) for it
    const deadline = Date.now() + 16_000;
    while (closedByServer < 200 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
    t.diagnostic(`${closedByServer} of 200 slow connections closed by nginx`);
    assert.equal(closedByServer, 200, 'nginx dropped every slow-header connection');
  } finally {
    clearInterval(drip);
    for (const s of conns) { s.destroyedByUs = !s.destroyed; s.destroy(); }
  }
  await stillServing('after the slow headers');
});
