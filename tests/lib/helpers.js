'use strict';
// Helpers for the stack tests: run scripts, parse compose output, start processes, HTTP on loopback.
const assert = require('node:assert/strict');
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..', '..');
const API_DIR = path.join(ROOT, 'services', 'api');
// an empty env file: the developer's own .env must not change what the tests see
const EMPTY_ENV = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'stack-env-')), 'empty.env');
fs.writeFileSync(EMPTY_ENV, '');
const CLEAN = { STACK_ENV_FILE: EMPTY_ENV, GPU: '', TUNNEL: '', TUNNEL_TOKEN: '', COMPOSE_PROJECT_NAME: '' };

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: ROOT, encoding: 'utf8', timeout: 60_000, ...opts });
  if (r.error) throw r.error;
  return r;
}

/** The merged compose config of a combination, exactly as `make` assembles it, as an object. */
function composeConfig(mode, env = {}) {
  const fullEnv = { ...process.env, ...CLEAN, COMPOSE_BIN: 'docker-compose', AUTH_USERS: 'admin:pw,waldus:pw2', ...env };
  for (const k of Object.keys(fullEnv)) if (fullEnv[k] === undefined) delete fullEnv[k];
  const r = run(path.join(ROOT, 'scripts', 'compose.sh'), [mode, 'config'], { env: fullEnv });
  if (r.status !== 0) throw new Error(`compose config (${mode}) failed: ${r.stderr}`);
  const py = run('python3', ['-c', 'import sys, json, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)'], { input: r.stdout });
  if (py.status !== 0) throw new Error(`YAML->JSON failed: ${py.stderr}`);
  return JSON.parse(py.stdout);
}

/** The top-level compose arguments `make` would use for a mode (files, profiles). */
function composeArgs(mode, env = {}) {
  const r = run(path.join(ROOT, 'scripts', 'compose.sh'), [mode, '--print'], { env: { ...process.env, ...CLEAN, ...env } });
  if (r.status !== 0) throw new Error(r.stderr);
  return r.stdout.trim().split('\n');
}

/** Services compose would start: no `profiles`, or one of the active profiles. */
function enabledServices(config, args) {
  const active = args.flatMap((a, i) => (a === '--profile' ? [args[i + 1]] : []));
  return Object.entries(config.services)
    .filter(([, s]) => !s.profiles || s.profiles.some((p) => active.includes(p)))
    .map(([name]) => name);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Start a long-running process and wait (bounded) for a `KEY=value` line on its stdout.
 * Returns { proc, values, stderr() }; values collects every KEY=value line seen so far.
 */
function startAndWait(cmd, args, { env, cwd = ROOT, key, timeoutMs = 60_000 }) {
  const proc = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: false });
  const values = {};
  let stderr = '';
  let stdoutBuf = '';
  proc.stderr.on('data', (d) => { stderr = (stderr + d).slice(-20_000); });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGTERM');
      reject(new Error(`${cmd}: no ${key}= line within ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    proc.stdout.on('data', (d) => {
      stdoutBuf += d;
      let nl;
      while ((nl = stdoutBuf.indexOf('\n')) >= 0) {
        const line = stdoutBuf.slice(0, nl);
        stdoutBuf = stdoutBuf.slice(nl + 1);
        const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
        if (m) values[m[1]] = m[2];
        if (m && m[1] === key) {
          clearTimeout(timer);
          resolve({ proc, values, stderr: () => stderr });
        }
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${cmd} exited (${code}) before printing ${key}=\n${stderr}`));
    });
  });
}

/** Stop a process we started: SIGTERM, then SIGKILL after a bounded wait. */
async function stop(proc, ms = 8000) {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGTERM');
  const t = setTimeout(() => proc.kill('SIGKILL'), ms);
  await exited;
  clearTimeout(t);
}

/** One HTTP request to loopback. Resolves { status, headers, body, json, chunks:[{t,data}] }. */
function request(url, { method = 'GET', user, body, headers = {}, timeoutMs = 15_000 } = {}) {
  const u = new URL(url);
  if (!['127.0.0.1', 'localhost'].includes(u.hostname)) throw new Error(`tests talk to loopback only: ${url}`);
  const h = { ...headers };
  if (user) h.authorization = 'Basic ' + Buffer.from(user).toString('base64');
  let payload;
  if (body !== undefined) {
    payload = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    h['content-type'] = h['content-type'] || 'application/json';
    h['content-length'] = payload.length;
  }
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method, headers: h, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push({ t: Number(process.hrtime.bigint() - start) / 1e6, data: d.toString('utf8') }));
      res.on('end', () => {
        const text = chunks.map((c) => c.data).join('');
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, body: text, json, chunks });
      });
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`timeout after ${timeoutMs} ms: ${method} ${url}`)));
    req.on('error', reject);
    if (payload) req.write(payload);
    req.end();
  });
}

function tmpDir(prefix) {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/**
 * The fake Ollama (services/api/test/fakes) and scripts/local-stack.sh (real nginx + the built API)
 * in front of it, on free loopback ports. `env` adds to / overrides the stack's environment.
 * Returns the URLs and a stop() for test.after.
 */
async function startFakeAndLocalStack({ tokenDelayMs, users, admins, env = {} }) {
  assert.ok(fs.existsSync(path.join(API_DIR, 'dist', 'main.js')), 'build the API first: cd services/api && npm run build (make test does)');
  const tsx = path.join(API_DIR, 'node_modules', '.bin', 'tsx');
  const fake = await startAndWait(tsx, ['test/fakes/run-fake-ollama.ts', '--port', '0', '--token-delay-ms', String(tokenDelayMs)], {
    cwd: API_DIR, env: process.env, key: 'FAKE_OLLAMA_URL', timeoutMs: 60_000,
  });
  const [httpPort, apiPort, tunnelPort] = [await freePort(), await freePort(), await freePort()];
  let stack;
  try {
    stack = await startAndWait(path.join(ROOT, 'scripts', 'local-stack.sh'), [], {
      key: 'LOCAL_STACK_NGINX_PID', // the last line local-stack.sh prints: every value is in
      timeoutMs: 90_000,
      env: {
        ...process.env,
        HTTP_PORT: String(httpPort),
        API_PORT: String(apiPort),
        TUNNEL_PORT: String(tunnelPort),
        AUTH_USERS: users,
        ADMIN_USERS: admins,
        OLLAMA_BASE_URL: fake.values.FAKE_OLLAMA_URL,
        MODEL_DEFAULT: 'llama3.1:8b',
        LOG_LEVEL: 'error',
        RATE_LIMIT_PER_MIN: '100000',
        ...env,
      },
    });
  } catch (err) {
    await stop(fake.proc);
    throw err;
  }
  return {
    url: stack.values.LOCAL_STACK_URL,
    tunnelUrl: stack.values.LOCAL_STACK_TUNNEL_URL,
    apiUrl: `http://127.0.0.1:${apiPort}`,
    apiPid: Number(stack.values.LOCAL_STACK_API_PID),
    stop: async () => {
      await stop(stack.proc);
      await stop(fake.proc);
    },
  };
}

module.exports = { startFakeAndLocalStack, ROOT, API_DIR, EMPTY_ENV, run, composeConfig, composeArgs, enabledServices, freePort, startAndWait, stop, request, tmpDir };
