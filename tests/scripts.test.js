'use strict';
// make init, make help, the model-puller script (with a stand-in `ollama` CLI on PATH).
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const http = require('node:http');
const { spawn } = require('node:child_process');
const { ROOT, run, tmpDir } = require('./lib/helpers');

/** A copy of the files `make init` needs, so the developer's own .env is never touched. */
function scratchRepo() {
  const dir = tmpDir('stack-init-');
  fs.mkdirSync(path.join(dir, 'scripts'));
  for (const f of ['scripts/init-env.sh', 'scripts/compose.sh', 'scripts/env.sh', 'scripts/up.sh', '.env.example', 'Makefile']) {
    fs.copyFileSync(path.join(ROOT, f), path.join(dir, f));
  }
  return dir;
}

test('make init creates .env with generated passwords once, and never overwrites it', () => {
  const dir = scratchRepo();
  const first = run('make', ['-s', 'init'], { cwd: dir });
  assert.equal(first.status, 0, first.stderr);
  const env = fs.readFileSync(path.join(dir, '.env'), 'utf8');
  const users = /^AUTH_USERS=(.*)$/m.exec(env)[1];
  const m = /^admin:([A-Za-z0-9]{24}),waldus:([A-Za-z0-9]{24})$/.exec(users);
  assert.ok(m, `AUTH_USERS=${users.replace(/:[^,]*/g, ':***')}`);
  assert.notEqual(m[1], m[2]);
  assert.ok(first.stdout.includes(m[1]) && first.stdout.includes(m[2]), 'passwords shown once on screen');
  assert.match(env, /^ADMIN_USERS=admin$/m);
  assert.equal(fs.statSync(path.join(dir, '.env')).mode & 0o777, 0o600);
  // everything else is the example, line for line
  const strip = (s) => s.split('\n').filter((l) => !/^(AUTH|ADMIN)_USERS=/.test(l));
  assert.deepEqual(strip(env), strip(fs.readFileSync(path.join(dir, '.env.example'), 'utf8')));

  fs.appendFileSync(path.join(dir, '.env'), 'MY_EDIT=1\n');
  const second = run('make', ['-s', 'init'], { cwd: dir });
  assert.equal(second.status, 0);
  assert.match(second.stdout, /already exists/);
  assert.ok(!second.stdout.includes(m[1]), 'no password shown the second time');
  assert.match(fs.readFileSync(path.join(dir, '.env'), 'utf8'), /^MY_EDIT=1$/m, '.env left as it was');
});

test('make help is the default target and lists every target the issue names', () => {
  const r = run('make', ['-s'], { cwd: ROOT });
  assert.equal(r.status, 0);
  for (const t of ['help', 'init', 'up', 'dev', 'dev-cpu', 'down', 'logs', 'ps', 'pull', 'models', 'tunnel-url', 'test']) {
    assert.match(r.stdout, new RegExp(`make ${t} `), t);
  }
});

function fakeOllamaBin(present) {
  const dir = tmpDir('fake-ollama-cli-');
  const log = path.join(dir, 'calls.log');
  fs.writeFileSync(path.join(dir, 'ollama'), `#!/bin/sh
echo "$*" >> "${log}"
case "$1" in
  list) exit 0 ;;
  show) case " ${present.join(' ')} " in *" $2 "*) exit 0 ;; esac; echo "Error: model '$2' not found" >&2; exit 1 ;;
  pull) case "$2" in fail*) echo "Error: pull model manifest: file does not exist" >&2; exit 1 ;; esac; echo "pulling manifest"; echo success ;;
  run) exit 0 ;;
esac
`, { mode: 0o755 });
  return { dir, calls: () => fs.readFileSync(log, "utf8").split("\n").map((l) => l.trim()).filter(Boolean) };
}
function puller(bin, env) {
  return run('sh', [path.join(ROOT, 'docker', 'model-puller', 'pull-models.sh')], {
    env: { PATH: `${bin.dir}:${process.env.PATH}`, ...env },
  });
}

test('model-puller: pulls what is missing, skips what is present, warms the default model', () => {
  const bin = fakeOllamaBin(['llama3.1:8b']);
  const r = puller(bin, { MODELS: 'llama3.1:8b, mistral:7b,nomic-embed-text', WARM_MODEL: 'llama3.1:8b', WARM_KEEP_ALIVE: '24h' });
  assert.equal(r.status, 0, r.stderr);
  const calls = bin.calls();
  assert.ok(!calls.includes('pull llama3.1:8b'), 'a present model is not pulled again');
  assert.ok(calls.includes('pull mistral:7b') && calls.includes('pull nomic-embed-text'));
  assert.ok(calls.includes('run llama3.1:8b --keepalive 24h'), `warm-up call: ${calls.join(' | ')}`);
  assert.match(r.stdout, /all 3 model\(s\) present/);
});

test('model-puller: exits non-zero naming the model that failed, and stops there', () => {
  const bin = fakeOllamaBin([]);
  const r = puller(bin, { MODELS: 'llama3.1:8b,fail-model:1b,nomic-embed-text', WARM_MODEL: 'llama3.1:8b' });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /FAILED to pull model 'fail-model:1b'/);
  assert.ok(!bin.calls().includes('pull nomic-embed-text'));
  assert.ok(!bin.calls().some((c) => c.startsWith('run ')), 'no warm-up after a failure');
});

test('model-puller: an empty MODELS is an error', () => {
  const r = puller(fakeOllamaBin([]), { MODELS: ' , ' });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /MODELS is empty/);
});

/** `make up` with a stand-in compose command that records its arguments, and a /health answering 200. */
async function makeUp(dir, env = {}) {
  const calls = path.join(dir, 'compose-calls.log');
  const stub = path.join(dir, 'compose-stub');
  fs.writeFileSync(stub, `#!/bin/sh\necho "$*" >> "${calls}"\n`, { mode: 0o755 });
  const server = http.createServer((req, res) => res.end(req.url === '/health' ? '{"status":"ok"}' : ''));
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  try {
    // AUTH_USERS: undefined = not inherited (spawn drops undefined values)
    const child = spawn('make', ['-s', 'up'], {
      cwd: dir,
      env: { ...process.env, COMPOSE_BIN: stub, UP_DOCTOR: '0', HTTP_PORT: String(server.address().port), GPU: '', TUNNEL: '', TUNNEL_TOKEN: '', AUTH_USERS: undefined, COMPOSE_PROJECT_NAME: '', ...env },
    });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    const status = await new Promise((r) => child.on('exit', r));
    return { status, out, calls: fs.existsSync(calls) ? fs.readFileSync(calls, 'utf8').trim().split('\n') : [] };
  } finally {
    server.close();
  }
}

test('make up without .env: runs init first, then the server combination, and waits for /health', async () => {
  const dir = scratchRepo();
  const r = await makeUp(dir);
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /no \.env yet - running `make init` first/);
  assert.match(r.out, /created \.env/);
  assert.ok(fs.existsSync(path.join(dir, '.env')));
  assert.equal(r.calls.length, 1, r.calls.join('\n'));
  assert.equal(r.calls[0], `--project-directory ${dir} -p ai-local-core -f docker-compose.yml -f docker-compose.gpu.yml -f compose/monitoring.yml --profile tunnel up -d --build --remove-orphans`);
  assert.match(r.out, /the API is at http:\/\/127\.0\.0\.1:\d+/);
  assert.equal(fs.readFileSync(path.join(dir, '.stack-mode'), 'utf8').trim(), 'server');
});

test('make up refuses to start when AUTH_USERS is empty, and says why', async () => {
  const dir = scratchRepo();
  fs.writeFileSync(path.join(dir, '.env'), fs.readFileSync(path.join(dir, '.env.example'), 'utf8'));
  const r = await makeUp(dir);
  assert.notEqual(r.status, 0);
  assert.match(r.out, /AUTH_USERS is empty .* refusing to start/);
  assert.deepEqual(r.calls, [], 'compose was never called');
});

test('make up: when compose fails, the model-puller log tail (naming the model) is shown and the exit is non-zero', async () => {
  const dir = scratchRepo();
  const calls = path.join(dir, 'calls.log');
  const stub = path.join(dir, 'compose-failing');
  // `up` fails like compose does when the puller exits 1; `logs` prints what the puller printed
  fs.writeFileSync(stub, `#!/bin/sh
echo "$*" >> "${calls}"
case "$*" in
  *" up "*) echo "ERROR: for api  Container \\"abc\\" exited with code 1." >&2; exit 1 ;;
  *" logs "*) echo "model-puller_1  | model-puller: FAILED to pull model 'fail-model:1b'" ;;
esac
`, { mode: 0o755 });
  const r = run('make', ['-s', 'up'], { cwd: dir, env: { ...process.env, COMPOSE_BIN: stub, UP_DOCTOR: '0', GPU: '', TUNNEL: '', TUNNEL_TOKEN: '', COMPOSE_PROJECT_NAME: '' } });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /FAILED to pull model 'fail-model:1b'/);
  assert.match(r.stderr, /up: FAILED/);
  const log = fs.readFileSync(calls, 'utf8');
  assert.match(log, /logs --no-color --tail=15 model-puller/);
});

test('the API runs with the same memory settings in the image and in scripts/local-stack.sh (make bench measures the latter)', () => {
  const dockerfile = fs.readFileSync(path.join(ROOT, 'docker/api/Dockerfile'), 'utf8');
  const stack = fs.readFileSync(path.join(ROOT, 'scripts/local-stack.sh'), 'utf8');
  const env = ['MALLOC_ARENA_MAX=2', 'MALLOC_TRIM_THRESHOLD_=131072', 'MALLOC_MMAP_THRESHOLD_=131072'];
  for (const kv of env) {
    assert.ok(dockerfile.includes(kv), `Dockerfile lacks ${kv}`);
    assert.ok(stack.includes(kv), `local-stack.sh lacks ${kv}`);
  }
  // the V8 flags of the command that starts the API, in order, in both
  const cmd = /CMD \["node", ((?:"--[a-z-]+=\d+", )+)"dist\/main\.js"\]/.exec(dockerfile);
  assert.ok(cmd, 'the Dockerfile starts node with V8 flags then dist/main.js');
  const imageFlags = [...cmd[1].matchAll(/"(--[a-z-]+=\d+)"/g)].map((m) => m[1]);
  assert.deepEqual(imageFlags, ['--max-semi-space-size=4', '--heap-growing-percent=20']);
  const line = /node ((?:--[a-z-]+=\d+ )+)"\$api_dir\/dist\/main\.js"/.exec(stack);
  assert.ok(line, 'local-stack.sh starts node with V8 flags then dist/main.js');
  assert.deepEqual(line[1].trim().split(' '), imageFlags);
});
