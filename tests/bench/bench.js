#!/usr/bin/env node
'use strict';
/**
 * `make bench`: what the gateway costs, measured on loopback in one run, side by side with calling
 * the upstream directly (the machine is shared and noisy: only same-run comparisons mean anything).
 *
 *   upstream    tests/bench/upstream.js: a lean Ollama stand-in, 50 tok/s (20 ms a token)
 *   bare proxy  tests/bench/bare-proxy.js: Node's HTTP stack and nothing else, the floor
 *   Portkey     Portkey's open-source gateway (dev dependency @portkey-ai/gateway), its Ollama
 *               provider on the same upstream, behind tests/bench/loopback-only.js; when installed
 *   api         services/api (dist) straight, through scripts/local-stack.sh
 *   nginx+api   the stack's nginx config (real nginx, basic auth) in front of that API
 *
 * Sections: 1 added latency (non-streamed, c=1 and c=8, every target in round-robin batches) and
 * the API's CPU per generation; 2 added time to first token and the spacing of streamed chunks (no
 * buffering); 3 tokens/s through the gateway over direct (1 and 4 streams); 4 the API's RSS over
 * 10,000 mixed requests at 16 callers and idle after, then a burst of eight 25 MB image requests;
 * 5 admission under overload (50 at once, MAX_CONCURRENT=1, MAX_QUEUE=16) against a /health burst
 * of 50; the response cache's hit latency (when the build has the cache); 7 a CPU profile of the
 * API by stage (tests/bench/profile.js); 6 a real Ollama at OLLAMA_BASE_URL (load time, time to
 * first token, tokens/s per model).
 *
 * CPU per request reads /proc/<pid>/stat (Linux; '-' elsewhere); RSS reads /proc or `ps` (macOS).
 *
 * Prints tables, PASS/FAIL per check, the load average at the start and the end, and last a block
 * with one PASS/FAIL line per goal; writes tests/bench/results/latest.json and latest.md.
 * Exit 0 whatever the numbers; 1 only when the benchmark itself broke (setup failed, a request was
 * lost, hung or failed).
 *
 * env: OLLAMA_BASE_URL (section 6; unset = skipped), BENCH_MODELS (comma list for section 6, default
 *      every installed model), BENCH_NUM_CTX (4096, as the gateway's NUM_CTX), BENCH_ONLY (comma list
 *      of latency,streaming,cache,memory,overload,profile,real; default all), BENCH_HARDWARE (a label
 *      for section 6's table, e.g. "RTX 3060 12 GB" or "M1 16 GB"), BENCH_QUICK=1 (fewer requests,
 *      for trying the script out), BENCH_ALT_AUTH_HASH (the comparison nginx's hash, sha512),
 *      BENCH_LOG_LEVEL (the API's, info as in production).
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const http = require('node:http');
const crypto = require('node:crypto');
const { execFileSync, spawn } = require('node:child_process');
const L = require('./lib');
const { profileApi, printTables, stageTable } = require('./profile');

const ROOT = path.resolve(__dirname, '../..');
const RESULTS = path.join(__dirname, 'results');
const QUICK = process.env.BENCH_QUICK === '1';
const HARD_LIMIT_MS = 480_000; // whatever happens, the run ends (section 6 excluded: real loads take long)
const TOKEN_MS = 20; // 50 tok/s
const GEN_MODEL = 'bench:50tps';
const FAST_MODEL = 'bench:fast';
const EMBED_MODEL = 'bench-embed';

// limits raised for this run only, so that they measure the gateway and not its throttles
const RAISED = {
  // on, as in production (its cost is part of every request), but never reached
  RATE_LIMIT_PER_MIN: '1000000',
  NGINX_RATE_LIMIT: '100000r/s',
  NGINX_RATE_BURST: '100000',
  NGINX_CONN_LIMIT: '1024',
  MAX_CONCURRENT: '8',
  MAX_QUEUE: '256',
};

const user = 'bench';
const password = crypto.randomBytes(18).toString('base64url');
const AUTH = { authorization: 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64') };

const out = { startedAt: new Date().toISOString(), machine: {}, settings: {}, sections: {}, checks: [], notes: [] };
const children = [];
let broken = [];

function log(s = '') {
  process.stdout.write(s + '\n');
}
/** One measured target; `detail` is what the goals block prints beside PASS/FAIL. */
function check(id, what, value, goal, pass, unit = 'ms', detail = null) {
  out.checks.push({ id, what, value, goal, unit, pass, detail });
  return pass;
}
function breakBench(msg) {
  broken.push(msg);
  log(`BROKEN: ${msg}`);
}

function machine() {
  const cpus = os.cpus();
  let nginx = '';
  try {
    nginx = execFileSync('nginx', ['-v'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    nginx = String(e.stderr || '');
  }
  try {
    nginx = execFileSync('sh', ['-c', 'nginx -v 2>&1'], { encoding: 'utf8' }).trim();
  } catch {}
  return {
    host: os.hostname(),
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memGb: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    nginx: nginx.replace(/^nginx version: (nginx\/)?/, ''),
    loadavgAtStart: os.loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

// ---------------------------------------------------------------------------------------------------
// setup

async function setup() {
  const [httpPort, apiPort, tunnelPort, overloadPort, altPort, altTunnel] = await Promise.all(Array.from({ length: 6 }, L.freePort));
  const up = await L.startProcess('bench upstream', process.execPath, [path.join(__dirname, 'upstream.js'), '--token-ms', String(TOKEN_MS)], {
    env: process.env,
    keys: ['BENCH_UPSTREAM_URL'],
    timeoutMs: 10_000,
  });
  children.push(up.child);
  const upstream = up.values.BENCH_UPSTREAM_URL;

  const heapProbeOut = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'bench-heap-')), 'heap.jsonl');
  const apiEnv = {
    ...process.env,
    ...RAISED,
    // the API (only) gets the heap probe: a full GC and memoryUsage() on SIGUSR2
    NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --require ${path.join(__dirname, 'heap-probe.js')}`.trim(),
    BENCH_HEAP_PROBE_OUT: heapProbeOut,
    AUTH_USERS: `${user}:${password}`,
    ADMIN_USERS: user,
    OLLAMA_BASE_URL: upstream,
    MODEL_DEFAULT: GEN_MODEL,
    MODEL_EMBED: EMBED_MODEL,
    // the production default (.env.example): one JSON access line per request on stdout, as in compose
    LOG_LEVEL: process.env.BENCH_LOG_LEVEL || 'info',
    HTTP_PORT: String(httpPort),
    API_PORT: String(apiPort),
    TUNNEL_PORT: String(tunnelPort),
  };
  const stack = await L.startProcess('scripts/local-stack.sh', path.join(ROOT, 'scripts/local-stack.sh'), [], {
    env: apiEnv,
    keys: ['LOCAL_STACK_URL', 'LOCAL_STACK_API_PID', 'LOCAL_STACK_NGINX_PID'],
    timeoutMs: 90_000,
  });
  children.push(stack.child);

  // A second nginx, same config and API, with the other htpasswd hash (SHA-512 crypt, the former
  // default): what the hash costs per request. The stack's own nginx uses the auth step's default.
  let alt = null;
  const altHash = process.env.BENCH_ALT_AUTH_HASH ?? 'sha512';
  try {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-nginx-'));
    execFileSync(path.join(ROOT, 'scripts/render-nginx.sh'), [dir], {
      env: { ...apiEnv, NGINX_AUTH_HASH: altHash, NGINX_PORT: String(altPort), NGINX_TUNNEL_PORT: String(altTunnel), NGINX_API_UPSTREAM: `127.0.0.1:${apiPort}` },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const child = spawn('nginx', ['-e', 'stderr', '-p', dir, '-c', path.join(dir, 'nginx.conf'), '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] });
    children.push(child);
    alt = { url: `http://127.0.0.1:${altPort}`, hash: hashLabel(fs.readFileSync(path.join(dir, 'auth/htpasswd'), 'utf8')), dir, child };
    for (let i = 0; i < 50; i++) {
      const r = await L.request(`${alt.url}/nginx-health`).catch(() => null);
      if (r && r.status === 200) break;
      await new Promise((r2) => setTimeout(r2, 100));
    }
  } catch (e) {
    out.notes.push(`second nginx (${altHash}) not started: ${e.message.split('\n')[0]}`);
    alt = null;
  }

  const pooled = await startTwinApi(apiEnv, upstream, true);
  const single = await startTwinApi(apiEnv, upstream, false);
  const bare = await startBareProxy(upstream);
  const portkey = await startPortkey(upstream);
  log(portkey.url ? `Portkey ${portkey.version} at ${portkey.url} (Ollama provider → the same upstream)` : `Portkey: not run (${portkey.reason})`);

  const env = {
    upstream,
    bare,
    portkey,
    api: `http://127.0.0.1:${apiPort}`,
    nginx: stack.values.LOCAL_STACK_URL,
    apiPid: Number(stack.values.LOCAL_STACK_API_PID),
    pooled,
    single,
    nginxPid: Number(stack.values.LOCAL_STACK_NGINX_PID),
    stackHash: hashKindOfNginx(Number(stack.values.LOCAL_STACK_NGINX_PID)),
    alt,
    overloadPort,
    apiEnv,
    heapProbeOut,
  };
  return env;
}

/**
 * Two more APIs, launched alike (the same build, settings and launch, outside the local stack), one
 * with a pool of two upstreams (UPSTREAMS), its twin with the one implicit upstream: what routing
 * (candidates, breakers, discovery state, spill check) adds per request, at most 0.1 ms p50 (issue
 * 15). Both upstreams of the pool are the bench's upstream: the preferred one serves, the other
 * stands by.
 */
async function startTwinApi(apiEnv, upstream, pool) {
  const port = await L.freePort();
  const child = spawn(process.execPath, [path.join(ROOT, 'services/api/dist/main.js')], {
    env: {
      ...apiEnv,
      NODE_OPTIONS: '',
      PORT: String(port),
      HOST: '127.0.0.1',
      TRUST_PROXY: '1',
      UPSTREAMS: pool
        ? JSON.stringify([
            { name: 'gpu', url: upstream, kind: 'ollama', priority: 1 },
            { name: 'spare', url: upstream, kind: 'ollama', priority: 2 },
          ])
        : '',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  // drained like the stack's API: its access lines go to a pipe, not to a file
  child.stdout.resume();
  child.stderr.resume();
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    const r = await L.request(`${url}/health`).catch(() => null);
    if (r && r.status === 200) return { url, pid: child.pid };
    await new Promise((r2) => setTimeout(r2, 100));
  }
  return breakBench(`the API with ${pool ? 'two upstreams' : 'one upstream'} (twin) did not start`);
}

/** tests/bench/bare-proxy.js in front of the upstream: what Node's HTTP stack alone adds. */
async function startBareProxy(upstream) {
  const p = await L.startProcess('bare proxy', process.execPath, [path.join(__dirname, 'bare-proxy.js'), '--upstream', upstream], {
    env: process.env,
    keys: ['BENCH_BARE_PROXY_URL'],
    timeoutMs: 10_000,
  });
  children.push(p.child);
  return { url: p.values.BENCH_BARE_PROXY_URL, pid: p.child.pid };
}

const PORTKEY_DIR = path.join(ROOT, 'services/api/node_modules/@portkey-ai/gateway');

/**
 * Portkey's open-source gateway (a dev dependency of services/api, for this comparison only), its
 * Ollama provider pointed at the same upstream by the x-portkey-custom-host header. Preloads
 * loopback-only.js: it listens on 127.0.0.1 only and cannot reach past loopback (anything it tries
 * is reported at the end). Returns { url, pid, version } or { reason } when it cannot run.
 */
async function startPortkey(upstream) {
  const server = path.join(PORTKEY_DIR, 'build/start-server.js');
  if (!fs.existsSync(server)) return { reason: 'not installed: cd services/api && npm ci (it is a dev dependency)' };
  const version = JSON.parse(fs.readFileSync(path.join(PORTKEY_DIR, 'package.json'), 'utf8')).version;
  const outboundLog = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'bench-portkey-')), 'outbound.jsonl');
  try {
    const port = await L.freePort();
    const p = await L.startProcess('Portkey gateway', process.execPath, ['--require', path.join(__dirname, 'loopback-only.js'), server, `--port=${port}`, '--headless'], {
      // production mode: no console UI, no log streaming to it
      env: { ...process.env, NODE_ENV: 'production', BENCH_OUTBOUND_LOG: outboundLog },
      keys: ['BENCH_LISTEN_PORT'],
      timeoutMs: 30_000,
    });
    children.push(p.child);
    const pk = { url: `http://127.0.0.1:${port}`, pid: p.child.pid, version, outboundLog, headers: portkeyHeaders(upstream) };
    const r = await L.request(`${pk.url}/v1/chat/completions`, { method: 'POST', headers: pk.headers, body: openaiBody(FAST_MODEL, 1) });
    if (r.status !== 200) {
      await L.stopProcess(p.child);
      return { reason: `it answered a test request with HTTP ${r.status}: ${r.body.slice(0, 200)}`, outboundLog };
    }
    return pk;
  } catch (e) {
    return { reason: `did not start: ${e.message.split('\n')[0]}`, outboundLog };
  }
}
const portkeyHeaders = (upstream) => ({ 'x-portkey-provider': 'ollama', 'x-portkey-custom-host': upstream });

/** What Portkey tried to reach past loopback (loopback-only.js refused it), as one line. */
function portkeyOutbound(pk) {
  if (!pk?.outboundLog) return null;
  const lines = fs.existsSync(pk.outboundLog) ? fs.readFileSync(pk.outboundLog, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];
  fs.rmSync(path.dirname(pk.outboundLog), { recursive: true, force: true });
  if (!lines.length) return 'Portkey made no connection past loopback (loopback-only.js would have refused and reported it)';
  const hosts = [...new Set(lines.map((l) => `${l.host}:${l.port}`))];
  return `Portkey tried to reach ${hosts.join(', ')} (${lines.length} attempt(s)); loopback-only.js refused them`;
}

/** The htpasswd hash a running nginx checks: its -p prefix from /proc, then auth/htpasswd there. */
function hashKindOfNginx(pid) {
  try {
    // nginx rewrites its process title: the arguments are one string with spaces
    const prefix = /(?:^|[\s\0])-p[\s\0]+([^\s\0]+)/.exec(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8'))[1];
    return hashLabel(fs.readFileSync(path.join(prefix, 'auth/htpasswd'), 'utf8'));
  } catch {
    return 'unknown';
  }
}
const hashLabel = (htpasswd) => {
  const h = htpasswd.split('\n')[0].split(':')[1] ?? '';
  return h.startsWith('$6$') ? 'SHA-512 crypt' : h.startsWith('{SSHA}') ? '{SSHA}' : h.slice(0, 6);
};

// ---------------------------------------------------------------------------------------------------
// targets: the same request straight to the upstream, to the API, and through nginx

function targets(env) {
  const agent = () => new http.Agent({ keepAlive: true, maxSockets: 64 });
  // body(model, tokens): the non-streamed generation each surface takes
  const native = { gen: '/api/generate', chat: '/api/chat', embed: '/api/embed', body: (m, n) => genBody(m, n, false) };
  const gateway = { gen: '/v1/generate', chat: '/v1/chat', embed: '/v1/embeddings', body: (m, n) => genBody(m, n, false), headers: AUTH };
  const t = [
    { name: 'direct', base: env.upstream, ...native, agent: agent(), pids: [] },
    // the floor: Node's HTTP stack and nothing else (also in the streaming sections, as a reference)
    { name: 'bare proxy', base: env.bare.url, ...native, agent: agent(), pids: [env.bare.pid], reference: true },
  ];
  if (env.portkey.url) {
    // Portkey speaks OpenAI; its Ollama provider calls the upstream's /v1/chat/completions, so its
    // added time is counted over a direct call of that same endpoint. Latency section only.
    const openai = { gen: '/v1/chat/completions', body: openaiBody, extra: true };
    t.push({ name: 'direct (OpenAI)', short: 'direct-openai', base: env.upstream, ...openai, agent: agent(), pids: [], baselineOnly: true });
    t.push({ name: 'Portkey', short: 'portkey', base: env.portkey.url, ...openai, headers: env.portkey.headers, agent: agent(), pids: [env.portkey.pid], baseline: 'direct-openai', reference: true });
  }
  t.push({ name: 'api', base: env.api, ...gateway, agent: agent(), pids: [env.apiPid] });
  t.push({ name: 'api, 2 upstreams', short: 'api-pool', base: env.pooled.url, ...gateway, agent: agent(), pids: [env.pooled.pid], extra: true });
  t.push({ name: 'api, 1 upstream (its twin)', short: 'api-twin', base: env.single.url, ...gateway, agent: agent(), pids: [env.single.pid], extra: true });
  t.push({ name: 'nginx+api', base: env.nginx, ...gateway, agent: agent(), pids: [env.apiPid, ...childrenOf(env.nginxPid)] });
  if (env.alt) t.push({ name: `nginx+api (${env.alt.hash} htpasswd)`, short: 'nginx-alt', base: env.alt.url, ...gateway, agent: agent(), pids: [env.apiPid, ...childrenOf(env.alt.child.pid)], extra: true });
  return t;
}

const genBody = (model, numPredict, stream, prompt = 'Say something short.') => ({ model, prompt, stream, options: { num_predict: numPredict } });
const openaiBody = (model, maxTokens) => ({ model, messages: [{ role: 'user', content: 'Say something short.' }], max_tokens: maxTokens, stream: false });

async function expectOk(r, what) {
  if (r.status !== 200) throw new Error(`${what}: HTTP ${r.status} ${String(r.body ?? '').slice(0, 200)}`);
  return r;
}

// ---------------------------------------------------------------------------------------------------
// 1. added latency, non-streamed

/** CPU time (ms) a process and its threads have used: utime + stime from /proc/<pid>/stat. */
function cpuMs(pid) {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const v = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return ((Number(v[11]) + Number(v[12])) * 1000) / CLK_TCK;
  } catch {
    return NaN;
  }
}
const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();
/** nginx's worker processes (children of the master). */
function childrenOf(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}
const sumCpu = (pids) => pids.reduce((a, p) => a + cpuMs(p), 0);

async function sectionLatency(T, env) {
  // c=1: the upstream answers at once (bench:fast, 1 token): pure overhead, one request at a time.
  // c=8: eight callers, each answer takes the upstream 40 ms (2 tokens at 50 tok/s), so eight
  //      generations are in flight at once, as with a GPU; an instant upstream at c=8 would only
  //      measure how many requests a second the machine can push (that number is printed too).
  //      The callers start 5 ms apart: with equal answer times, callers started together would
  //      keep arriving in lockstep, eight at once, which real callers do not.
  const plan = {
    1: { rounds: QUICK ? 2 : 5, perRound: QUICK ? 60 : 200, model: FAST_MODEL, tokens: 1, upstream: 'answers at once' },
    8: { rounds: QUICK ? 2 : 4, perRound: QUICK ? 80 : 200, model: GEN_MODEL, tokens: 2, upstream: `2 tokens, ${2 * TOKEN_MS} ms`, staggerMs: (2 * TOKEN_MS) / 8 },
  };
  const one = (t, p) => L.request(t.base + t.gen, { method: 'POST', headers: t.headers ?? {}, body: t.body(p.model, p.tokens), agent: t.agent }).then((r) => expectOk(r, `${t.name} ${t.gen}`));
  // warm-up: connections, JIT, the API's model catalog
  for (const t of T) await L.pool(QUICK ? 40 : 100, 8, () => one(t, plan[1]));

  const res = {};
  const cpu = {};
  for (const c of [1, 8]) {
    const { rounds, perRound, staggerMs = 0 } = plan[c];
    for (const t of T) {
      res[`${t.name}|${c}`] = [];
      cpu[`${t.name}|${c}`] = { api: 0, gateway: 0, n: 0 };
    }
    for (let r = 0; r < rounds; r++) {
      // round-robin batches, the order rotated each round, so that drift in the machine's load
      // hits every target alike
      const order = T.map((_, i) => T[(i + r) % T.length]);
      for (const t of order) {
        const a0 = cpuMs(env.apiPid);
        const g0 = sumCpu(t.pids);
        const ms = await L.pool(perRound, c, () => one(t, plan[c]).then((x) => x.ms), staggerMs);
        const k = `${t.name}|${c}`;
        cpu[k].api += cpuMs(env.apiPid) - a0;
        cpu[k].gateway += sumCpu(t.pids) - g0;
        cpu[k].n += perRound;
        res[k].push(...ms);
      }
    }
  }
  // how many requests a second one API process manages on this machine (instant upstream, c=8)
  const api = T.find((t) => t.name === 'api');
  const tp0 = L.now();
  const tpN = QUICK ? 300 : 1000;
  await L.pool(tpN, 8, () => one(api, plan[1]));
  const apiRps = tpN / ((L.now() - tp0) / 1000);

  const rows = [];
  for (const c of [1, 8]) {
    for (const t of T) {
      const k = `${t.name}|${c}`;
      const v = res[k];
      const base = res[`${T.find((x) => (x.short ?? x.name) === (t.baseline ?? 'direct')).name}|${c}`];
      const isBase = t.name === 'direct' || t.baselineOnly;
      const row = {
        target: t.name,
        key: t.short ?? t.name,
        baseline: isBase ? null : t.baseline ?? 'direct',
        concurrency: c,
        upstream: plan[c].upstream,
        n: v.length,
        p50: L.percentile(v, 50),
        p95: L.percentile(v, 95),
        p99: L.percentile(v, 99),
        apiCpuMsPerReq: t.pids.includes(env.apiPid) ? cpu[k].api / cpu[k].n : null,
        // every process of the gateway: the API (+ nginx's workers), the bare proxy, Portkey
        gatewayCpuMsPerReq: isBase ? null : cpu[k].gateway / cpu[k].n,
      };
      row.nginxCpuMsPerReq = t.name.startsWith('nginx') ? row.gatewayCpuMsPerReq - row.apiCpuMsPerReq : null;
      row.addedP50 = isBase ? 0 : row.p50 - L.percentile(base, 50);
      row.addedP95 = isBase ? 0 : row.p95 - L.percentile(base, 95);
      row.addedP99 = isBase ? 0 : row.p99 - L.percentile(base, 99);
      rows.push(row);
    }
  }
  latencyChecks(rows, env);
  out.sections.latency = { request: 'POST generate (Portkey: chat/completions), stream:false', plan, clkTck: CLK_TCK, apiRequestsPerSecondC8Instant: apiRps, rows };
  printLatency(rows, apiRps);
}

/** The issue's latency and CPU goals, from the rows of sectionLatency. */
function latencyChecks(rows, env) {
  const row = (key, c) => rows.find((r) => r.key === key && r.concurrency === c);
  for (const c of [1, 8]) {
    const a = row('api', c);
    const b = row('bare proxy', c);
    const vsBare = check(`1.api.vs.bare.c${c}`, `API added p50 ≤ 1.3 × the bare proxy's, c=${c}`, a.addedP50, `≤ ${L.f2(1.3 * b.addedP50)} ms`, a.addedP50 <= 1.3 * b.addedP50, 'ms', `API +${L.f2(a.addedP50)} ms, bare proxy +${L.f2(b.addedP50)} ms (× 1.3 = ${L.f2(1.3 * b.addedP50)})`);
    const pk = row('portkey', c);
    const vsPortkey = !pk || check(`1.api.vs.portkey.c${c}`, `API added p50 ≤ 0.5 × Portkey's, c=${c}`, a.addedP50, `≤ ${L.f2(0.5 * pk.addedP50)} ms`, a.addedP50 <= 0.5 * pk.addedP50, 'ms', `API +${L.f2(a.addedP50)} ms, Portkey +${L.f2(pk.addedP50)} ms (× 0.5 = ${L.f2(0.5 * pk.addedP50)})`);
    a.pass = vsBare && vsPortkey;
    const n = row('nginx+api', c);
    n.pass = check(`1.nginx.c${c}.p99`, `nginx+API added latency p99, c=${c}`, n.addedP99, '<= 10 ms', n.addedP99 <= 10);
  }
  // issue 15: routing over two upstreams against the one implicit upstream, same run
  for (const c of [1, 8]) {
    const single = row('api-twin', c);
    const pool = row('api-pool', c);
    const delta = pool.addedP50 - single.addedP50;
    pool.pass = check(`1.routing.c${c}`, `routing over 2 upstreams adds ≤ 0.1 ms p50 over 1 upstream, c=${c}`, delta, '<= 0.1 ms', delta <= 0.1, 'ms', `2 upstreams +${L.f2(pool.addedP50)} ms, 1 upstream +${L.f2(single.addedP50)} ms: ${delta >= 0 ? '+' : ''}${L.f2(delta)} ms`);
  }
  const n1 = row('nginx+api', 1);
  n1.pass = check('1.nginx.c1', 'nginx+API added p50 ≤ 1 ms, c=1', n1.addedP50, '<= 1 ms', n1.addedP50 <= 1) && n1.pass;
  // CPU: every non-streamed generation the API served in this section, both concurrencies
  const a1 = row('api', 1);
  const a8 = row('api', 8);
  const perReq = (a1.apiCpuMsPerReq * a1.n + a8.apiCpuMsPerReq * a8.n) / (a1.n + a8.n);
  const level = env.apiEnv.LOG_LEVEL;
  check('1.cpu.api', `API CPU per non-streamed generation ≤ 0.5 ms (LOG_LEVEL=${level})`, perReq, '<= 0.5 ms', perReq <= 0.5 && level === 'info', 'ms', `${L.f3(perReq)} ms (c=1 ${L.f3(a1.apiCpuMsPerReq)}, c=8 ${L.f3(a8.apiCpuMsPerReq)}; /proc/<pid>/stat over ${a1.n + a8.n} requests)${level === 'info' ? '' : ' — not at LOG_LEVEL=info: not counted'}`);
}

function printLatency(rows, apiRps) {
  const pf = (r) => (r.pass === undefined ? '' : r.pass ? 'PASS' : 'FAIL');
  const cell = (x, r) => (r.baseline === null ? '' : L.f2(x));
  log('\n## 1. Added latency, non-streamed generation (added = target − its direct call, same run, round-robin batches)');
  log('   c=1: the upstream answers at once · c=8: eight in flight (callers started 5 ms apart), each answer takes the upstream 40 ms');
  log('   Portkey is measured over a direct call of the upstream\'s /v1/chat/completions (what its Ollama provider calls); the others over /api/generate');
  log('   CPU = ms of CPU per request of the gateway\'s processes (/proc/<pid>/stat): API, API + nginx workers, the bare proxy, Portkey');
  log(
    L.table(
      ['target', 'conc', 'n', 'p50 ms', 'p95 ms', 'p99 ms', '+p50 ms', '+p95 ms', '+p99 ms', 'CPU ms/req', 'of it API', 'result'],
      rows.map((r) => [r.target, r.concurrency, r.n, L.f2(r.p50), L.f2(r.p95), L.f2(r.p99), cell(r.addedP50, r), cell(r.addedP95, r), cell(r.addedP99, r), r.gatewayCpuMsPerReq === null ? '' : L.f3(r.gatewayCpuMsPerReq), r.apiCpuMsPerReq === null ? '' : L.f3(r.apiCpuMsPerReq), pf(r)]),
    ),
  );
  log(`one API process, instant upstream, c=8: ${apiRps.toFixed(0)} requests/s on this machine`);
  log('\nSide by side: what each gateway adds over calling the upstream directly (ms)');
  log(L.table(['gateway', 'c=1 +p50', 'c=1 +p95', 'c=8 +p50', 'c=8 +p95', 'CPU ms/req (c=1)'], sideBySide(rows)));
}

/** One line per gateway: added p50/p95 at c=1 and c=8, and its CPU per request. */
function sideBySide(rows) {
  const names = [...new Set(rows.filter((r) => r.baseline !== null).map((r) => r.target))];
  return names.map((name) => {
    const [r1, r8] = [1, 8].map((c) => rows.find((r) => r.target === name && r.concurrency === c));
    return [name, L.f2(r1.addedP50), L.f2(r1.addedP95), L.f2(r8.addedP50), L.f2(r8.addedP95), L.f3(r1.gatewayCpuMsPerReq)];
  });
}

// ---------------------------------------------------------------------------------------------------
// 2 + 3. streaming: time to first token, chunk spacing, tokens/s

function gapsOf(times) {
  const g = [];
  for (let i = 1; i < times.length; i++) g.push(times[i] - times[i - 1]);
  return g;
}

async function sectionStreaming(T) {
  const main = T.filter((t) => !t.extra);
  const stream = (t, n, prompt) => L.streamRequest(t.base + t.gen, { headers: AUTH, body: genBody(GEN_MODEL, n, true, prompt), agent: t.agent, timeoutMs: 30_000 });
  const okStream = async (t, n) => {
    const r = await stream(t, n);
    if (r.status !== 200 || r.tokenTimes.length !== n || !r.done) throw new Error(`${t.name}: stream broken (HTTP ${r.status}, ${r.tokenTimes.length}/${n} tokens, done ${Boolean(r.done)})`);
    return r;
  };

  // 2a. time to first token: short streams, one at a time, targets interleaved
  const samples = QUICK ? 10 : 30;
  const ttft = Object.fromEntries(main.map((t) => [t.name, []]));
  for (const t of main) await okStream(t, 2);
  for (let i = 0; i < samples; i++) for (const t of main) ttft[t.name].push((await okStream(t, 3)).tokenTimes[0]);
  const d50 = L.percentile(ttft.direct, 50);
  const ttftRows = main.map((t) => {
    const p50 = L.percentile(ttft[t.name], 50);
    const row = { target: t.name, n: samples, p50, p99: L.percentile(ttft[t.name], 99), addedP50: p50 - d50 };
    if (t.name !== 'direct' && !t.reference) row.pass = check(`2.ttft.${t.name}`, `${t.name} added time to first token p50 ≤ 2 ms`, row.addedP50, '<= 2 ms', row.addedP50 <= 2, 'ms', `+${L.f2(row.addedP50)} ms p50 (direct ${L.f2(d50)} ms, ${samples} streams)`);
    return row;
  });

  // 3. tokens/s with 1 and 4 concurrent streams, and every gap between chunks (2b)
  const N = QUICK ? 50 : 150;
  const tps = [];
  const gaps = Object.fromEntries(main.map((t) => [t.name, []]));
  for (const c of [1, 4]) {
    for (const t of main) {
      const t0 = L.now();
      const rs = await Promise.all(Array.from({ length: c }, () => okStream(t, N)));
      const wall = (L.now() - t0) / 1000;
      // decode rate as the client sees it: tokens after the first over the time they took to arrive
      const perStream = rs.map((r) => (r.tokenTimes.length - 1) / ((r.tokenTimes.at(-1) - r.tokenTimes[0]) / 1000));
      const aggregate = (c * N) / wall;
      for (const r of rs) gaps[t.name].push(...gapsOf(r.tokenTimes));
      tps.push({ target: t.name, streams: c, tokens: N, perStream: L.mean(perStream), aggregate, wallS: wall });
    }
  }
  for (const row of tps) {
    const d = tps.find((x) => x.target === 'direct' && x.streams === row.streams);
    row.ratio = row.perStream / d.perStream;
    row.aggregateRatio = row.aggregate / d.aggregate;
    const checked = row.target !== 'direct' && !main.find((t) => t.name === row.target).reference;
    if (checked) row.pass = check(`3.tps.${row.target}.s${row.streams}`, `${row.target} tokens/s over direct ≥ 0.995, ${row.streams} stream(s)`, row.ratio, '>= 0.995', row.ratio >= 0.995, 'ratio', `${L.f3(row.ratio)} × direct (${L.f2(row.perStream)} vs ${L.f2(d.perStream)} tok/s per stream)`);
  }

  // 2b. no buffering: the gaps between token chunks through the gateway have the upstream's shape
  const dg = gaps.direct;
  const bunched = (g) => g.filter((x) => x < TOKEN_MS / 4).length / g.length;
  const gapRows = main.map((t) => {
    const g = gaps[t.name];
    const row = {
      target: t.name,
      gaps: g.length,
      p1: L.percentile(g, 1),
      p10: L.percentile(g, 10),
      p50: L.percentile(g, 50),
      p90: L.percentile(g, 90),
      p99: L.percentile(g, 99),
      bunched: bunched(g),
    };
    if (t.name !== 'direct' && !t.reference) {
      // Buffering (even of 2 lines) shows as half or more of the gaps near 0 (lines arriving
      // together) and p10 collapsing; a busy machine shows as a few late lines caught up with.
      const ok = Math.abs(row.p50 - L.percentile(dg, 50)) <= 1 && row.p10 >= TOKEN_MS * 0.75 && row.bunched <= Math.max(0.05, bunched(dg) + 0.03);
      const d = (p) => L.f1(L.percentile(dg, p));
      row.pass = check(`2.gaps.${t.name}`, `${t.name} chunk gaps as direct's: p50 within 1 ms, p10 ≥ ${TOKEN_MS * 0.75} ms, ≤ 5 % of gaps < ${TOKEN_MS / 4} ms`, row.p50, `p50 ${L.f2(L.percentile(dg, 50))} ± 1`, ok, 'ms', `p10/p50/p90 ${L.f1(row.p10)}/${L.f1(row.p50)}/${L.f1(row.p90)} ms vs direct ${d(10)}/${d(50)}/${d(90)} ms, ${(row.bunched * 100).toFixed(1)} % bunched`);
    }
    return row;
  });

  out.sections.ttft = { request: `POST generate, stream:true, ${GEN_MODEL} (first token after ${TOKEN_MS} ms)`, rows: ttftRows };
  out.sections.gaps = { upstreamGapMs: TOKEN_MS, rows: gapRows };
  out.sections.tokensPerSecond = { upstreamTokS: 1000 / TOKEN_MS, tokensPerStream: N, rows: tps };

  log(`\n## 2. Streaming: time to first token (upstream: first token after ${TOKEN_MS} ms)`);
  log(L.table(['target', 'n', 'p50 ms', 'p99 ms', '+p50 ms', 'goal', 'result'], ttftRows.map((r) => [r.target, r.n, L.f2(r.p50), L.f2(r.p99), r.target === 'direct' ? '' : L.f2(r.addedP50), r.target === 'direct' || r.pass === undefined ? '' : '+p50 ≤ 2', r.pass === undefined ? '' : r.pass ? 'PASS' : 'FAIL'])));
  log(`\n## 2. Streaming: gaps between token chunks (upstream sends one every ${TOKEN_MS} ms; buffering would show as most gaps near 0)`);
  log(L.table(['target', 'gaps', 'p1', 'p10', 'p50', 'p90', 'p99', `< ${TOKEN_MS / 4} ms`, 'result'], gapRows.map((r) => [r.target, r.gaps, L.f2(r.p1), L.f2(r.p10), L.f2(r.p50), L.f2(r.p90), L.f2(r.p99), `${(r.bunched * 100).toFixed(1)} %`, r.pass === undefined ? '' : r.pass ? 'PASS' : 'FAIL'])));
  log(`\n## 3. Tokens per second (upstream ${1000 / TOKEN_MS} tok/s, ${N} tokens a stream; ratio = target / direct)`);
  log(L.table(['target', 'streams', 'tok/s per stream', 'ratio', 'aggregate tok/s', 'agg. ratio', 'goal', 'result'], tps.map((r) => [r.target, r.streams, L.f2(r.perStream), L.f3(r.ratio), L.f1(r.aggregate), L.f3(r.aggregateRatio), r.pass === undefined ? '' : '≥ 0.995', r.pass === undefined ? '' : r.pass ? 'PASS' : 'FAIL'])));
}

// ---------------------------------------------------------------------------------------------------
// 4. the API's memory

/** Asks the API's heap probe (heap-probe.js) for a full GC and its memoryUsage(); null when absent. */
async function heapAfterGc(env) {
  if (!env.heapProbeOut) return null;
  const before = fs.existsSync(env.heapProbeOut) ? fs.readFileSync(env.heapProbeOut, 'utf8').split('\n').filter(Boolean).length : 0;
  try {
    process.kill(env.apiPid, 'SIGUSR2');
  } catch {
    return null;
  }
  for (let i = 0; i < 100; i++) {
    await new Promise((r) => setTimeout(r, 20));
    const lines = fs.existsSync(env.heapProbeOut) ? fs.readFileSync(env.heapProbeOut, 'utf8').split('\n').filter(Boolean) : [];
    if (lines.length > before) return JSON.parse(lines.at(-1));
  }
  return null;
}

const CALLERS = 16;
const IDLE_S = QUICK ? 5 : 10;

/** Reads a process's RSS every `ms` until stop(), which returns the highest reading (MB). */
function rssSampler(pid, ms = 50) {
  let max = L.rssMb(pid);
  const timer = setInterval(() => {
    max = Math.max(max, L.rssMb(pid));
  }, ms);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(max, L.rssMb(pid));
    },
  };
}

async function sectionMemory(env, T, idleAtStart, idleHeap) {
  const api = T.find((t) => t.name === 'api');
  const total = QUICK ? 2000 : 10_000;
  const every = total / 20;
  const samples = [{ requests: 0, rssMb: L.rssMb(env.apiPid), label: 'before' }];
  const heap = [];
  const probes = [];
  const kinds = { generate: 0, embeddings: 0, stream: 0, models: 0 };
  let done = 0;
  const one = async (i) => {
    const k = i % 10;
    let r;
    if (k < 4) {
      kinds.generate++;
      r = await L.request(api.base + '/v1/generate', { method: 'POST', headers: AUTH, agent: api.agent, body: genBody(FAST_MODEL, 8, false, `Request ${i}: say something.`) });
    } else if (k < 7) {
      kinds.embeddings++;
      r = await L.request(api.base + '/v1/embeddings', { method: 'POST', headers: AUTH, agent: api.agent, body: { input: [`text ${i % 50}`, `more text ${i}`] } });
    } else if (k < 9) {
      kinds.stream++;
      r = await L.streamRequest(api.base + '/v1/chat', { headers: AUTH, agent: api.agent, body: { model: FAST_MODEL, messages: [{ role: 'user', content: `Hi ${i}` }], stream: true, options: { num_predict: 16 } } });
      r.body = '';
    } else {
      kinds.models++;
      r = await L.request(api.base + '/v1/models', { headers: AUTH, agent: api.agent });
    }
    if (r.status !== 200) throw new Error(`memory run: request ${i} got HTTP ${r.status} ${String(r.body).slice(0, 200)}`);
    done++;
    if (done % every === 0) samples.push({ requests: done, rssMb: L.rssMb(env.apiPid) });
    if (done % (total / 4) === 0) {
      const at = done;
      probes.push(heapAfterGc(env).then((h) => h && heap.push({ requests: at, heapUsedMb: h.heapUsed / 2 ** 20, heapTotalMb: h.heapTotal / 2 ** 20, externalMb: h.external / 2 ** 20, rssMb: h.rss / 2 ** 20 })));
    }
  };
  const t0 = L.now();
  const sampler = rssSampler(env.apiPid);
  await L.pool(total, CALLERS, one);
  const seconds = (L.now() - t0) / 1000;
  await Promise.all(probes);
  const sampledPeak = sampler.stop();
  // idle: what the process keeps once the traffic has stopped (V8 gives heap back only after a
  // few seconds without allocation), one reading a second
  const idleSeries = [];
  for (let i = 0; i < IDLE_S; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    idleSeries.push(L.rssMb(env.apiPid));
  }
  const after = idleSeries.at(-1);
  samples.push({ requests: total, rssMb: after, label: `idle ${IDLE_S} s after` });
  heap.sort((x, y) => x.requests - y.requests);

  const half = samples.filter((s) => s.requests >= total / 2 && !s.label);
  const rssSlopePer1k = L.slope(half.map((s) => s.requests), half.map((s) => s.rssMb)) * 1000;
  const heapSlopePer1k = heap.length >= 3 ? L.slope(heap.map((h) => h.requests), heap.map((h) => h.heapUsedMb)) * 1000 : NaN;
  const peak = Math.max(sampledPeak, ...samples.map((s) => s.rssMb));
  check('4.rss.peak', `API RSS peak over ${total.toLocaleString('en')} mixed requests at ${CALLERS} callers ≤ 100 MB`, peak, '<= 100 MB', peak <= 100, 'MB', `${L.f1(peak)} MB (idle at start ${L.f1(idleAtStart)} MB; read every 50 ms)`);
  check('4.rss.idle', `API RSS idle ${IDLE_S} s after them ≤ 80 MB`, after, '<= 80 MB', after <= 80, 'MB', `${L.f1(after)} MB (1 s … ${IDLE_S} s after: ${idleSeries.map((x) => L.f1(x)).join(' ')})`);
  if (QUICK) {
    out.notes.push('BENCH_QUICK: the memory run is too short for a trend (the cache is still filling to its 500 entries), not checked');
  } else if (heap.length >= 3) {
    check('4.heap.trend', 'API live heap (after full GC) trend, 2,500 → 10,000 requests', heapSlopePer1k, '<= 0.2 MB per 1,000 requests', heapSlopePer1k <= 0.2, 'MB/1k');
  } else {
    check('4.rss.trend', 'API RSS trend over the second half of the run', rssSlopePer1k, '<= 0.5 MB per 1,000 requests', rssSlopePer1k <= 0.5, 'MB/1k');
  }
  out.sections.memory = {
    pid: env.apiPid,
    idleAtStartMb: idleAtStart,
    idleHeapUsedMb: idleHeap ? idleHeap.heapUsed / 2 ** 20 : null,
    requests: total,
    concurrency: CALLERS,
    idleSeriesMb: idleSeries,
    mix: kinds,
    seconds,
    samples,
    heapAfterGc: heap,
    peakMb: peak,
    afterIdleMb: after,
    rssSlopeMbPer1kSecondHalf: rssSlopePer1k,
    heapSlopeMbPer1k: heapSlopePer1k,
  };

  log(`\n## 4. API memory (VmRSS of pid ${env.apiPid}; ${total} requests at ${CALLERS} callers in ${seconds.toFixed(1)} s: ${kinds.generate} generate, ${kinds.embeddings} embeddings (cache fills to its bound), ${kinds.stream} streamed chat, ${kinds.models} models)`);
  log(`RSS: idle at start ${L.f1(idleAtStart)} MB · before this run ${L.f1(samples[0].rssMb)} MB · peak ${L.f1(peak)} MB · idle ${IDLE_S} s after ${L.f1(after)} MB · trend over the 2nd half ${rssSlopePer1k >= 0 ? '+' : ''}${L.f2(rssSlopePer1k)} MB per 1,000 requests`);
  log('RSS samples (requests: MB): ' + samples.filter((s) => !s.label).map((s) => `${s.requests}: ${L.f1(s.rssMb)}`).join(' · '));
  if (heap.length) {
    log(`live heap after a full GC (heap-probe.js): idle ${idleHeap ? L.f1(idleHeap.heapUsed / 2 ** 20) : '-'} MB · ` + heap.map((h) => `${h.requests}: ${L.f1(h.heapUsedMb)} MB (heap total ${L.f1(h.heapTotalMb)})`).join(' · ') + ` · trend ${heapSlopePer1k >= 0 ? '+' : ''}${L.f3(heapSlopePer1k)} MB per 1,000 requests`);
  }
  log(`goal ≤ 100 MB RSS at peak: ${peak <= 100 ? 'PASS' : 'FAIL'} · ≤ 80 MB idle after: ${after <= 80 ? 'PASS' : 'FAIL'} · no growth trend (live heap): ${heap.length >= 3 ? (heapSlopePer1k <= 0.2 ? 'PASS' : 'FAIL') : 'no heap probe'}`);
}

// ---------------------------------------------------------------------------------------------------
// 4b. a burst of big image requests: eight at once, each body ≈ 25 MB of base64

const IMAGE_BODY_BYTES = 25_000_000;
const IMAGE_BURST = 8;

/**
 * Eight POST /v1/generate with one ≈ 25 MB base64 image each, all at once (the API's BODY_LIMIT is
 * 25mb = 26,214,400 bytes, so they are under it and go all the way to the upstream). Clean = every
 * one ends in an answer (200) or a refusal the caller can act on (413 too large, 503 busy), none
 * lost, reset or hung; then the API's RSS has to come back under 100 MB.
 */
async function sectionImages(env, T) {
  const api = T.find((t) => t.name === 'api');
  const body = imageBody();
  const before = L.rssMb(env.apiPid);
  const sampler = rssSampler(env.apiPid);
  const t0 = L.now();
  const results = await Promise.all(
    Array.from({ length: IMAGE_BURST }, () =>
      L.request(api.base + '/v1/generate', { method: 'POST', headers: AUTH, agent: api.agent, body, timeoutMs: 120_000 }).then(
        (r) => ({ status: r.status, ms: r.ms, code: safeCode(r.body) }),
        (e) => ({ status: e.code === 'HUNG' ? 'hung' : 'lost', ms: NaN, error: e.message }),
      ),
    ),
  );
  const seconds = (L.now() - t0) / 1000;
  const peak = sampler.stop();
  // back under 100 MB: read every 250 ms, for up to 15 s
  const settle0 = L.now();
  let after = L.rssMb(env.apiPid);
  while (after >= 100 && L.now() - settle0 < 15_000) {
    await new Promise((r) => setTimeout(r, 250));
    after = L.rssMb(env.apiPid);
  }
  const settleS = (L.now() - settle0) / 1000;
  // not part of the goal, a clue for whoever fixes it: does a full GC give the memory back (V8
  // holding dead 25 MB strings until its next collection) or not (the allocator keeping it)?
  let afterGc = null;
  if (after >= 100) {
    const h = await heapAfterGc(env);
    if (h) afterGc = { rssMb: L.rssMb(env.apiPid), heapUsedMb: h.heapUsed / 2 ** 20, heapTotalMb: h.heapTotal / 2 ** 20, externalMb: h.external / 2 ** 20, arrayBuffersMb: h.arrayBuffers / 2 ** 20 };
  }
  const byStatus = {};
  for (const r of results) byStatus[r.status] = (byStatus[r.status] ?? 0) + 1;
  const clean = results.every((r) => r.status === 200 || r.status === 413 || r.status === 503);
  const statuses = Object.entries(byStatus).map(([k, v]) => `${v}× ${k}`).join(', ');
  check('4.images', `a burst of ${IMAGE_BURST} ≈ 25 MB image requests: all clean (200/413/503), RSS back < 100 MB`, after, '< 100 MB', clean && after < 100, 'MB', `${statuses}; RSS ${L.f1(before)} → peak ${L.f1(peak)} → ${L.f1(after)} MB ${after < 100 ? `${L.f1(settleS)} s after` : 'still after 15 s'}`);
  if (!clean) out.notes.push(`image burst: ${JSON.stringify(results.filter((r) => !(r.status === 200 || r.status === 413 || r.status === 503)).slice(0, 3))}`);
  out.sections.images = { requests: IMAGE_BURST, bodyBytes: Buffer.byteLength(body), byStatus, seconds, rssBeforeMb: before, rssPeakMb: peak, rssAfterMb: after, settleS, afterGc, results };
  log(`\n## 4b. Image burst: ${IMAGE_BURST} × POST /v1/generate at once, one base64 image each (body ${(Buffer.byteLength(body) / 1e6).toFixed(1)} MB; BODY_LIMIT ${env.apiEnv.BODY_LIMIT ?? '25mb'})`);
  log(`answers: ${statuses} in ${seconds.toFixed(1)} s (slowest ${L.f1(Math.max(...results.map((r) => r.ms)))} ms) · API RSS ${L.f1(before)} MB before → peak ${L.f1(peak)} MB → ${L.f1(after)} MB ${after < 100 ? `after ${L.f1(settleS)} s` : 'still after 15 s'}`);
  if (afterGc) log(`then a forced full GC (heap-probe.js, diagnostic only): RSS ${L.f1(afterGc.rssMb)} MB · V8 heap used ${L.f1(afterGc.heapUsedMb)} of ${L.f1(afterGc.heapTotalMb)} MB · external ${L.f1(afterGc.externalMb)} MB (array buffers ${L.f1(afterGc.arrayBuffersMb)} MB)`);
  log(`goal all clean and RSS back < 100 MB: ${clean && after < 100 ? 'PASS' : 'FAIL'}`);
}

/** One generate body with a ≈ 25 MB (IMAGE_BODY_BYTES) base64 image: random bytes, so nothing compresses it. */
function imageBody() {
  const head = { model: FAST_MODEL, prompt: 'What is in this picture?', stream: false, options: { num_predict: 1 } };
  const overhead = JSON.stringify({ ...head, images: [''] }).length;
  const b64 = crypto.randomBytes(Math.floor(((IMAGE_BODY_BYTES - overhead) * 3) / 4)).toString('base64');
  return JSON.stringify({ ...head, images: [b64] });
}

// ---------------------------------------------------------------------------------------------------
// 5. the queue under overload: a second API with MAX_CONCURRENT=1, MAX_QUEUE=16

async function sectionOverload(env) {
  const N = 50;
  const WARMUP = QUICK ? 50 : 300;
  const api = await L.startProcess('API (MAX_CONCURRENT=1, MAX_QUEUE=16)', process.execPath, ['-e', `
    const http = require('http');
    require(${JSON.stringify(path.join(ROOT, 'services/api/dist/main.js'))});
    // tell the benchmark once /health answers
    const tick = () => http.get('http://127.0.0.1:${env.overloadPort}/health', (r) => { r.resume(); if (r.statusCode === 200) console.log('READY=1'); else setTimeout(tick, 100); }).on('error', () => setTimeout(tick, 100));
    setTimeout(tick, 100);
  `], {
    env: { ...env.apiEnv, MAX_CONCURRENT: '1', MAX_QUEUE: '16', PORT: String(env.overloadPort), HOST: '127.0.0.1', TRUST_PROXY: '1' },
    keys: ['READY'],
    timeoutMs: 30_000,
  });
  children.push(api.child);
  const base = `http://127.0.0.1:${env.overloadPort}`;
  const agent = new http.Agent({ keepAlive: true, maxSockets: N });
  try {
    // open the 50 connections first: the test is 50 simultaneous requests, not 50 connects
    await Promise.all(Array.from({ length: N }, () => L.request(`${base}/health`, { agent })));
    // Both routes equally warm: a fresh process runs its first requests in V8's interpreter, and
    // /health had 50 requests (the connections above) where /v1/generate had none. Cold, the 503s
    // of the burst came 65-94 ms after the /health burst's; the goal is about admission, not JIT.
    for (let i = 0; i < WARMUP; i++) {
      await L.request(`${base}/health`, { agent }).then((r) => expectOk(r, 'warm-up /health'));
      await L.request(`${base}/v1/generate`, { method: 'POST', headers: AUTH, agent, body: genBody(FAST_MODEL, 1, false, `warm-up ${i}`) }).then((r) => expectOk(r, 'warm-up generate'));
    }
    // the yardstick: the same burst of the cheapest route (no auth, no body, no queue), which is
    // what admission before work would make a refusal cost
    const health = await Promise.all(Array.from({ length: N }, () => L.request(`${base}/health`, { agent }).then((r) => expectOk(r, 'health burst'))));
    const healthMs = health.map((r) => r.ms);
    await new Promise((r) => setTimeout(r, 200));
    const tokens = 5; // 100 ms a served request: the 17th is served at about 1.7 s
    let answered503 = 0;
    const burst = Promise.all(
      Array.from({ length: N }, (_, i) =>
        L.request(`${base}/v1/generate`, { method: 'POST', headers: AUTH, agent, timeoutMs: 20_000, body: genBody(GEN_MODEL, tokens, false, `overload ${i}`) }).then(
          (r) => {
            if (r.status === 503) answered503++;
            return { status: r.status, ms: r.ms, code: safeCode(r.body) };
          },
          (e) => ({ status: e.code === 'HUNG' ? 'hung' : 'lost', ms: NaN, error: e.message }),
        ),
      ),
    );
    // While the queue is still full (the served ones take ~1.7 s), single requests one after the
    // other: the refusal time of one request that meets a full queue, without 49 others ahead of it.
    const t0 = L.now();
    while (answered503 < N - 17 && L.now() - t0 < 1000) await new Promise((r) => setTimeout(r, 2));
    const single = [];
    const probeAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    await L.request(`${base}/health`, { agent: probeAgent });
    for (let i = 0; i < 20; i++) {
      const r = await L.request(`${base}/v1/generate`, { method: 'POST', headers: AUTH, agent: probeAgent, timeoutMs: 20_000, body: genBody(GEN_MODEL, tokens, false, `single ${i}`) }).catch((e) => ({ status: 'lost', ms: NaN, error: e.message }));
      single.push({ status: r.status, ms: r.ms, sinceBurstMs: L.now() - t0 });
    }
    probeAgent.destroy();
    const results = await burst;
    const served = results.filter((r) => r.status === 200);
    const refused = results.filter((r) => r.status === 503);
    const other = results.filter((r) => r.status !== 200 && r.status !== 503);
    const refusedMax = refused.length ? Math.max(...refused.map((r) => r.ms)) : NaN;
    const servedMax = served.length ? Math.max(...served.map((r) => r.ms)) : NaN;
    const row = {
      requests: N,
      served: served.length,
      refused503: refused.length,
      refusedCodes: [...new Set(refused.map((r) => r.code))],
      other: other.length,
      otherDetail: other.slice(0, 5),
      refusedP50: L.percentile(refused.map((r) => r.ms), 50),
      healthP50: L.percentile(healthMs, 50),
      healthMax: Math.max(...healthMs),
      refusedMax,
      servedMax,
      single: { n: single.length, refused503: single.filter((x) => x.status === 503).length, p50: L.percentile(single.map((x) => x.ms), 50), max: Math.max(...single.map((x) => x.ms)) },
    };
    if (other.length) breakBench(`overload: ${other.length} of ${N} requests neither served nor refused: ${JSON.stringify(other.slice(0, 3))}`);
    check('5.accounted', `admission: none lost — every one of the ${N} served (200) or refused (503)`, served.length + refused.length, `${N} of ${N}`, served.length + refused.length === N, 'requests', `${served.length} served, ${refused.length} refused 503, ${other.length} lost/hung/other`);
    const gap = row.refusedP50 - row.healthP50;
    check('5.admission', `admission: refusals' p50 within 10 ms of a /health burst of ${N}`, gap, '<= 10 ms', refused.length > 0 && gap <= 10, 'ms', `503 p50 ${L.f2(row.refusedP50)} ms vs /health p50 ${L.f2(row.healthP50)} ms: +${L.f2(gap)} ms (slowest 503 ${L.f2(refusedMax)} ms)`);
    check('5.refusal.single', 'overload: slowest 503 of 20 single requests meeting the full queue', row.single.max, '<= 10 ms', row.single.refused503 === single.length && row.single.max <= 10);
    check('5.served', 'overload: served = 1 running + 16 queued', served.length, '17', served.length === 17, 'requests');
    out.sections.overload = { settings: { MAX_CONCURRENT: 1, MAX_QUEUE: 16 }, warmup: { health: WARMUP, generate: WARMUP }, servedRequest: `${tokens} tokens at ${TOKEN_MS} ms`, ...row };
    log(`\n## 5. Queue under overload (${N} simultaneous POST /v1/generate on open connections, after ${WARMUP} /health and ${WARMUP} served generations; MAX_CONCURRENT=1, MAX_QUEUE=16; a served request takes ${tokens * TOKEN_MS} ms)`);
    log(
      L.table(
        ['requests', 'served 200', 'refused 503', 'lost/hung/other', '503 p50 ms', '503 max ms', '/health burst p50 ms', '/health max ms', 'last served ms', 'result'],
        [[N, row.served, row.refused503, row.other, L.f2(row.refusedP50), L.f2(row.refusedMax), L.f2(row.healthP50), L.f2(row.healthMax), L.f1(row.servedMax), row.other === 0 && row.served + row.refused503 === N && gap <= 10 ? 'PASS' : 'FAIL']],
      ),
    );
    if (row.refusedCodes.length) log(`503 codes: ${row.refusedCodes.join(', ')}`);
    log(`single requests meeting the full queue, one after the other: ${row.single.refused503}/${row.single.n} refused 503, p50 ${L.f2(row.single.p50)} ms, max ${L.f2(row.single.max)} ms (the burst's later 503s wait behind the requests read before them: one event loop)`);
  } finally {
    agent.destroy();
    await L.stopProcess(api.child);
  }
}

function safeCode(body) {
  try {
    return JSON.parse(body).error?.code ?? null;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------------
// the response cache (X-Cache: HIT|MISS), when this build has it

async function sectionCache(T) {
  const api = T.find((t) => t.name === 'api');
  const ngx = T.find((t) => t.name === 'nginx+api');
  const direct = T.find((t) => t.name === 'direct');
  const input = 'the cache benchmark: the same sentence every time';
  const probe = await L.request(api.base + '/v1/embeddings', { method: 'POST', headers: AUTH, agent: api.agent, body: { input } });
  await expectOk(probe, 'cache probe');
  const probe2 = await L.request(api.base + '/v1/embeddings', { method: 'POST', headers: AUTH, agent: api.agent, body: { input } });
  const header = probe2.headers['x-cache'];
  if (!header) {
    out.sections.cache = { skipped: 'this build has no response cache (no X-Cache header on /v1/embeddings)' };
    log('\n## Cache: skipped — this build has no response cache (no X-Cache header on /v1/embeddings)');
    return;
  }
  const n = QUICK ? 30 : 200;
  const rows = [];
  const measure = async (label, t, pathName, body, headers = {}) => {
    const ms = [];
    const seen = {};
    for (let i = 0; i < n; i++) {
      const r = await L.request(t.base + pathName, { method: 'POST', headers: { ...AUTH, ...headers }, agent: t.agent, body });
      await expectOk(r, label);
      const x = r.headers['x-cache'] ?? '-';
      seen[x] = (seen[x] ?? 0) + 1;
      ms.push(r.ms);
    }
    rows.push({ label, n, p50: L.percentile(ms, 50), p99: L.percentile(ms, 99), xCache: seen });
  };
  const eb = { model: EMBED_MODEL, input };
  await measure('embeddings, direct upstream', direct, '/api/embed', eb);
  await measure('embeddings, api, Cache-Control: no-cache', api, '/v1/embeddings', { input }, { 'cache-control': 'no-cache' });
  await measure('embeddings, api, cached', api, '/v1/embeddings', { input });
  await measure('embeddings, nginx+api, cached', ngx, '/v1/embeddings', { input });

  // a deterministic generation: 32 tokens at 50 tok/s upstream (640 ms) the first time
  const gb = { model: GEN_MODEL, prompt: 'Deterministic: count to ten.', stream: false, options: { temperature: 0, seed: 42, num_predict: 32 } };
  const first = await L.request(api.base + '/v1/generate', { method: 'POST', headers: AUTH, agent: api.agent, body: gb, timeoutMs: 20_000 });
  await expectOk(first, 'deterministic generation');
  rows.push({ label: 'generate temp 0 + seed, api, first call', n: 1, p50: first.ms, p99: first.ms, xCache: { [first.headers['x-cache'] ?? '-']: 1 } });
  const save = n;
  const m2 = async (label, t) => {
    const ms = [];
    const seen = {};
    for (let i = 0; i < Math.min(save, 100); i++) {
      const r = await L.request(t.base + '/v1/generate', { method: 'POST', headers: AUTH, agent: t.agent, body: gb });
      await expectOk(r, label);
      seen[r.headers['x-cache'] ?? '-'] = (seen[r.headers['x-cache'] ?? '-'] ?? 0) + 1;
      ms.push(r.ms);
    }
    rows.push({ label, n: ms.length, p50: L.percentile(ms, 50), p99: L.percentile(ms, 99), xCache: seen });
  };
  await m2('generate temp 0 + seed, api, cached', api);
  await m2('generate temp 0 + seed, nginx+api, cached', ngx);
  out.sections.cache = { rows };
  log('\n## Cache hits (X-Cache) vs a miss and vs the upstream');
  log(L.table(['request', 'n', 'p50 ms', 'p99 ms', 'X-Cache seen'], rows.map((r) => [r.label, r.n, L.f2(r.p50), L.f2(r.p99), Object.entries(r.xCache).map(([k, v]) => `${k}×${v}`).join(' ')])));
}

// ---------------------------------------------------------------------------------------------------
// 6. a real Ollama

async function sectionRealOllama() {
  const base = (process.env.OLLAMA_BASE_URL || '').replace(/\/+$/, '');
  if (!base) {
    out.sections.realOllama = { skipped: 'OLLAMA_BASE_URL is not set' };
    log('\n## 6. Real Ollama: skipped — set OLLAMA_BASE_URL (e.g. http://127.0.0.1:11434) to measure load time, time to first token and tokens/s per installed model');
    return;
  }
  const numCtx = Number(process.env.BENCH_NUM_CTX || 4096);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  const version = await L.request(`${base}/api/version`, { agent, timeoutMs: 5000 }).then((r) => JSON.parse(r.body).version).catch(() => null);
  if (!version) {
    breakBench(`6: no Ollama answers at ${base}`);
    return;
  }
  const tags = JSON.parse((await L.request(`${base}/api/tags`, { agent })).body).models ?? [];
  const wanted = (process.env.BENCH_MODELS || '').split(',').map((s) => s.trim()).filter(Boolean);
  const models = tags.filter((m) => !wanted.length || wanted.includes(m.name) || wanted.includes(m.name.replace(/:latest$/, '')));
  const rows = [];
  const prompts = ['Explain in three sentences why the sky is blue.', 'Write a haiku about graphics cards.'];
  for (const m of models) {
    const row = { model: m.name, parameters: m.details?.parameter_size ?? null, quantization: m.details?.quantization_level ?? null, sizeGb: m.size ? m.size / 1e9 : null };
    try {
      const show = await L.request(`${base}/api/show`, { method: 'POST', agent, body: { model: m.name } });
      const caps = show.status === 200 ? JSON.parse(show.body).capabilities ?? [] : [];
      row.kind = caps.includes('completion') || !caps.length ? 'generate' : caps.includes('embedding') ? 'embed' : caps.join(',');
      // unload, wait until /api/ps no longer lists it: the next call is a cold load
      if (row.kind === 'embed') {
        await L.request(`${base}/api/embed`, { method: 'POST', agent, body: { model: m.name, input: 'x', keep_alive: 0 }, timeoutMs: 120_000 });
      } else {
        await L.request(`${base}/api/generate`, { method: 'POST', agent, body: { model: m.name, keep_alive: 0 }, timeoutMs: 60_000 });
      }
      for (let i = 0; i < 100; i++) {
        const ps = JSON.parse((await L.request(`${base}/api/ps`, { agent })).body).models ?? [];
        if (!ps.some((p) => p.name === m.name || p.model === m.name)) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      if (row.kind === 'embed') {
        const cold = await L.request(`${base}/api/embed`, { method: 'POST', agent, body: { model: m.name, input: prompts[0] }, timeoutMs: 300_000 });
        await expectOk(cold, `${m.name} embed`);
        const warm = await L.request(`${base}/api/embed`, { method: 'POST', agent, body: { model: m.name, input: prompts[1] }, timeoutMs: 60_000 });
        const cj = JSON.parse(cold.body);
        row.loadS = (cj.load_duration ?? 0) / 1e9;
        row.coldFirstMs = cold.ms;
        row.warmFirstMs = warm.ms;
      } else {
        const gen = (prompt) =>
          L.streamRequest(`${base}/api/generate`, { agent, timeoutMs: 300_000, body: { model: m.name, prompt, stream: true, options: { num_predict: 128, temperature: 0, seed: 42, num_ctx: numCtx } } });
        const cold = await gen(prompts[0]);
        if (cold.status !== 200 || !cold.done) throw new Error(`HTTP ${cold.status}`);
        const warm = await gen(prompts[1]);
        if (warm.status !== 200 || !warm.done) throw new Error(`HTTP ${warm.status}`);
        row.loadS = (cold.done.load_duration ?? 0) / 1e9;
        row.coldFirstMs = cold.tokenTimes[0];
        row.warmFirstMs = warm.tokenTimes[0];
        const d = warm.done;
        row.tokS = d.eval_duration ? (d.eval_count / d.eval_duration) * 1e9 : null;
        row.promptTokS = d.prompt_eval_duration ? (d.prompt_eval_count / d.prompt_eval_duration) * 1e9 : null;
        row.tokens = d.eval_count;
        // how much of it sits in VRAM (size_vram / size): below 1, layers run on the CPU
        const ps = JSON.parse((await L.request(`${base}/api/ps`, { agent })).body).models ?? [];
        const p = ps.find((x) => x.name === m.name || x.model === m.name);
        row.vramShare = p && p.size ? p.size_vram / p.size : null;
        // the rate the client saw, first to last token
        row.clientTokS = warm.tokenTimes.length > 1 ? (warm.tokenTimes.length - 1) / ((warm.tokenTimes.at(-1) - warm.tokenTimes[0]) / 1000) : null;
      }
    } catch (e) {
      row.error = e.message.split('\n')[0];
    }
    rows.push(row);
    log(`  measured ${m.name}${row.error ? ` (error: ${row.error})` : ''}`);
  }
  agent.destroy();
  const hardware = process.env.BENCH_HARDWARE || null;
  out.sections.realOllama = { base, version, numCtx, hardware, note: 'models were unloaded (keep_alive 0) before their cold run; the last one measured stays loaded for Ollama\'s default keep_alive', rows };
  log(`\n## 6. Real Ollama ${version} at ${base}${hardware ? ` on ${hardware}` : ''} (num_ctx ${numCtx}; cold = unloaded first with keep_alive 0; tok/s = eval_count / eval_duration of the warm run)`);
  log(L.table(REAL_HEAD, rows.map(realRow)));
}

const REAL_HEAD = ['model', 'params', 'quant', 'size GB', 'in VRAM', 'load s', 'cold 1st token ms', 'warm 1st token ms', 'tok/s', 'prompt tok/s'];
const realRow = (r) => [
  r.model,
  r.parameters ?? '',
  r.quantization ?? '',
  L.f1(r.sizeGb),
  r.vramShare === null || r.vramShare === undefined ? '' : `${Math.round(r.vramShare * 100)} %`,
  r.error ? `error: ${r.error}` : L.f2(r.loadS),
  L.f1(r.coldFirstMs),
  L.f1(r.warmFirstMs),
  r.kind === 'embed' ? '(embedding)' : L.f1(r.tokS),
  L.f1(r.promptTokS),
];

// ---------------------------------------------------------------------------------------------------
// 7. where the API's CPU goes: a profile by stage (tests/bench/profile.js)

async function sectionProfile(env) {
  const requests = QUICK ? 1000 : 3000;
  // kept beside latest.json (git-ignored): it opens in Chrome DevTools or speedscope
  const result = await profileApi({ upstream: env.upstream, env: { LOG_LEVEL: env.apiEnv.LOG_LEVEL }, requests, warmup: QUICK ? 400 : 1000, keepDir: RESULTS, log });
  out.sections.profile = { ...result, stages: stageTable(result) };
  log(`\n## 7. API CPU per non-streamed POST /v1/generate by stage (V8 profile every 100 µs, self time, µs per request, LOG_LEVEL=${result.logLevel}; its own API process, one request at a time, instant upstream)`);
  printTables(result, log);
}

// ---------------------------------------------------------------------------------------------------
// the goals of the benchmark, in the order of the final block; each is one check id

const GOALS = [
  ['1.api.vs.bare.c1', "latency: API added p50 ≤ 1.3 × the bare proxy's, c=1"],
  ['1.api.vs.bare.c8', "latency: API added p50 ≤ 1.3 × the bare proxy's, c=8"],
  ['1.api.vs.portkey.c1', "latency: API added p50 ≤ 0.5 × Portkey's, c=1", 'portkey'],
  ['1.api.vs.portkey.c8', "latency: API added p50 ≤ 0.5 × Portkey's, c=8", 'portkey'],
  ['1.nginx.c1', 'latency: nginx+API added p50 ≤ 1 ms, c=1'],
  ['1.routing.c1', 'routing (issue 15): 2 upstreams add ≤ 0.1 ms p50 over 1 upstream, c=1'],
  ['1.routing.c8', 'routing (issue 15): 2 upstreams add ≤ 0.1 ms p50 over 1 upstream, c=8'],
  ['1.cpu.api', 'CPU: API ≤ 0.5 ms per non-streamed generation at LOG_LEVEL=info'],
  ['5.admission', "admission: refusals' p50 within 10 ms of a /health burst of 50 (MAX_CONCURRENT=1, MAX_QUEUE=16)"],
  ['5.accounted', 'admission: none lost'],
  ['4.rss.peak', 'memory: RSS ≤ 100 MB at peak over 10,000 mixed requests at 16 callers'],
  ['4.rss.idle', 'memory: RSS ≤ 80 MB idle after them'],
  ['4.images', 'memory: 8 × 25 MB image requests all clean (200/413/503), RSS back < 100 MB'],
  ['3.tps.api.s1', 'streaming: tokens/s ≥ 0.995 × direct, api, 1 stream'],
  ['3.tps.api.s4', 'streaming: tokens/s ≥ 0.995 × direct, api, 4 streams'],
  ['3.tps.nginx+api.s1', 'streaming: tokens/s ≥ 0.995 × direct, nginx+api, 1 stream'],
  ['3.tps.nginx+api.s4', 'streaming: tokens/s ≥ 0.995 × direct, nginx+api, 4 streams'],
  ['2.gaps.api', 'streaming: chunk gaps as direct, api'],
  ['2.gaps.nginx+api', 'streaming: chunk gaps as direct, nginx+api'],
  ['2.ttft.api', 'streaming: added time to first token ≤ 2 ms, api'],
  ['2.ttft.nginx+api', 'streaming: added time to first token ≤ 2 ms, nginx+api'],
];

/** One line per goal: PASS/FAIL, what, the numbers; a goal that was not measured is a FAIL that says why. */
function goalLines() {
  return GOALS.map(([id, label, needs]) => {
    const c = out.checks.find((x) => x.id === id);
    if (c) return { id, label, pass: c.pass, detail: c.detail ?? `${typeof c.value === 'number' ? L.f2(c.value) : c.value} ${c.unit} (goal ${c.goal})` };
    const why = needs === 'portkey' && out.settings.portkey?.reason ? `Portkey not run: ${out.settings.portkey.reason}` : 'its section did not run or broke';
    return { id, label, pass: false, detail: `not measured (${why})` };
  });
}

function printGoals() {
  const g = goalLines();
  const m = out.machine;
  log(`\n## Goals — load average (1 min) ${m.loadavgAtStart[0]} at the start, ${m.loadavgAtEnd[0]} at the end (${m.cores} cores)`);
  for (const x of g) log(`${x.pass ? 'PASS' : 'FAIL'}  ${x.label} — ${x.detail}`);
  log(`${g.filter((x) => x.pass).length} of ${g.length} goals met`);
}

// ---------------------------------------------------------------------------------------------------

function summaryMarkdown() {
  const m = out.machine;
  const s = out.sections;
  const lines = [];
  const pk = out.settings?.portkey;
  lines.push(
    `Measured ${out.startedAt.slice(0, 16).replace('T', ' ')} UTC on ${m.cpu} (${m.cores} cores, shared with other jobs; load average ${m.loadavgAtStart.join(' / ')} at the start, ${(m.loadavgAtEnd ?? []).join(' / ')} at the end), Node ${m.node}, nginx ${m.nginx}${pk?.version ? `, Portkey gateway ${pk.version}` : ''}.`,
  );
  if (pk?.reason) lines.push(`Portkey: not run (${pk.reason}).`);
  lines.push('');
  lines.push(L.mdTable(['goal', 'measured', 'verdict'], goalLines().map((g) => [g.label, g.detail, g.pass ? 'PASS' : 'FAIL'])));
  if (s.latency) {
    lines.push('');
    lines.push('Added over calling the upstream directly, ms (Portkey over a direct `/v1/chat/completions`, the others over `/api/generate`); CPU = ms per request of the gateway\'s processes at c=1:');
    lines.push('');
    lines.push(L.mdTable(['gateway', 'c=1 +p50', 'c=1 +p95', 'c=8 +p50', 'c=8 +p95', 'CPU ms/req'], sideBySide(s.latency.rows)));
  }
  const rows = [];
  const pf = (p) => (p === undefined ? '' : p ? 'PASS' : 'FAIL');
  if (s.latency) {
    for (const r of s.latency.rows.filter((x) => x.baseline !== null)) {
      const base = s.latency.rows.find((x) => x.key === r.baseline && x.concurrency === r.concurrency);
      const cpu = [r.gatewayCpuMsPerReq != null ? `${L.f3(r.gatewayCpuMsPerReq)}` : '', r.nginxCpuMsPerReq != null ? `(nginx ${L.f3(r.nginxCpuMsPerReq)})` : ''].filter(Boolean).join(' ');
      rows.push([`added latency, ${r.target}, c=${r.concurrency}`, `+${L.f2(r.addedP50)} ms p50, +${L.f2(r.addedP95)} p95, +${L.f2(r.addedP99)} p99 (direct ${L.f2(base.p50)} ms p50); CPU ms/request ${cpu}`, pf(r.pass)]);
    }
  }
  if (s.ttft) for (const r of s.ttft.rows.filter((x) => x.target !== 'direct')) rows.push([`added time to first token, ${r.target}`, `+${L.f2(r.addedP50)} ms p50`, pf(r.pass)]);
  if (s.gaps) {
    const d = s.gaps.rows.find((x) => x.target === 'direct');
    for (const r of s.gaps.rows.filter((x) => x.target !== 'direct')) rows.push([`chunk gaps, ${r.target}`, `p10/p50/p90 ${L.f1(r.p10)}/${L.f1(r.p50)}/${L.f1(r.p90)} ms vs direct ${L.f1(d.p10)}/${L.f1(d.p50)}/${L.f1(d.p90)} ms`, pf(r.pass)]);
  }
  if (s.tokensPerSecond) for (const r of s.tokensPerSecond.rows.filter((x) => x.target !== 'direct')) rows.push([`tokens/s, ${r.target}, ${r.streams} stream${r.streams > 1 ? 's' : ''}`, `${L.f3(r.ratio)} × direct (${L.f2(r.perStream)} tok/s)`, pf(r.pass)]);
  if (s.memory) {
    const mm = s.memory;
    rows.push([`API RSS over ${mm.requests.toLocaleString('en')} mixed requests, ${mm.concurrency} callers`, `${L.f1(mm.idleAtStartMb)} MB idle at start → ${L.f1(mm.peakMb)} MB peak → ${L.f1(mm.afterIdleMb)} MB idle after`, pf(out.checks.find((c) => c.id === '4.rss.peak')?.pass && out.checks.find((c) => c.id === '4.rss.idle')?.pass)]);
    if (mm.heapAfterGc?.length) {
      const c2 = out.checks.find((c) => c.id === '4.heap.trend');
      rows.push(['API live heap after full GC (leak check)', `${L.f1(mm.idleHeapUsedMb)} MB idle; ${mm.heapAfterGc.map((h) => L.f1(h.heapUsedMb)).join(' / ')} MB at ${mm.heapAfterGc.map((h) => `${h.requests / 1000}k`).join(' / ')} (${mm.heapSlopeMbPer1k >= 0 ? '+' : ''}${L.f3(mm.heapSlopeMbPer1k)} MB per 1,000)`, pf(c2?.pass)]);
    }
  }
  if (s.images) {
    const im = s.images;
    const gc = im.afterGc ? ` (${L.f1(im.afterGc.rssMb)} MB after a forced full GC)` : '';
    rows.push([`image burst, ${im.requests} × ${(im.bodyBytes / 1e6).toFixed(1)} MB`, `${Object.entries(im.byStatus).map(([k, v]) => `${v}× ${k}`).join(', ')}; RSS ${L.f1(im.rssBeforeMb)} → ${L.f1(im.rssPeakMb)} peak → ${L.f1(im.rssAfterMb)} MB ${im.rssAfterMb < 100 ? `${L.f1(im.settleS)} s` : '15 s'} later${gc}`, pf(out.checks.find((c) => c.id === '4.images')?.pass)]);
  }
  if (s.overload) {
    const o = s.overload;
    rows.push(['overload: 50 at once, MAX_CONCURRENT=1, MAX_QUEUE=16', `${o.served} served, ${o.refused503} refused 503, ${o.other} lost/hung`, pf(out.checks.find((c) => c.id === '5.accounted')?.pass)]);
    rows.push(['overload: time to 503 in the burst vs a /health burst of 50', `503 p50 ${L.f2(o.refusedP50)} ms (slowest ${L.f2(o.refusedMax)}), /health p50 ${L.f2(o.healthP50)} ms (slowest ${L.f2(o.healthMax)})`, pf(out.checks.find((c) => c.id === '5.admission')?.pass)]);
    rows.push(['overload: time to 503, single request on a full queue', `p50 ${L.f2(o.single.p50)} ms, slowest ${L.f2(o.single.max)} ms (${o.single.refused503}/${o.single.n})`, pf(out.checks.find((c) => c.id === '5.refusal.single')?.pass)]);
  }
  if (rows.length) {
    lines.push('');
    lines.push(L.mdTable(['measure', 'result', 'verdict'], rows));
  }
  if (s.profile) {
    const p = s.profile;
    lines.push('');
    lines.push(`API CPU per non-streamed \`POST /v1/generate\` by stage (V8 profile every ${p.intervalUs} µs over ${p.requests.toLocaleString('en')} requests, self time, LOG_LEVEL=${p.logLevel}; /proc: ${L.f3(p.procCpuMsPerRequest)} ms per request profiled, ${L.f3(p.unprofiledCpuMsPerRequest)} unprofiled):`);
    lines.push('');
    const pct = (x) => `${(x * 100).toFixed(1)} %`;
    // "other" broken down under its line: where the optimiser looks next
    const parts = p.rows.filter((r) => r.stage.startsWith('other: ')).map((r) => [`↳ ${r.stage.replace(/^other: /, '')}`, r.usPerRequest.toFixed(0), pct(r.share)]);
    lines.push(L.mdTable(['stage', 'µs / request', 'share'], [...p.stages.map((r) => [r.stage, r.usPerRequest.toFixed(0), pct(r.share)]), ...parts, ['total (busy main thread)', p.busyUsPerRequest.toFixed(0), '100 %']]));
  }
  if (s.cache?.rows) {
    lines.push('');
    lines.push(L.mdTable(['cache (X-Cache)', 'n', 'p50 ms', 'p99 ms'], s.cache.rows.map((r) => [r.label, r.n, L.f2(r.p50), L.f2(r.p99)])));
  }
  if (s.realOllama?.rows) {
    lines.push('');
    lines.push(`Real Ollama ${s.realOllama.version}${s.realOllama.hardware ? ` on ${s.realOllama.hardware}` : ''} (num_ctx ${s.realOllama.numCtx}):`);
    lines.push('');
    lines.push(L.mdTable(REAL_HEAD, s.realOllama.rows.map(realRow)));
  }
  lines.push('');
  lines.push(`Limits raised for the run: ${Object.entries(RAISED).map(([k, v]) => `${k}=${v}`).join(', ')} (the overload section uses MAX_CONCURRENT=1, MAX_QUEUE=16); the API at LOG_LEVEL=${out.settings?.apiLogLevel ?? 'warn'}.`);
  if (out.settings?.portkey?.outbound) lines.push(`${out.settings.portkey.outbound}.`);
  return lines.join('\n');
}

async function cleanup() {
  for (const c of children.reverse()) await L.stopProcess(c);
}

async function main() {
  const hard = setTimeout(() => {
    log(`BROKEN: the benchmark did not finish within ${HARD_LIMIT_MS / 1000} s`);
    cleanup().finally(() => process.exit(1));
  }, HARD_LIMIT_MS + (process.env.OLLAMA_BASE_URL ? 1_800_000 : 0));
  hard.unref();
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => cleanup().finally(() => process.exit(130)));

  out.machine = machine();
  out.settings = { raisedLimits: RAISED, upstreamTokenMs: TOKEN_MS, quick: QUICK, apiLogLevel: process.env.BENCH_LOG_LEVEL || 'info' };
  const t0 = L.now();
  log(`# ai-local-core benchmark — ${out.startedAt}`);
  log(`machine: ${out.machine.cpu}, ${out.machine.cores} cores, node ${out.machine.node}, nginx ${out.machine.nginx}`);
  log(`load average (1 / 5 / 15 min) at the start: ${out.machine.loadavgAtStart.join(' / ')} — the machine is shared: read the numbers against it`);
  log(`limits raised for this run: ${Object.entries(RAISED).map(([k, v]) => `${k}=${v}`).join(' ')}`);
  log(`API LOG_LEVEL=${process.env.BENCH_LOG_LEVEL || 'info'} (the production default: an access line per request)`);
  const only = (process.env.BENCH_ONLY || '').split(',').map((x) => x.trim()).filter(Boolean);
  const wants = (name) => !only.length || only.includes(name);
  const names = ['latency', 'streaming', 'cache', 'memory', 'overload', 'profile'];
  if (names.some(wants)) {
    if (!fs.existsSync(path.join(ROOT, 'services/api/dist/main.js'))) throw new Error('services/api/dist/main.js is missing: run `make bench` (it builds the API) or `cd services/api && npm run build`');
    const env = await setup();
    out.settings.nginxAuthHash = env.stackHash;
    out.settings.portkey = env.portkey.url ? { version: env.portkey.version } : { reason: env.portkey.reason };
    log(`upstream ${env.upstream} (${1000 / TOKEN_MS} tok/s) · api ${env.api} (pid ${env.apiPid}) · nginx ${env.nginx} (htpasswd: ${env.stackHash})${env.alt ? ` · comparison nginx ${env.alt.url} (htpasswd: ${env.alt.hash})` : ''}`);
    const idle = L.rssMb(env.apiPid);
    const idleHeap = await heapAfterGc(env);
    const T = targets(env);
    const sections = {
      latency: () => sectionLatency(T, env),
      streaming: () => sectionStreaming(T),
      cache: () => sectionCache(T),
      memory: async () => {
        await sectionMemory(env, T, idle, idleHeap);
        await sectionImages(env, T);
      },
      overload: () => sectionOverload(env),
      profile: () => sectionProfile(env),
    };
    for (const name of names.filter(wants)) {
      try {
        await sections[name]();
      } catch (e) {
        breakBench(`${name}: ${e.stack || e.message}`);
      }
    }
    for (const t of T) t.agent.destroy();
    await cleanup();
    const pk = portkeyOutbound(env.portkey);
    if (pk) {
      out.notes.push(pk);
      out.settings.portkey.outbound = pk;
    }
  }
  if (wants('real')) {
    try {
      await sectionRealOllama();
    } catch (e) {
      breakBench(`real Ollama: ${e.message}`);
    }
  }

  out.seconds = (L.now() - t0) / 1000;
  out.machine.loadavgAtEnd = os.loadavg().map((x) => Math.round(x * 100) / 100);
  out.broken = broken;
  fs.mkdirSync(RESULTS, { recursive: true });
  fs.writeFileSync(path.join(RESULTS, 'latest.json'), JSON.stringify(out, null, 2) + '\n');
  fs.writeFileSync(path.join(RESULTS, 'latest.md'), summaryMarkdown() + '\n');

  const failed = out.checks.filter((c) => !c.pass);
  log('\n## Summary');
  log(L.table(['check', 'value', 'goal', 'result'], out.checks.map((c) => [c.what, `${typeof c.value === 'number' ? (c.unit === 'ratio' ? L.f3(c.value) : L.f2(c.value)) : c.value} ${c.unit}`, c.goal, c.pass ? 'PASS' : 'FAIL'])));
  for (const n of out.notes) log(`note: ${n}`);
  log(`\n${out.checks.length - failed.length} of ${out.checks.length} checks met; ${broken.length ? `BENCHMARK BROKEN (${broken.length})` : 'benchmark complete'} in ${out.seconds.toFixed(0)} s · load average (1 / 5 / 15 min) at the end: ${out.machine.loadavgAtEnd.join(' / ')}`);
  log(`results: ${path.relative(process.cwd(), path.join(RESULTS, 'latest.json'))} and latest.md`);
  printGoals();
  process.exitCode = broken.length ? 1 : 0;
}

if (process.argv[2] === '--md') {
  // the Markdown summary of the last run again (for docs/benchmarks.md), from results/latest.json
  Object.assign(out, JSON.parse(fs.readFileSync(path.join(RESULTS, 'latest.json'), 'utf8')));
  process.stdout.write(summaryMarkdown() + '\n');
} else main().catch(async (e) => {
  log(`BROKEN: setup failed: ${e.message}`);
  await cleanup();
  process.exit(1);
});
