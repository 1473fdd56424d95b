'use strict';
// Helpers of the security suite: requests sent exactly as written (no URL normalization), raw
// sockets, and the JSON-error check every refusal must pass. Loopback only.
const assert = require('node:assert/strict');
const http = require('node:http');
const net = require('node:net');

function loopback(base) {
  const u = new URL(base);
  if (!['127.0.0.1', 'localhost'].includes(u.hostname)) throw new Error(`tests talk to loopback only: ${base}`);
  return u;
}

/**
 * One request with the path sent byte for byte as given (http.request does not resolve `..` or
 * backslashes, unlike new URL()). Resolves { status, headers, body, json }.
 */
function send(base, rawPath, { method = 'GET', user, body, headers = {}, timeoutMs = 15_000 } = {}) {
  const u = loopback(base);
  const h = { ...headers };
  if (user) h.authorization = 'Basic ' + Buffer.from(user).toString('base64');
  let payload;
  if (body !== undefined) {
    payload = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    if (!Object.keys(h).some((k) => k.toLowerCase() === 'content-type')) h['content-type'] = 'application/json';
    h['content-length'] = payload.length;
  }
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path: rawPath, method, headers: h, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, body: text, json });
      });
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`timeout after ${timeoutMs} ms: ${method} ${rawPath}`)));
    req.on('error', reject);
    if (payload) req.write(payload);
    req.end();
  });
}

/**
 * Raw bytes on a fresh TCP connection; resolves when the server closes or `timeoutMs` passes:
 * { raw, status, headers, body, json, closedBy: 'server' | 'timeout', ms }.
 */
function raw(base, bytes, { timeoutMs = 15_000 } = {}) {
  const u = loopback(base);
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const sock = net.connect(Number(u.port), u.hostname);
    const chunks = [];
    let closedBy = 'server';
    const timer = setTimeout(() => { closedBy = 'timeout'; sock.destroy(); }, timeoutMs);
    sock.on('connect', () => sock.write(bytes));
    sock.on('data', (d) => chunks.push(d));
    sock.on('error', (e) => { if (e.code !== 'ECONNRESET' && e.code !== 'EPIPE') reject(e); });
    sock.on('close', () => {
      clearTimeout(timer);
      resolve({ ...parseResponse(Buffer.concat(chunks).toString('utf8')), closedBy, ms: Date.now() - t0 });
    });
  });
}

/** The first HTTP/1.x response in a raw byte string (Content-Length or chunked body). */
function parseResponse(text) {
  const m = /^HTTP\/1\.[01] (\d{3})[^\r\n]*\r\n([\s\S]*?)\r\n\r\n([\s\S]*)$/.exec(text);
  if (!m) return { raw: text, status: null, headers: {}, body: '', json: undefined };
  const headers = {};
  for (const line of m[2].split('\r\n')) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  let body = m[3];
  if (/chunked/i.test(headers['transfer-encoding'] || '')) {
    let out = '';
    let rest = body;
    for (;;) {
      const nl = rest.indexOf('\r\n');
      if (nl < 0) break;
      const n = parseInt(rest.slice(0, nl), 16);
      if (!n) break;
      out += rest.slice(nl + 2, nl + 2 + n);
      rest = rest.slice(nl + 2 + n + 2);
    }
    body = out;
  } else if (headers['content-length']) {
    body = body.slice(0, Number(headers['content-length']));
  }
  let json;
  try { json = JSON.parse(body); } catch { json = undefined; }
  return { raw: text, status: Number(m[1]), headers, body, json };
}

/** A refusal: the status (or one of them), JSON content type, an `error` in the body, no stack trace. */
function assertJsonRefusal(res, statuses, what) {
  const want = [].concat(statuses);
  assert.ok(want.includes(res.status), `${what}: HTTP ${res.status}, expected ${want.join('/')}; body: ${String(res.body).slice(0, 300)}`);
  assert.match(String(res.headers['content-type']), /^application\/json/, `${what}: content-type ${res.headers['content-type']}; body: ${String(res.body).slice(0, 200)}`);
  assert.ok(res.json && res.json.error, `${what}: no JSON error body: ${String(res.body).slice(0, 200)}`);
  assert.doesNotMatch(res.body, /\n\s+at .+\(.+:\d+:\d+\)|<html|<!DOCTYPE/i, `${what}: stack trace or HTML in the body`);
}

/** Basic-auth header value. */
const basic = (user) => 'Basic ' + Buffer.from(user).toString('base64');

module.exports = { send, raw, parseResponse, assertJsonRefusal, basic };
