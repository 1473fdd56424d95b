'use strict';
/** Small helpers of the benchmark: processes, ports, HTTP timing, statistics, tables. No dependencies. */
const http = require('node:http');
const net = require('node:net');
const fs = require('node:fs');
const { spawn } = require('node:child_process');

const now = () => performance.now();

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * Starts a process and resolves once every wanted KEY=value line has been printed on stdout.
 * stderr (and stdout) are kept (last 8 kB) for the error message when it fails or dies first; when
 * it is not ready in time it is killed.
 */
function startProcess(name, cmd, args, { env, cwd, keys, timeoutMs = 60_000, detached = false }) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'], detached });
    const found = {};
    let log = '';
    let buf = '';
    const keep = (s) => {
      log = (log + s).slice(-8192);
    };
    const timer = setTimeout(() => fail(new Error(`${name}: not ready within ${timeoutMs / 1000} s`)), timeoutMs);
    const fail = (err) => {
      clearTimeout(timer);
      // a process that never became ready is not left behind (the caller may go on without it)
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      err.message += `\n--- ${name} output ---\n${log}`;
      reject(err);
    };
    child.on('error', fail);
    child.on('exit', (code, sig) => {
      if (Object.keys(found).length < keys.length) fail(new Error(`${name}: exited (${code ?? sig}) before it was ready`));
    });
    child.stderr.on('data', (d) => keep(d.toString()));
    child.stdout.on('data', (d) => {
      const s = d.toString();
      keep(s);
      buf += s;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        const m = /^([A-Z_]+)=(.*)$/.exec(line);
        if (m && keys.includes(m[1])) found[m[1]] = m[2];
      }
      if (keys.every((k) => k in found)) {
        clearTimeout(timer);
        resolve({ child, values: found, log: () => log });
      }
    });
  });
}

/** SIGTERM, then SIGKILL after graceMs; resolves when the process has exited. */
function stopProcess(child, graceMs = 5000) {
  return new Promise((resolve) => {
    if (!child || child.exitCode !== null || child.signalCode !== null) return resolve();
    const t = setTimeout(() => {
      try {
        child.kill('SIGKILL');
      } catch {}
    }, graceMs);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    try {
      child.kill('SIGTERM');
    } catch {
      resolve();
    }
  });
}

/**
 * One HTTP request with its duration (ms, from the call to the last byte of the body).
 * Rejects with code 'HUNG' after timeoutMs; never throws for an HTTP error status.
 */
function request(url, { method = 'GET', headers = {}, body, agent, timeoutMs = 10_000 } = {}) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const h = { ...headers };
    if (data !== undefined) {
      h['content-type'] = 'application/json';
      h['content-length'] = Buffer.byteLength(data);
    }
    const t0 = now();
    const req = http.request(url, { method, headers: h, agent }, (res) => {
      const parts = [];
      res.on('data', (c) => parts.push(c));
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(parts).toString('utf8'), ms: now() - t0 });
      });
      res.on('error', done);
    });
    const done = (err) => {
      clearTimeout(timer);
      reject(err);
    };
    const timer = setTimeout(() => {
      const e = new Error(`no complete answer within ${timeoutMs} ms: ${method} ${url}`);
      e.code = 'HUNG';
      req.destroy(e);
    }, timeoutMs);
    req.on('error', done);
    if (data !== undefined) req.write(data);
    req.end();
  });
}

/**
 * A streamed (NDJSON) generation: the arrival time of every line that carries a token, relative to
 * the call. Ollama lines carry `response`, chat lines `message.content`; the gateway's too.
 */
function streamRequest(url, { headers = {}, body, agent, timeoutMs = 60_000 }) {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const t0 = now();
    const tokenTimes = [];
    let headersAt = null;
    let buf = '';
    let lines = 0;
    let doneLine = null;
    const req = http.request(
      url,
      { method: 'POST', headers: { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) }, agent },
      (res) => {
        headersAt = now() - t0;
        res.setEncoding('utf8');
        res.on('data', (s) => {
          const at = now() - t0;
          buf += s;
          let nl;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            if (!line.trim()) continue;
            lines++;
            let o;
            try {
              o = JSON.parse(line);
            } catch {
              continue;
            }
            const text = o.response ?? o.message?.content ?? '';
            if (o.done) doneLine = o;
            else if (text) tokenTimes.push(at);
          }
        });
        res.on('end', () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode, headers: res.headers, headersAt, tokenTimes, lines, done: doneLine, ms: now() - t0 });
        });
        res.on('error', fail);
      },
    );
    const fail = (err) => {
      clearTimeout(timer);
      reject(err);
    };
    const timer = setTimeout(() => {
      const e = new Error(`stream not finished within ${timeoutMs} ms: ${url}`);
      e.code = 'HUNG';
      req.destroy(e);
    }, timeoutMs);
    req.on('error', fail);
    req.end(data);
  });
}

/**
 * Runs `count` calls of fn(i) with `concurrency` workers; returns the results in call order.
 * staggerMs: worker k starts k * staggerMs later (callers that do not arrive in lockstep).
 */
async function pool(count, concurrency, fn, staggerMs = 0) {
  const out = new Array(count);
  let next = 0;
  const worker = async (k) => {
    if (staggerMs) await new Promise((r) => setTimeout(r, k * staggerMs));
    while (next < count) {
      const i = next++;
      out[i] = await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, (_, k) => worker(k)));
  return out;
}

function percentile(values, p) {
  if (!values.length) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const idx = (p / 100) * (s.length - 1);
  const lo = Math.floor(idx);
  const hi = Math.ceil(idx);
  return s[lo] + (s[hi] - s[lo]) * (idx - lo);
}

const mean = (v) => v.reduce((a, b) => a + b, 0) / v.length;

/** Least-squares slope of y over x. */
function slope(xs, ys) {
  const mx = mean(xs);
  const my = mean(ys);
  let num = 0;
  let den = 0;
  for (let i = 0; i < xs.length; i++) {
    num += (xs[i] - mx) * (ys[i] - my);
    den += (xs[i] - mx) ** 2;
  }
  return den ? num / den : 0;
}

/** VmRSS in MB from /proc (Linux); elsewhere `ps -o rss=` (macOS); NaN when neither answers. */
function rssMb(pid) {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    if (m) return Number(m[1]) / 1024;
  } catch {
    /* not Linux */
  }
  try {
    const kb = Number(require('node:child_process').execFileSync('ps', ['-o', 'rss=', '-p', String(pid)], { encoding: 'utf8' }).trim());
    return kb > 0 ? kb / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** A fixed-width text table; rows are arrays of cells (strings or numbers). */
function table(head, rows) {
  const cells = [head, ...rows].map((r) => r.map((c) => (c === undefined || c === null ? '' : String(c))));
  const w = head.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ');
  return [line(cells[0]), w.map((n) => '-'.repeat(n)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

/** The same as a Markdown table. */
function mdTable(head, rows) {
  const esc = (c) => String(c ?? '').replace(/\|/g, '\\|');
  return [`| ${head.map(esc).join(' | ')} |`, `| ${head.map((_, i) => (i === 0 ? '---' : '---:')).join(' | ')} |`, ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`)].join('\n');
}

const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : '-');
const f2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : '-');
const f3 = (x) => (Number.isFinite(x) ? x.toFixed(3) : '-');

module.exports = { now, freePort, startProcess, stopProcess, request, streamRequest, pool, percentile, mean, slope, rssMb, table, mdTable, f1, f2, f3 };
