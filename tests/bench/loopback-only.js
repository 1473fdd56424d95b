'use strict';
/**
 * Preloaded (node --require) into the third-party comparison gateway the benchmark starts
 * (Portkey), never into the API. The benchmark may only send traffic on loopback, and a gateway
 * built for the cloud may phone home (telemetry, pricing lists, DNS-over-HTTPS checks), so:
 *
 * - a server that listens without naming an address listens on 127.0.0.1, not on every interface;
 * - an outgoing TCP connection to anything but loopback (or a Unix socket) is refused before any
 *   name lookup or packet, and written as one JSON line to $BENCH_OUTBOUND_LOG, which the
 *   benchmark reports ("Portkey tried to reach ...");
 * - the port it listens on is printed as BENCH_LISTEN_PORT=<port>, for the benchmark to wait on.
 */
const fs = require('node:fs');
const net = require('node:net');

const LOG = process.env.BENCH_OUTBOUND_LOG;
const LOOPBACK = /^(localhost|127(?:\.\d{1,3}){3}|::1|::ffff:127(?:\.\d{1,3}){3})$/i;

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  // listen(port[, cb]) or listen({ port }) without a host would bind every interface
  if (typeof args[0] === 'number' || (typeof args[0] === 'string' && /^\d+$/.test(args[0]))) {
    if (args[1] === undefined || typeof args[1] === 'function') args.splice(1, args[1] === undefined ? 1 : 0, '127.0.0.1');
  } else if (args[0] && typeof args[0] === 'object' && !Array.isArray(args[0]) && args[0].port !== undefined && !args[0].host && !args[0].path) {
    args[0] = { ...args[0], host: '127.0.0.1' };
  }
  this.once('listening', () => {
    const a = this.address();
    // a newline first: the process may be halfway through a line of its own
    if (a && typeof a === 'object') process.stdout.write(`\nBENCH_LISTEN_PORT=${a.port}\n`);
  });
  return listen.apply(this, args);
};

/** host and port of Socket#connect's many call shapes (net.connect passes [options, cb]). */
function target(args) {
  let a = args[0];
  if (Array.isArray(a)) a = a[0];
  if (a && typeof a === 'object') return { host: a.host ?? 'localhost', port: a.port, path: a.path };
  if (typeof a === 'string' && !/^\d+$/.test(a)) return { path: a };
  return { host: typeof args[1] === 'string' ? args[1] : 'localhost', port: a };
}

const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (...args) {
  const t = target(args);
  if (t.path || LOOPBACK.test(String(t.host).replace(/^\[|\]$/g, ''))) return connect.apply(this, args);
  if (LOG) fs.appendFileSync(LOG, JSON.stringify({ at: new Date().toISOString(), host: t.host, port: t.port }) + '\n');
  const err = Object.assign(new Error(`refused by the benchmark's loopback-only guard: ${t.host}:${t.port}`), { code: 'ECONNREFUSED' });
  process.nextTick(() => this.destroy(err));
  return this;
};
