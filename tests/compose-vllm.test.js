'use strict';
// The vLLM combination (docker-compose.yml + compose/vllm.yml): validated by docker-compose 1.29's
// own parser, plus assertions on the merged result. It cannot run here (no GPU, no vLLM image).
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { ROOT, EMPTY_ENV, run } = require('./lib/helpers');

const FILES = ['-f', 'docker-compose.yml', '-f', 'compose/vllm.yml'];

/** `docker-compose ... config` of the vLLM combination, as an object (or the failed result). */
function config({ env = {}, envFile = EMPTY_ENV, profile } = {}) {
  const args = ['--project-directory', ROOT, '-p', 'ai-local-core', '--env-file', envFile, ...FILES, ...(profile ? ['--profile', profile] : []), 'config'];
  // the caller's own VLLM_*/HF_TOKEN must not change what the test sees
  const outer = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(VLLM_|HF_TOKEN$)/.test(k)));
  const fullEnv = { ...outer, COMPOSE_PROJECT_NAME: '', AUTH_USERS: 'admin:Kq8vZ3mN7xR2tLw5', ...env };
  for (const k of Object.keys(fullEnv)) if (fullEnv[k] === undefined) delete fullEnv[k];
  const r = run('docker-compose', args, { env: fullEnv });
  assert.equal(r.status, 0, `docker-compose config failed: ${r.stderr}`);
  const py = run('python3', ['-c', 'import sys, json, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)'], { input: r.stdout });
  assert.equal(py.status, 0, py.stderr);
  return JSON.parse(py.stdout);
}

const base = config();
const api = base.services.api;

test('docker-compose 1.29 accepts the vLLM combination (config -q), with and without the tunnel profile', () => {
  for (const profile of [undefined, 'tunnel']) {
    const args = ['--project-directory', ROOT, '-p', 'ai-local-core', '--env-file', EMPTY_ENV, ...FILES, ...(profile ? ['--profile', profile] : []), 'config', '-q'];
    const r = run('docker-compose', args, { env: { ...process.env, AUTH_USERS: 'admin:Kq8vZ3mN7xR2tLw5' } });
    assert.equal(r.status, 0, r.stderr);
  }
  const text = fs.readFileSync(path.join(ROOT, 'compose', 'vllm.yml'), 'utf8').replace(/#.*$/gm, '');
  assert.doesNotMatch(text, /^name:|^include:|start_interval|!reset|@sha256:/m);
  assert.doesNotMatch(text, /^\s+restart: true/m);
});

test('vllm: the official OpenAI server image at a pinned version, on the GPU, unpublished', () => {
  const v = base.services.vllm;
  assert.match(v.image, /^vllm\/vllm-openai:v\d+\.\d+\.\d+$/);
  assert.deepEqual(v.deploy.resources.reservations.devices, [{ driver: 'nvidia', count: 'all', capabilities: ['gpu'] }]);
  assert.ok(v.deploy.resources.limits.memory, 'memory limit');
  assert.equal(v.ports, undefined, 'vLLM is reached over the backend network only');
  assert.deepEqual(Object.keys(v.networks), ['backend']);
  assert.equal(v.restart, 'unless-stopped');
  assert.equal(v.logging.options['max-size'], '10m');
});

test('vllm: model, context, memory share and port on the command line; weights cached in a volume; shared memory raised', () => {
  const v = base.services.vllm;
  const arg = (flag) => v.command[v.command.indexOf(flag) + 1];
  assert.deepEqual(v.entrypoint, ['python3', '-m', 'vllm.entrypoints.openai.api_server']);
  assert.equal(arg('--model'), 'Qwen/Qwen2.5-7B-Instruct-AWQ');
  assert.equal(arg('--served-model-name'), 'qwen2.5-7b-instruct');
  assert.equal(arg('--max-model-len'), '8192');
  assert.equal(arg('--gpu-memory-utilization'), '0.90');
  assert.equal(arg('--port'), '8000');
  assert.ok(v.volumes.some((m) => (m.target || String(m).split(':')[1]) === '/root/.cache/huggingface'), 'HF cache volume');
  assert.ok('hf-cache' in base.volumes);
  assert.ok(v.shm_size, 'shm_size');
  const custom = config({ env: { VLLM_MODEL: 'hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4', VLLM_MAX_MODEL_LEN: '4096', VLLM_GPU_MEMORY_UTILIZATION: '0.85' } }).services.vllm;
  const carg = (flag) => custom.command[custom.command.indexOf(flag) + 1];
  assert.equal(carg('--model'), 'hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4');
  assert.equal(carg('--max-model-len'), '4096');
  assert.equal(carg('--gpu-memory-utilization'), '0.85');
});

test('vllm: HF_TOKEN comes from the env file; the healthcheck asks /health with arguments free of spaces', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vllm-env-'));
  const envFile = path.join(dir, '.env');
  fs.writeFileSync(envFile, 'HF_TOKEN=hf_Tz4qW9nB2xK7mR5vL8pC\n');
  try {
    assert.equal(config({ envFile }).services.vllm.environment.HF_TOKEN, 'hf_Tz4qW9nB2xK7mR5vL8pC');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  assert.equal(base.services.vllm.environment.HF_TOKEN, '');
  const hc = base.services.vllm.healthcheck;
  assert.deepEqual(hc.test.slice(0, 3), ['CMD', 'python3', '-c']);
  assert.match(hc.test[3], /http:\/\/127\.0\.0\.1:8000\/health/);
  for (const a of hc.test) assert.doesNotMatch(a, /\s/, 'podman splits healthcheck arguments on spaces');
  assert.ok(hc.start_period && hc.timeout && hc.retries);
});

test('ollama and the model puller run no container (scale 0); no GPU reservation besides vLLM', () => {
  assert.equal(base.services.ollama.scale, 0);
  assert.equal(base.services['model-puller'].scale, 0);
  for (const [name, s] of Object.entries(base.services)) {
    if (name !== 'vllm') assert.equal(s.deploy?.resources?.reservations, undefined, `${name} reserves a device`);
  }
});

test('api: waits for vLLM to be healthy; the ollama conditions it keeps are met by zero containers', () => {
  assert.deepEqual(api.depends_on.vllm, { condition: 'service_healthy' });
  assert.equal(api.depends_on.ollama.condition, 'service_healthy');
  assert.equal(api.depends_on['model-puller'].condition, 'service_completed_successfully');
  assert.deepEqual(base.services.nginx.depends_on, { api: { condition: 'service_healthy' } });
});

test('api: UPSTREAMS is one openai upstream at the vllm service, MODEL_DEFAULT is the served name', () => {
  const ups = JSON.parse(api.environment.UPSTREAMS);
  assert.deepEqual(ups, [{ name: 'vllm', url: 'http://vllm:8000', kind: 'openai', priority: 1, maxConcurrent: 8 }]);
  assert.equal(api.environment.MODEL_DEFAULT, 'qwen2.5-7b-instruct');
  assert.equal(api.environment.WARM_DEFAULT_MODEL, 'false');
  const renamed = config({ env: { VLLM_SERVED_MODEL_NAME: 'llama3.1-8b' } });
  assert.equal(renamed.services.api.environment.MODEL_DEFAULT, 'llama3.1-8b');
  assert.equal(renamed.services.vllm.command[renamed.services.vllm.command.indexOf('--served-model-name') + 1], 'llama3.1-8b');
});

test('api: VLLM_EXTRA_UPSTREAMS appends entries (the Mac over Tailscale) and the result stays valid JSON', () => {
  const extra = ',{"name":"mac","url":"http://macbook.tail1234.ts.net:11434","kind":"ollama","priority":2,"maxConcurrent":1}';
  const ups = JSON.parse(config({ env: { VLLM_EXTRA_UPSTREAMS: extra, VLLM_MAX_CONCURRENT: '12' } }).services.api.environment.UPSTREAMS);
  assert.deepEqual(ups.map((u) => [u.name, u.kind, u.priority, u.maxConcurrent]), [
    ['vllm', 'openai', 1, 12],
    ['mac', 'ollama', 2, 1],
  ]);
});

test('only nginx publishes a port, on 127.0.0.1', () => {
  for (const [name, s] of Object.entries(base.services)) {
    const ports = s.ports || [];
    if (name === 'nginx') assert.match(String(ports[0]), /^127\.0\.0\.1:8080:80(\/tcp)?$/);
    else assert.deepEqual(ports, [], `${name} publishes a port`);
  }
});

test('make up ENGINE=vllm: scripts/compose.sh puts compose/vllm.yml in place of the NVIDIA overlay; ENGINE unset keeps ollama', () => {
  const print = (env) => {
    const r = run('scripts/compose.sh', ['server', '--print'], { env: { ...process.env, STACK_ENV_FILE: EMPTY_ENV, MONITORING: '0', TUNNEL: '0', ...env } });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.split('\n');
  };
  const vllm = print({ ENGINE: 'vllm' });
  assert.ok(vllm.includes('compose/vllm.yml'), vllm.join(' '));
  assert.ok(!vllm.includes('docker-compose.gpu.yml'), vllm.join(' '));
  const ollama = print({ ENGINE: '' });
  assert.ok(ollama.includes('docker-compose.gpu.yml') && !ollama.includes('compose/vllm.yml'), ollama.join(' '));
  const bad = run('scripts/compose.sh', ['server', '--print'], { env: { ...process.env, STACK_ENV_FILE: EMPTY_ENV, ENGINE: 'tgi' } });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /unknown ENGINE 'tgi'/);
});
