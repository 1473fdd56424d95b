'use strict';
/**
 * Preloaded into the API by the benchmark only (NODE_OPTIONS="-r .../heap-probe.js"), never in
 * production. On SIGUSR2: a full garbage collection, then process.memoryUsage() appended as one
 * JSON line to $BENCH_HEAP_PROBE_OUT. That separates what V8 keeps alive (a leak would grow it)
 * from RSS, which also holds heap that V8 has grown into and not given back yet.
 */
const fs = require('node:fs');
const v8 = require('node:v8');
const vm = require('node:vm');

const out = process.env.BENCH_HEAP_PROBE_OUT;
if (out) {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc');
  process.on('SIGUSR2', () => {
    gc();
    fs.appendFileSync(out, JSON.stringify({ at: Date.now(), ...process.memoryUsage() }) + '\n');
  });
}
