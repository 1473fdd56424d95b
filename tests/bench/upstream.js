#!/usr/bin/env node
'use strict';
/**
 * The benchmark's upstream: a lean stand-in for Ollama on loopback that speaks the parts of the real
 * API the gateway calls (/, /api/version, /api/tags, /api/ps, /api/show, /api/generate, /api/chat,
 * /api/embed, /api/embeddings), plus Ollama's OpenAI-compatible /v1/chat/completions (non-streamed:
 * what Portkey's Ollama provider calls, for the comparison gateway), and does as little work as
 * possible itself, so that what the benchmark sees is the gateway, not the fake.
 *
 *   node tests/bench/upstream.js [--port 0] [--token-ms 20]
 *
 * Tokens are sent on a fixed schedule (token i at start + (i+1) * token-ms, so timer jitter does not
 * add up over a stream): 20 ms = 50 tok/s, an RTX 3060 on an 8B Q4 model. The model `bench:fast`
 * answers with no delay at all (latency and memory runs); every other model streams at token-ms.
 * The number of tokens is options.num_predict (max_tokens on /v1/chat/completions; default 64).
 * Embeddings answer at once (768 floats).
 * Prints `BENCH_UPSTREAM_URL=http://127.0.0.1:<port>` once listening; exits on SIGTERM/SIGINT.
 */
const http = require('node:http');

const args = process.argv.slice(2);
const arg = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? Number(args[i + 1]) : dflt;
};
const PORT = arg('--port', 0);
const TOKEN_MS = arg('--token-ms', 20);
const DEFAULT_TOKENS = 64;
const FAST = 'bench:fast';
const MODELS = ['bench:50tps', FAST, 'bench-embed:latest'];

const modified = new Date('2026-01-01T00:00:00Z').toISOString();
const tagOf = (name) => ({
  name,
  model: name,
  modified_at: modified,
  size: name.startsWith('bench-embed') ? 274302450 : 4920753328,
  digest: 'sha256:' + '0'.repeat(64),
  details: {
    format: 'gguf',
    family: name.startsWith('bench-embed') ? 'nomic-bert' : 'llama',
    families: null,
    parameter_size: name.startsWith('bench-embed') ? '137M' : '8.0B',
    quantization_level: 'Q4_K_M',
  },
});
const TAGS = JSON.stringify({ models: MODELS.map(tagOf) });
const farFuture = new Date(Date.now() + 365 * 86400e3).toISOString();
const PS = JSON.stringify({ models: MODELS.map((m) => ({ ...tagOf(m), expires_at: farFuture, size_vram: tagOf(m).size })) });
const VECTOR = JSON.stringify(Array.from({ length: 768 }, (_, i) => Math.round(Math.sin(i + 1) * 1e6) / 1e6));

const isEmbed = (m) => typeof m === 'string' && m.startsWith('bench-embed');
const capabilities = (m) => (isEmbed(m) ? ['embedding'] : ['completion', 'tools']);

function send(res, status, body) {
  const s = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(s) });
  res.end(s);
}

function generate(req, res, body, kind) {
  const model = body.model;
  if (typeof model !== 'string' || !MODELS.some((m) => m === model || m === `${model}:latest`)) {
    return send(res, 404, { error: `model "${model}" not found, try pulling it first` });
  }
  const stream = body.stream !== false;
  const started = process.hrtime.bigint();
  const created = () => new Date().toISOString();
  const isEmptyLoad = kind === 'generate' ? !body.prompt : !(Array.isArray(body.messages) && body.messages.length);
  if (isEmptyLoad) {
    // load / unload (keep_alive 0) requests: an empty prompt answers at once
    const unload = body.keep_alive === 0 || body.keep_alive === '0' || body.keep_alive === '0s';
    const line = { model, created_at: created(), response: '', done: true, done_reason: unload ? 'unload' : 'load' };
    if (kind === 'chat') { delete line.response; line.message = { role: 'assistant', content: '' }; }
    return send(res, 200, line);
  }
  const n = Math.max(1, Number(body.options && body.options.num_predict) > 0 ? Number(body.options.num_predict) : DEFAULT_TOKENS);
  const delay = model === FAST ? 0 : TOKEN_MS;
  const piece = (i) => (i === 0 ? 'Token' : ` t${i}`);
  const chunk = (text) =>
    kind === 'generate'
      ? `{"model":"${model}","created_at":"${created()}","response":${JSON.stringify(text)},"done":false}\n`
      : `{"model":"${model}","created_at":"${created()}","message":{"role":"assistant","content":${JSON.stringify(text)}},"done":false}\n`;
  const final = (text) => {
    const ns = Number(process.hrtime.bigint() - started);
    const m = {
      model,
      created_at: created(),
      done: true,
      done_reason: 'length',
      total_duration: ns,
      load_duration: 1000000,
      prompt_eval_count: 12,
      prompt_eval_duration: 1000000,
      eval_count: n,
      eval_duration: Math.max(1, ns - 2000000),
    };
    if (kind === 'generate') return { ...m, response: text, ...(stream ? {} : { context: [1, 2, 3] }) };
    return { ...m, message: { role: 'assistant', content: text } };
  };

  if (!stream) {
    const text = Array.from({ length: n }, (_, i) => piece(i)).join('');
    if (delay === 0) return send(res, 200, final(text));
    const t = setTimeout(() => send(res, 200, final(text)), n * delay);
    res.on('close', () => clearTimeout(t));
    return;
  }

  res.writeHead(200, { 'Content-Type': 'application/x-ndjson' });
  if (delay === 0) {
    let out = '';
    for (let i = 0; i < n; i++) out += chunk(piece(i));
    res.end(out + JSON.stringify(final('')) + '\n');
    return;
  }
  const t0 = performance.now();
  let i = 0;
  let timer = null;
  let closed = false;
  res.on('close', () => {
    closed = true;
    if (timer) clearTimeout(timer);
  });
  const tick = () => {
    timer = null;
    if (closed) return;
    // on schedule: every token whose time has come (a late timer catches up, like a real stream would)
    const now = performance.now();
    let out = '';
    while (i < n && t0 + (i + 1) * delay <= now + 0.5) out += chunk(piece(i++));
    if (i >= n) {
      res.end(out + JSON.stringify(final('')) + '\n');
      return;
    }
    if (out) res.write(out);
    timer = setTimeout(tick, Math.max(0, t0 + (i + 1) * delay - performance.now()));
  };
  timer = setTimeout(tick, delay);
}

/**
 * Ollama's OpenAI-compatible chat completion, non-streamed only: the same answer and the same delay
 * (max_tokens × token-ms, none for bench:fast) as /api/chat, in the OpenAI shape.
 */
function openaiChat(res, body) {
  const model = body.model;
  if (typeof model !== 'string' || !MODELS.some((m) => m === model || m === `${model}:latest`)) {
    return send(res, 404, { error: { message: `model "${model}" not found, try pulling it first`, type: 'api_error', param: null, code: null } });
  }
  if (body.stream === true) return send(res, 400, { error: { message: 'the bench upstream answers /v1/chat/completions non-streamed only', type: 'invalid_request_error', param: 'stream', code: null } });
  const n = Math.max(1, Number(body.max_tokens) > 0 ? Number(body.max_tokens) : DEFAULT_TOKENS);
  const text = Array.from({ length: n }, (_, i) => (i === 0 ? 'Token' : ` t${i}`)).join('');
  const answer = () =>
    send(res, 200, {
      id: `chatcmpl-${Math.floor(Math.random() * 1e9)}`,
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model,
      system_fingerprint: 'fp_ollama',
      choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'length' }],
      usage: { prompt_tokens: 12, completion_tokens: n, total_tokens: 12 + n },
    });
  if (model === FAST) return answer();
  const t = setTimeout(answer, n * TOKEN_MS);
  res.on('close', () => clearTimeout(t));
}

function embed(res, body, legacy) {
  const model = body.model;
  if (!MODELS.includes(model) && !MODELS.includes(`${model}:latest`)) return send(res, 404, { error: `model "${model}" not found, try pulling it first` });
  if (legacy) return send(res, 200, `{"embedding":${VECTOR}}`);
  const inputs = Array.isArray(body.input) ? body.input.length : 1;
  const vecs = new Array(inputs).fill(VECTOR).join(',');
  send(res, 200, `{"model":"${model}","embeddings":[${vecs}],"total_duration":1000000,"load_duration":100000,"prompt_eval_count":${inputs * 8}}`);
}

const server = http.createServer((req, res) => {
  req.socket.setNoDelay(true);
  const path = req.url.split('?')[0];
  if (req.method === 'GET' || req.method === 'HEAD') {
    if (path === '/') return res.end('Ollama is running');
    if (path === '/api/version') return send(res, 200, { version: '0.12.6' });
    if (path === '/api/tags') return send(res, 200, TAGS);
    if (path === '/api/ps') return send(res, 200, PS);
    return send(res, 404, { error: 'not found' });
  }
  const parts = [];
  req.on('data', (c) => parts.push(c));
  req.on('end', () => {
    let body;
    try {
      body = parts.length ? JSON.parse(Buffer.concat(parts).toString('utf8')) : {};
    } catch {
      return send(res, 400, { error: 'invalid JSON' });
    }
    switch (path) {
      case '/api/generate': return generate(req, res, body, 'generate');
      case '/api/chat': return generate(req, res, body, 'chat');
      case '/api/embed': return embed(res, body, false);
      case '/api/embeddings': return embed(res, body, true);
      case '/v1/chat/completions': return openaiChat(res, body);
      case '/api/show': {
        const m = body.model || body.name;
        if (!MODELS.includes(m) && !MODELS.includes(`${m}:latest`)) return send(res, 404, { error: `model '${m}' not found` });
        return send(res, 200, { modelfile: '', parameters: '', template: '{{ .Prompt }}', details: tagOf(m).details, model_info: {}, capabilities: capabilities(m), modified_at: modified });
      }
      default: return send(res, 404, { error: 'not found' });
    }
  });
});
server.keepAliveTimeout = 60_000;
server.listen(PORT, '127.0.0.1', () => {
  process.stdout.write(`BENCH_UPSTREAM_URL=http://127.0.0.1:${server.address().port}\n`);
});
const stop = () => server.close(() => process.exit(0)) && setTimeout(() => process.exit(0), 500).unref();
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
