'use strict';
/**
 * Preloaded into the API by tests/bench/profile.js only (NODE_OPTIONS="--require .../cpu-probe.js"),
 * never in production. The first SIGUSR2 starts V8's sampling profiler, the next one stops it and
 * writes the profile (.cpuprofile JSON) to $BENCH_CPU_PROFILE_OUT. Signals, not --cpu-prof: the
 * profile then holds the measured requests only, not start-up, module loading and the warm-up.
 * (SIGUSR1 is Node's own: it opens the inspector.)
 */
const fs = require('node:fs');
const inspector = require('node:inspector');

const out = process.env.BENCH_CPU_PROFILE_OUT;
// 100 µs instead of V8's 1 ms: a request costs ~1-2 ms, so 1 ms sampling would see ~1 sample each
const intervalUs = Number(process.env.BENCH_CPU_PROFILE_INTERVAL_US || 100);

if (out) {
  const session = new inspector.Session();
  session.connect();
  let running = false;
  process.on('SIGUSR2', () => {
    if (!running) {
      running = true;
      // the marker file tells profile.js that sampling runs: it sends the measured requests only then
      const started = () => fs.writeFileSync(`${out}.started`, String(Date.now()));
      session.post('Profiler.enable', () => session.post('Profiler.setSamplingInterval', { interval: intervalUs }, () => session.post('Profiler.start', started)));
      return;
    }
    running = false;
    session.post('Profiler.stop', (err, res) => {
      // write then rename: the reader never sees half a file
      fs.writeFileSync(`${out}.part`, err ? JSON.stringify({ error: String(err) }) : JSON.stringify(res.profile));
      fs.renameSync(`${out}.part`, out);
    });
  });
}
