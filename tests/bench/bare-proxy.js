#!/usr/bin/env node
'use strict';
/**
 * The floor of what any Node gateway can cost: a pass-through proxy with nothing else in it (no
 * auth, no parsing, no logging). The benchmark runs it beside the API in the same rounds, so that
 * "the API adds X ms" can be read against "Node's HTTP stack itself adds Y ms" on the same machine.
 *
 *   node tests/bench/bare-proxy.js --upstream http://127.0.0.1:11434 [--port 0]
 *
 * Prints `BENCH_BARE_PROXY_URL=http://127.0.0.1:<port>` once listening; exits on SIGTERM/SIGINT.
 */
const http = require('node:http');

const args = process.argv.slice(2);
const arg = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : dflt;
};
const upstream = new URL(arg('--upstream', 'http://127.0.0.1:11434'));
const PORT = Number(arg('--port', 0));

// keep-alive to the upstream, as every real gateway (and the API's axios agent) does
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

const server = http.createServer((req, res) => {
  const out = http.request(
    { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers, agent },
    (up) => {
      res.writeHead(up.statusCode, up.headers);
      up.pipe(res);
    },
  );
  // a broken upstream is a 502, not a crash (the benchmark counts it as a failed request)
  out.on('error', () => {
    if (!res.headersSent) res.writeHead(502);
    res.end();
  });
  req.pipe(out);
});
server.keepAliveTimeout = 60_000;
server.listen(PORT, '127.0.0.1', () => {
  process.stdout.write(`BENCH_BARE_PROXY_URL=http://127.0.0.1:${server.address().port}\n`);
});
const stop = () => server.close(() => process.exit(0)) && setTimeout(() => process.exit(0), 500).unref();
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
