#!/usr/bin/env node
'use strict';
/**
 * Where the API's CPU goes per non-streamed generation: a CPU profile of the API (services/api/dist)
 * under POST /v1/generate on loopback, its self-time bucketed by stage, in µs per request.
 *
 *   node tests/bench/profile.js [--requests 3000] [--warmup 1000] [--keep DIR] [--pool]
 *
 * Alone it starts its own fake Ollama (upstream.js); `make bench` calls profileApi() with its own.
 * The API runs as in production (LOG_LEVEL=info, basic auth, rate limiter on but never reached),
 * with tests/bench/cpu-probe.js preloaded: sampling (every 100 µs) starts after the warm-up and
 * stops after the measured requests, one at a time against an upstream that answers at once.
 *
 * A sample's time goes to the stage of the nearest frame of the stack, counted from the top, that
 * belongs to a package or to the API's own code (native and node:internal frames belong to the
 * code that called them: JSON.parse inside body-parser is parsing, a socket write inside winston is
 * the access log). A stack with no such frame is Node's HTTP server or V8 itself.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const http = require('node:http');
const crypto = require('node:crypto');
const L = require('./lib');

const ROOT = path.resolve(__dirname, '../..');
const MAIN = path.join(ROOT, 'services/api/dist/main.js');

/** Stages in table order: [label, url patterns]. The first match of a frame's url wins. */
const STAGES = [
  ['auth', [/node_modules\/(express-basic-auth|basic-auth)\//, /\/dist\/middleware\/auth\.js/]],
  ['parsing (body-parser, JSON.parse, body-guard)', [/node_modules\/(body-parser|raw-body|iconv-lite|content-type|type-is|media-typer|bytes|unpipe)\//, /\/dist\/middleware\/body-guard\.js/]],
  ['validation (joi, validate)', [/node_modules\/(joi|@hapi|@sideway)\//, /\/dist\/middleware\/validate\.js/, /\/dist\/routes\/support\/schemas\.js/]],
  ['metrics (prom-client)', [/node_modules\/(prom-client|tdigest|bintrees)\//, /\/dist\/services\/metrics\.js/]],
  [
    'access log (request-context, winston)',
    [
      /node_modules\/(winston|winston-transport|logform|triple-beam|@colors|safe-stable-stringify|fecha|readable-stream|string_decoder|@dabh|one-time|fn\.name|stack-trace|async|is-stream|text-hex|kuler|enabled|color|color-string|simple-swizzle)\//,
      /\/dist\/logger\.js/,
      /\/dist\/middleware\/request-context\.js/,
    ],
  ],
  ['upstream call (axios, clients)', [/node_modules\/(axios|axios-retry|follow-redirects|form-data|proxy-from-env|combined-stream|asynckit|delayed-stream)\//, /\/dist\/clients\//]],
  [
    'response (express response, res.json)',
    [/node_modules\/express\/lib\/response\.js/, /node_modules\/(send|etag|fresh|vary|cookie|cookie-signature|content-disposition|encodeurl|escape-html|statuses|mime-types|mime-db)\//, /\/dist\/routes\/support\/(respond|relay|streams|cached-json)\.js/],
  ],
  // "other", broken down so that the optimiser sees what it is
  ['other: rate limiter (express-rate-limit)', [/node_modules\/express-rate-limit\//, /\/dist\/middleware\/rate-limit\.js/]],
  ['other: helmet', [/node_modules\/helmet\//]],
  ['other: express app & router', [/node_modules\/(express|router|finalhandler|path-to-regexp|parseurl|qs|depd|debug|on-finished|ee-first|merge-descriptors|accepts|negotiator|http-errors|setprototypeof|proxy-addr|forwarded|ipaddr\.js|is-promise)\//]],
  ['other: gateway logic (routes, queue, catalog, cache)', [/\/dist\//]],
  ['other: other packages', [/node_modules\//]],
];
const NODE_HTTP = 'other: Node HTTP server & sockets (no package on the stack)';
const UPSTREAM = STAGES[5][0];
const GC = 'other: garbage collection';
const V8 = 'other: V8 & native (program)';
const REST = 'other: Node internals (timers, promises)';
const ORDER = [...STAGES.map((s) => s[0]), NODE_HTTP, REST, GC, V8];
const MAIN_STAGES = 7; // the issue's stages; the rest adds up to "other"

const isUserland = (url) => Boolean(url) && !url.startsWith('node:') && !url.startsWith('internal/');
const stageOfUrl = (url) => (STAGES.find(([, res]) => res.some((re) => re.test(url))) ?? ['other: other packages'])[0];

/** Self time (µs) per node id: a sample lasts until the next one. */
function selfTimes(profile) {
  const t = new Map();
  const { samples, timeDeltas } = profile;
  for (let i = 0; i < samples.length; i++) {
    const dt = timeDeltas[i + 1] ?? 0;
    t.set(samples[i], (t.get(samples[i]) ?? 0) + dt);
  }
  return t;
}

/** The stage a node's self time belongs to (see the header), or null for idle. */
function classifier(profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const memo = new Map();
  return (id) => {
    if (memo.has(id)) return memo.get(id);
    const leaf = byId.get(id).callFrame;
    let stage;
    if (leaf.functionName === '(idle)') stage = null;
    else if (leaf.functionName === '(garbage collector)') stage = GC;
    else if (leaf.functionName === '(program)') stage = V8;
    else {
      // with no package on the stack, Node's HTTP client (flushing the request to Ollama, parsing
      // its answer) is the upstream call; its HTTP server and sockets are their own line
      let http = null;
      for (let at = id; at !== undefined; at = parent.get(at)) {
        const url = byId.get(at).callFrame.url;
        if (isUserland(url)) {
          stage = stageOfUrl(url);
          break;
        }
        if (/^node:_http_(client|agent)/.test(url)) http = UPSTREAM;
        else if (!http && /^node:(_http_|net|stream|internal\/(streams|stream_base|http))/.test(url)) http = NODE_HTTP;
      }
      stage ??= http ?? REST;
    }
    memo.set(id, stage);
    return stage;
  };
}

/** The profile's busy time per stage and the hottest functions, in µs per request. */
function analyse(profile, requests) {
  const self = selfTimes(profile);
  const stageOf = classifier(profile);
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const stages = Object.fromEntries(ORDER.map((s) => [s, 0]));
  const fns = new Map();
  let busy = 0;
  let idle = 0;
  for (const [id, us] of self) {
    const stage = stageOf(id);
    if (stage === null) {
      idle += us;
      continue;
    }
    busy += us;
    stages[stage] += us;
    const f = byId.get(id).callFrame;
    const where = f.url ? `${shortUrl(f.url)}:${f.lineNumber + 1}` : '(native)';
    const key = `${f.functionName || '(anonymous)'} ${where}|${stage}`;
    fns.set(key, (fns.get(key) ?? 0) + us);
  }
  const rows = ORDER.map((stage) => ({ stage, usPerRequest: stages[stage] / requests, share: stages[stage] / busy }));
  const top = [...fns]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 20)
    .map(([k, us]) => {
      const [fn, stage] = k.split('|');
      return { fn, stage, usPerRequest: us / requests, share: us / busy };
    });
  return { requests, busyUsPerRequest: busy / requests, idleUsPerRequest: idle / requests, rows, top };
}

const shortUrl = (url) => url.replace(/^file:\/\//, '').replace(/^.*\/node_modules\//, '').replace(/^.*\/services\/api\//, 'api/');

/** The issue's eight stages: the seven named ones and everything else added up as "other". */
function stageTable(result) {
  const main = result.rows.slice(0, MAIN_STAGES);
  const rest = result.rows.slice(MAIN_STAGES);
  const other = { stage: 'other', usPerRequest: rest.reduce((a, r) => a + r.usPerRequest, 0), share: rest.reduce((a, r) => a + r.share, 0) };
  return [...main, other];
}

function printTables(result, log) {
  const pct = (x) => `${(x * 100).toFixed(1)} %`;
  const us = (x) => x.toFixed(0);
  log(L.table(['stage', 'µs / request', 'share'], [...stageTable(result).map((r) => [r.stage, us(r.usPerRequest), pct(r.share)]), ['total (busy main thread)', us(result.busyUsPerRequest), '100 %']]));
  log('\n"other", broken down:');
  log(L.table(['part of "other"', 'µs / request', 'share'], result.rows.slice(MAIN_STAGES).map((r) => [r.stage.replace(/^other: /, ''), us(r.usPerRequest), pct(r.share)])));
  log('\nhottest functions (self time):');
  log(L.table(['function', 'stage', 'µs / request', 'share'], result.top.map((r) => [r.fn, r.stage.replace(/ \(.*\)$/, ''), us(r.usPerRequest), pct(r.share)])));
}

/**
 * Starts a profiled API against `upstream`, sends `warmup` then `requests` generations one at a
 * time, returns analyse()'s result plus the API's CPU per request from /proc while profiled.
 */
async function profileApi({ upstream, env = {}, requests = 3000, warmup = 1000, keepDir = null, log = () => {} }) {
  if (!fs.existsSync(MAIN)) throw new Error('services/api/dist/main.js is missing: cd services/api && npm run build');
  const dir = keepDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'bench-profile-'));
  fs.mkdirSync(dir, { recursive: true });
  const out = path.join(dir, 'api.cpuprofile');
  for (const f of [out, `${out}.started`]) fs.rmSync(f, { force: true });
  const port = await L.freePort();
  const user = 'profile';
  const password = crypto.randomBytes(18).toString('base64url');
  const auth = { authorization: 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64') };
  const child = require('node:child_process').spawn(process.execPath, [MAIN], {
    env: {
      ...process.env,
      ...env,
      NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --require ${path.join(__dirname, 'cpu-probe.js')}`.trim(),
      BENCH_CPU_PROFILE_OUT: out,
      AUTH_USERS: `${user}:${password}`,
      ADMIN_USERS: user,
      OLLAMA_BASE_URL: upstream,
      MODEL_DEFAULT: 'bench:50tps',
      MODEL_EMBED: 'bench-embed',
      LOG_LEVEL: env.LOG_LEVEL ?? 'info',
      // on, as in production, but never reached by this load
      RATE_LIMIT_PER_MIN: env.RATE_LIMIT_PER_MIN ?? '1000000',
      PORT: String(port),
      HOST: '127.0.0.1',
      TRUST_PROXY: '1',
    },
    // stdout drained as a container runtime would: the access log is written for real
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.resume();
  let stderr = '';
  child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
  const base = `http://127.0.0.1:${port}`;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    await waitFor(async () => (await L.request(`${base}/health`, { agent }).catch(() => null))?.status === 200, 30_000, () => `the profiled API did not answer /health: ${stderr}`);
    const body = { model: 'bench:fast', prompt: 'Say something short.', stream: false, options: { num_predict: 1 } };
    const one = async () => {
      const r = await L.request(`${base}/v1/generate`, { method: 'POST', headers: auth, body, agent });
      if (r.status !== 200) throw new Error(`profile: HTTP ${r.status} ${r.body.slice(0, 200)}`);
    };
    // the second half of the warm-up, unprofiled: what the profiler itself adds shows against it
    let cpuWarm = NaN;
    for (let i = 0; i < warmup; i++) {
      if (i === Math.floor(warmup / 2)) cpuWarm = cpuMs(child.pid);
      await one();
    }
    const unprofiledCpuMsPerRequest = (cpuMs(child.pid) - cpuWarm) / (warmup - Math.floor(warmup / 2));
    process.kill(child.pid, 'SIGUSR2');
    await waitFor(() => fs.existsSync(`${out}.started`), 10_000, () => 'the profiler did not start (cpu-probe.js)');
    const cpu0 = cpuMs(child.pid);
    const t0 = L.now();
    for (let i = 0; i < requests; i++) await one();
    const seconds = (L.now() - t0) / 1000;
    const procCpuMsPerRequest = (cpuMs(child.pid) - cpu0) / requests;
    process.kill(child.pid, 'SIGUSR2');
    await waitFor(() => fs.existsSync(out), 30_000, () => 'the profile was not written (cpu-probe.js)');
    const profile = JSON.parse(fs.readFileSync(out, 'utf8'));
    fs.rmSync(`${out}.started`, { force: true });
    if (profile.error) throw new Error(`profiler: ${profile.error}`);
    const result = analyse(profile, requests);
    log(
      `profiled ${requests} requests (after ${warmup} of warm-up) in ${seconds.toFixed(1)} s; API CPU (/proc, all threads): ${procCpuMsPerRequest.toFixed(3)} ms per request profiled, ${unprofiledCpuMsPerRequest.toFixed(3)} ms unprofiled${keepDir ? `; profile kept: ${out}` : ''}`,
    );
    if (!keepDir) fs.rmSync(dir, { recursive: true, force: true });
    return { ...result, procCpuMsPerRequest, unprofiledCpuMsPerRequest, seconds, warmup, intervalUs: 100, logLevel: env.LOG_LEVEL ?? 'info' };
  } finally {
    agent.destroy();
    await L.stopProcess(child);
  }
}

async function waitFor(ok, ms, why) {
  const end = L.now() + ms;
  while (L.now() < end) {
    if (await ok()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(why());
}

/** CPU time (ms) of a process, all threads: utime + stime from /proc (Linux only; NaN elsewhere). */
function cpuMs(pid) {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const v = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return ((Number(v[11]) + Number(v[12])) * 1000) / 100; // CLK_TCK is 100 on Linux
  } catch {
    return NaN;
  }
}

async function main() {
  const args = process.argv.slice(2);
  const arg = (name, dflt) => {
    const i = args.indexOf(name);
    return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : dflt;
  };
  const up = await L.startProcess('bench upstream', process.execPath, [path.join(__dirname, 'upstream.js')], { env: process.env, keys: ['BENCH_UPSTREAM_URL'], timeoutMs: 10_000 });
  try {
    const result = await profileApi({
      upstream: up.values.BENCH_UPSTREAM_URL,
      requests: Number(arg('--requests', 3000)),
      warmup: Number(arg('--warmup', 1000)),
      keepDir: arg('--keep', null),
      env: {
        LOG_LEVEL: process.env.BENCH_LOG_LEVEL || 'info',
        // --pool: two upstreams (UPSTREAMS) instead of the one implicit upstream, to see what routing costs
        ...(args.includes('--pool')
          ? { UPSTREAMS: JSON.stringify(['gpu', 'spare'].map((name, i) => ({ name, url: up.values.BENCH_UPSTREAM_URL, kind: 'ollama', priority: i + 1 }))) }
          : {}),
      },
      log: (s) => console.log(s),
    });
    console.log(`\nAPI CPU per non-streamed POST /v1/generate, by stage (profile, self time, µs per request, LOG_LEVEL=${result.logLevel})`);
    printTables(result, (s) => console.log(s));
  } finally {
    await L.stopProcess(up.child);
  }
}

module.exports = { profileApi, analyse, printTables, stageTable };

if (require.main === module) {
  main().catch((e) => {
    console.error(`profile failed: ${e.message}`);
    process.exit(1);
  });
}
