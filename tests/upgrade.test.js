'use strict';
// make upgrade with a stand-in engine: one node script on PATH plays `docker` and the compose command
// (COMPOSE_BIN) over a JSON state (local image tags, what the registry would give, containers, which
// image IDs come up unhealthy). Checked: the download happens before anything is recreated, only the
// services whose image changed are recreated, volumes are never removed, and an unhealthy api or nginx
// puts the previous image IDs back under the pinned names.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { ROOT, run, tmpDir } = require('./lib/helpers');

const ENGINE = String.raw`#!/usr/bin/env node
// stand-in docker + compose over state.json (see tests/upgrade.test.js)
const fs = require('fs'), path = require('path');
const file = process.env.FAKE_STATE;
const st = JSON.parse(fs.readFileSync(file, 'utf8'));
const save = () => fs.writeFileSync(file, JSON.stringify(st, null, 1));
const me = path.basename(process.argv[1]);
let a = process.argv.slice(2);
st.log.push(me + ' ' + a.join(' '));
const out = (s) => process.stdout.write(s + '\n');
const done = (code = 0) => { save(); process.exit(code); };
const SERVICES = { ollama: 'ollama/ollama:0.20.6', api: 'ai-local-core/api:local', nginx: 'nginx:1.28.0', cloudflared: 'cloudflare/cloudflared:2025.11.1' };
Object.assign(SERVICES, st.pins || {});
const health = (c) => (st.unhealthy.includes(c.imageId) ? 'unhealthy' : 'healthy');
let nextId = st.nextId || 100;
if (me === 'fake-compose') {
  while (a.length && a[0].startsWith('-')) a = a.slice(a[0] === '--project-directory' || a[0] === '-p' || a[0] === '-f' || a[0] === '--profile' || a[0] === '--env-file' ? 2 : 1);
  const [sub, ...rest] = a;
  if (sub === 'version') { out('2.39.1'); done(); }
  if (sub === 'config' && rest[0] === '--services') { Object.keys(SERVICES).forEach((s) => out(s)); done(); }
  if (sub === 'config') {
    out('services:');
    for (const [s, img] of Object.entries(SERVICES)) { out('  ' + s + ':'); if (s === 'api') out('    build:\n      context: /x'); out('    image: ' + img); }
    out('volumes:\n  ollama-models: {}'); done();
  }
  if (sub === 'pull') {
    if (st.failPull) { process.stderr.write('pull access denied / network unreachable\n'); done(1); }
    for (const s of rest) { const n = SERVICES[s]; if (st.registry[n]) st.images[n] = st.registry[n]; }
    done();
  }
  if (sub === 'build') { st.images[SERVICES.api] = st.buildId || st.images[SERVICES.api]; done(); }
  if (sub === 'up') {
    if (st.stopped.length || st.containers.some((c) => c.stoppedDuringPull)) done(1);
    for (const [s, n] of Object.entries(SERVICES)) {
      const want = st.images[n];
      const c = st.containers.find((x) => x.service === s);
      if (c && c.imageId === want && c.imageName === n) continue;
      st.containers = st.containers.filter((x) => x.service !== s);
      st.containers.push({ id: 'c' + (nextId++), service: s, imageId: want, imageName: n });
    }
    st.nextId = nextId; done();
  }
  if (sub === 'ps' || sub === 'logs') { out('(' + sub + ')'); done(); }
  if (sub === 'down') { st.volumesRemoved = rest.includes('-v'); st.containers = []; done(); }
  process.stderr.write('fake-compose: unexpected ' + a.join(' ') + '\n'); done(99);
}
// docker
const j = a.join(' ');
const byId = (id) => st.containers.find((c) => c.id === id);
let m;
if (j === 'version --format {{.Server.Version}}') { out('27.5.1'); done(); }
if (a[0] === 'ps') {
  const svc = (j.match(/service=([\w-]+)/) || [])[1];
  const list = st.containers.filter((c) => !svc || c.service === svc);
  if (a.includes('-q')) list.forEach((c) => out(c.id));
  else if (j.includes('{{.Ports}}')) list.filter((c) => c.service === 'nginx').forEach(() => out('127.0.0.1:' + st.port + '->80/tcp'));
  else list.forEach((c) => out(c.service + ' ' + c.id));
  done();
}
if ((m = j.match(/^inspect -f \{\{\.Image\}\} \{\{\.Config\.Image\}\} (\S+)$/))) { const c = byId(m[1]); if (!c) done(1); out(c.imageId + ' ' + c.imageName); done(); }
if ((m = j.match(/^inspect -f \{\{if \.State\.Health\}\}.* (\S+)$/))) { const c = byId(m[1]); if (!c) done(1); out(health(c)); done(); }
if ((m = j.match(/^image inspect -f \{\{\.Id\}\} (\S+)$/))) { if (!st.images[m[1]]) done(1); out(st.images[m[1]]); done(); }
if (a[0] === 'tag') { st.images[a[2]] = a[1]; st.tags.push(a[1] + ' ' + a[2]); done(); }
process.stderr.write('fake docker: unexpected ' + j + '\n'); done(99);
`;

function setup(state) {
  const dir = tmpDir('upgrade-');
  for (const f of ['scripts/upgrade.sh', 'scripts/doctor.sh', 'scripts/compose.sh', 'scripts/env.sh', 'docker-compose.yml', '.env.example', 'Makefile']) {
    fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    fs.copyFileSync(path.join(ROOT, f), path.join(dir, f));
  }
  const port = 20000 + Math.floor(Math.random() * 20000);
  fs.writeFileSync(path.join(dir, '.env'), `COMPOSE_PROJECT_NAME=alc\nHTTP_PORT=${port}\nGPU=0\nAUTH_USERS=admin:Zq4mT9vLx2Rb7NcK8pWd\n`, { mode: 0o600 });
  fs.writeFileSync(path.join(dir, '.stack-mode'), 'server\n');
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin);
  fs.writeFileSync(path.join(bin, 'docker'), ENGINE, { mode: 0o755 });
  fs.writeFileSync(path.join(bin, 'fake-compose'), ENGINE, { mode: 0o755 });
  const images = { 'ollama/ollama:0.20.6': 'sha256:o1', 'ai-local-core/api:local': 'sha256:a1', 'nginx:1.28.0': 'sha256:n1', 'cloudflare/cloudflared:2025.11.1': 'sha256:f1' };
  const st = {
    port, images, registry: {}, unhealthy: [], stopped: [], tags: [], log: [],
    containers: [['ollama', 'ollama/ollama:0.20.6'], ['api', 'ai-local-core/api:local'], ['nginx', 'nginx:1.28.0'], ['cloudflared', 'cloudflare/cloudflared:2025.11.1']]
      .map(([s, n], i) => ({ id: `c${i + 1}`, service: s, imageId: images[n], imageName: n })),
    ...state,
  };
  fs.writeFileSync(path.join(dir, 'state.json'), JSON.stringify(st));
  return { dir, bin, state: () => JSON.parse(fs.readFileSync(path.join(dir, 'state.json'), 'utf8')) };
}
function upgrade(t) {
  return run(path.join(t.dir, 'scripts', 'upgrade.sh'), [], { cwd: t.dir, env: { ...process.env, PATH: `${t.bin}:${process.env.PATH}`, FAKE_STATE: path.join(t.dir, 'state.json'),
    COMPOSE_BIN: 'fake-compose', UPGRADE_WAIT_S: '6', COMPOSE_PROJECT_NAME: '', DOCKER_HOST: '' } });
}
const svc = (st, s) => st.containers.find((c) => c.service === s);

test('upgrade: pulls first, recreates only the services whose image changed, waits for health', () => {
  // the checkout pins a new nginx tag and brings a new api build; ollama and cloudflared unchanged
  const t = setup({ pins: { nginx: 'nginx:1.28.1' }, registry: { 'nginx:1.28.1': 'sha256:n2', 'ollama/ollama:0.20.6': 'sha256:o1' }, buildId: 'sha256:a2' });
  const r = upgrade(t);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  const st = t.state();
  // order: every download (pull, build) before the first `up`
  const cmds = st.log.filter((l) => /^fake-compose .* (pull|build|up)( |$)/.test(l)).map((l) => l.match(/ (pull|build|up)( |$)/)[1]);
  assert.deepEqual(cmds, ['pull', 'build', 'up'], st.log.join('\n'));
  const pulled = st.log.find((l) => / pull /.test(l));
  assert.match(pulled, / pull cloudflared nginx ollama$/, 'api (built) is not pulled');
  assert.equal(svc(st, 'ollama').id, 'c1', 'ollama not recreated');
  assert.equal(svc(st, 'cloudflared').id, 'c4', 'cloudflared not recreated');
  assert.notEqual(svc(st, 'api').id, 'c2');
  assert.equal(svc(st, 'api').imageId, 'sha256:a2');
  assert.equal(svc(st, 'nginx').imageName, 'nginx:1.28.1');
  assert.match(r.stdout, /recreated: api nginx$/m);
  assert.match(r.stdout, /done: api and nginx healthy/);
  assert.ok(!st.log.some((l) => / down( |$)/.test(l) || / rm /.test(l)), 'nothing stopped or removed: volumes kept');
  assert.match(fs.readFileSync(path.join(t.dir, '.upgrade-previous'), 'utf8'), /^nginx sha256:n1 nginx:1\.28\.0 c3$/m);
});

test('upgrade: nothing to do leaves every container as it is', () => {
  const t = setup({});
  const r = upgrade(t);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.deepEqual(t.state().containers.map((c) => c.id), ['c1', 'c2', 'c3', 'c4']);
  assert.match(r.stdout, /recreated: nothing/);
});

test('upgrade: a failed download changes nothing', () => {
  const t = setup({ pins: { nginx: 'nginx:1.28.1' }, failPull: true });
  const r = upgrade(t);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /pull failed - nothing changed, the stack runs as before/);
  const st = t.state();
  assert.deepEqual(st.containers.map((c) => c.id), ['c1', 'c2', 'c3', 'c4']);
  assert.ok(!st.log.some((l) => / up /.test(l)), 'no up after a failed pull');
});

test('upgrade: an unhealthy new api is rolled back to the previous image ID and says so', () => {
  const t = setup({ pins: { nginx: 'nginx:1.28.1' }, registry: { 'nginx:1.28.1': 'sha256:n2' }, buildId: 'sha256:a2', unhealthy: ['sha256:a2'] });
  const r = upgrade(t);
  assert.equal(r.status, 2, r.stdout + r.stderr);
  const st = t.state();
  assert.deepEqual(st.tags.sort(), ['sha256:a1 ai-local-core/api:local', 'sha256:n1 nginx:1.28.1']);
  assert.equal(svc(st, 'api').imageId, 'sha256:a1', 'api runs its previous image');
  assert.equal(svc(st, 'nginx').imageId, 'sha256:n1', 'nginx runs its previous image');
  assert.equal(svc(st, 'ollama').id, 'c1', 'ollama untouched');
  assert.match(r.stderr, /upgrade: FAILED \(api unhealthy\) - putting the previous images back/);
  assert.match(r.stderr, /api: ai-local-core\/api:local now points at the previous image sha256:a1/);
  assert.match(r.stderr, /ROLLED BACK: api nginx; api and nginx healthy again on the previous images/);
  assert.ok(!st.log.some((l) => / down( |$)/.test(l)), 'volumes kept');
});

test('upgrade: refuses when the stack is not running', () => {
  const t = setup({ containers: [] });
  const r = upgrade(t);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /is not running - `make up` starts it/);
});
