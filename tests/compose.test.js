'use strict';
// Every compose combination `make` uses, validated by a real compose parser (docker-compose 1.29:
// parse, merge, interpolate, reject unknown keys), plus assertions on the merged result.
const { missingTools, skipSuite } = require('./lib/skip');
// off CI a machine without these tools skips this file with one line (scripts/test-skip.sh)
if (skipSuite(__filename, missingTools(['docker-compose', 'python3-yaml']), 'apt-get install docker-compose python3-yaml')) return;
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { ROOT, EMPTY_ENV, run, composeConfig, composeArgs, enabledServices } = require('./lib/helpers');

const COMBOS = {
  'server (gpu, quick tunnel)': { mode: 'server', env: {} },
  'server (gpu, named tunnel)': { mode: 'server', env: { TUNNEL_TOKEN: 'eyJhIjoidGVzdCJ9' } },
  'server (no gpu, no tunnel)': { mode: 'server', env: { GPU: '0', TUNNEL: '0' } },
  'dev-cpu': { mode: 'dev-cpu', env: {} },
  dev: { mode: 'dev', env: {} },
  "server (.env sets the api's keep-alive, context, default model)": { mode: 'server', env: { OLLAMA_KEEP_ALIVE: '30m', NUM_CTX: '8192', MODEL_DEFAULT: 'qwen3:4b' } },
};
const cache = new Map();
function combo(name) {
  if (!cache.has(name)) {
    const { mode, env } = COMBOS[name];
    const args = composeArgs(mode, env);
    const config = composeConfig(mode, env);
    cache.set(name, { args, config, enabled: enabledServices(config, args) });
  }
  return cache.get(name);
}
const env = (svc) => svc.environment || {};

test('every combination is accepted by docker-compose 1.29 (config -q)', () => {
  for (const name of Object.keys(COMBOS)) assert.ok(combo(name).config.services, name);
});

test('the files carry no syntax that docker-compose 1.29 or the smoke run rejects', () => {
  const files = ['docker-compose.yml', 'docker-compose.gpu.yml', ...fs.readdirSync(path.join(ROOT, 'compose')).filter((f) => f.endsWith('.yml')).map((f) => `compose/${f}`)];
  for (const f of files) {
    const text = fs.readFileSync(path.join(ROOT, f), 'utf8').replace(/#.*$/gm, '');
    assert.doesNotMatch(text, /^name:|^include:|start_interval|!reset|@sha256:/m, f);
    assert.doesNotMatch(text, /^\s+restart: true/m, `${f}: depends_on.restart is compose-v2 only`);
  }
});

test('which services start in each combination', () => {
  const expect = {
    'server (gpu, quick tunnel)': ['alertmanager', 'api', 'cloudflared', 'docker-socket-proxy', 'gpu-exporter', 'model-puller', 'nginx', 'ollama', 'prometheus'],
    'server (gpu, named tunnel)': ['alertmanager', 'api', 'cloudflared', 'docker-socket-proxy', 'gpu-exporter', 'model-puller', 'nginx', 'ollama', 'prometheus'],
    'server (no gpu, no tunnel)': ['alertmanager', 'api', 'docker-socket-proxy', 'model-puller', 'nginx', 'ollama', 'prometheus'],
    'dev-cpu': ['api', 'docker-socket-proxy', 'model-puller', 'nginx', 'ollama'],
    dev: ['api', 'nginx'],
  };
  for (const [name, services] of Object.entries(expect)) {
    assert.deepEqual([...combo(name).enabled].sort(), services, name);
  }
});

test('only nginx is reachable from the host, on 127.0.0.1; ollama never on the server', () => {
  for (const name of Object.keys(COMBOS)) {
    const { config, enabled } = combo(name);
    for (const svc of enabled) {
      const ports = config.services[svc].ports || [];
      if (svc === 'nginx') {
        assert.equal(ports.length, 1, `${name}: nginx publishes one port`);
        assert.match(String(ports[0]), /^127\.0\.0\.1:8080:80(\/tcp)?$/, `${name}: nginx on loopback by default`);
      } else if (svc === 'ollama' && name === 'dev-cpu') {
        assert.deepEqual(ports.map((p) => String(p).replace(/\/tcp$/, '')), ['127.0.0.1:11434:11434'], 'dev-cpu: ollama on loopback only');
      } else {
        assert.deepEqual(ports, [], `${name}: ${svc} must not publish ports`);
      }
      assert.equal(config.services[svc].network_mode, undefined, `${name}: ${svc} network_mode`);
    }
  }
});

test('every image is pinned to an exact version, and the api image is built from docker/api', () => {
  for (const name of Object.keys(COMBOS)) {
    const { config, enabled } = combo(name);
    for (const svc of enabled) {
      const s = config.services[svc];
      if (svc === 'api') {
        assert.equal(s.build.dockerfile, '../../docker/api/Dockerfile');
        assert.equal(s.build.context, path.join(ROOT, 'services', 'api'));
        continue;
      }
      assert.match(s.image, /^[a-z0-9._/-]+:v?\d+\.\d+(\.\d+)?$/, `${name}: ${svc} image ${s.image} is not an exact version`);
    }
  }
  const dockerfile = fs.readFileSync(path.join(ROOT, 'docker', 'api', 'Dockerfile'), 'utf8');
  assert.match(dockerfile, /^ARG NODE_IMAGE=node:\d+\.\d+\.\d+-bookworm-slim$/m);
  assert.match(dockerfile, /npm ci --omit=dev/);
  assert.match(dockerfile, /^USER node$/m);
  assert.match(dockerfile, /^HEALTHCHECK .*CMD \["node", "dist\/healthcheck\.js"\]$/m);
});

test('healthchecks that the real images can run', () => {
  const { config } = combo('server (gpu, quick tunnel)');
  const hc = (svc) => config.services[svc].healthcheck.test;
  assert.deepEqual(hc('ollama'), ['CMD', 'ollama', 'list']);
  assert.deepEqual(hc('api'), ['CMD', 'node', 'dist/healthcheck.js']);
  assert.deepEqual(hc('nginx').slice(0, 2), ['CMD', 'curl']);
  assert.ok(hc('nginx').includes('-m'), 'nginx healthcheck has its own client timeout');
  assert.deepEqual(hc('cloudflared'), ['CMD', 'cloudflared', 'tunnel', '--metrics', 'localhost:2000', 'ready']);
  for (const svc of ['ollama', 'api', 'nginx', 'cloudflared']) {
    const h = config.services[svc].healthcheck;
    assert.ok(h.interval && h.timeout && h.retries, `${svc}: interval/timeout/retries`);
  }
  const dev = combo('dev').config.services;
  assert.deepEqual(dev.api.healthcheck.test, hc('api'));
  assert.deepEqual(dev.nginx.healthcheck.test, hc('nginx'));
});

test('start order: ollama healthy -> puller done -> api healthy -> nginx healthy -> cloudflared', () => {
  const s = combo('server (gpu, quick tunnel)').config.services;
  assert.deepEqual(s['model-puller'].depends_on, { ollama: { condition: 'service_healthy' } });
  assert.equal(s.api.depends_on['model-puller'].condition, 'service_completed_successfully');
  assert.equal(s.api.depends_on.ollama.condition, 'service_healthy');
  assert.equal(s.api.depends_on['docker-socket-proxy'].condition, 'service_started');
  assert.deepEqual(s.nginx.depends_on, { api: { condition: 'service_healthy' } });
  assert.deepEqual(s.cloudflared.depends_on, { nginx: { condition: 'service_healthy' } });
  assert.equal(combo('dev').config.services.nginx.depends_on.api.condition, 'service_healthy');
});

test('GPU reservation only with the GPU overlay', () => {
  const gpu = combo('server (gpu, quick tunnel)').config.services.ollama.deploy.resources.reservations.devices;
  assert.deepEqual(gpu, [{ driver: 'nvidia', count: 'all', capabilities: ['gpu'] }]);
  const exporter = combo('server (gpu, quick tunnel)').config.services['gpu-exporter'];
  assert.deepEqual(exporter.deploy.resources.reservations.devices, gpu, 'the exporter sees the same GPU');
  for (const name of ['server (no gpu, no tunnel)', 'dev-cpu']) {
    const { config } = combo(name);
    for (const [svc, s] of Object.entries(config.services)) {
      assert.equal(s.deploy?.resources?.reservations, undefined, `${name}: ${svc} has a reservation`);
      assert.equal(s.runtime, undefined);
    }
  }
});

test('cloudflared: quick tunnel by default, named tunnel with TUNNEL_TOKEN, metrics on a fixed address', () => {
  const quick = combo('server (gpu, quick tunnel)').config.services.cloudflared;
  assert.deepEqual(quick.profiles, ['tunnel']);
  assert.deepEqual(quick.command, ['tunnel', '--metrics', '0.0.0.0:2000', '--url', 'http://nginx:8081']);
  assert.equal(env(quick).TUNNEL_TOKEN, undefined);
  const named = combo('server (gpu, named tunnel)').config.services.cloudflared;
  assert.deepEqual(named.command, ['tunnel', '--metrics', '0.0.0.0:2000', 'run']);
  assert.equal(env(named).TUNNEL_TOKEN, 'eyJhIjoidGVzdCJ9');
  assert.ok(!composeArgs('server', { TUNNEL: '0', TUNNEL_TOKEN: 'x' }).includes('--profile'));
});

test('cloudflared goes to the unpublished tunnel listener; edge holds just nginx and cloudflared', () => {
  const { config } = combo('server (gpu, quick tunnel)');
  assert.equal(env(config.services.nginx).NGINX_TUNNEL_PORT, '8081');
  assert.ok(config.services.cloudflared.command.includes('http://nginx:8081'));
  assert.equal(config.networks.edge.ipam, undefined, 'no fixed subnet (collisions; podman compat)');
  const onEdge = Object.entries(config.services).filter(([, s]) => Object.keys(s.networks || {}).includes('edge')).map(([n]) => n);
  assert.deepEqual(onEdge.sort(), ['cloudflared', 'nginx']);
  assert.equal(config.networks['docker-api'].internal, true);
  const onDockerApi = Object.entries(config.services).filter(([, s]) => Object.keys(s.networks || {}).includes('docker-api')).map(([n]) => n);
  assert.deepEqual(onDockerApi.sort(), ['api', 'docker-socket-proxy']);
});

test('ollama: models volume, single-GPU tuning from .env, cloud off; the puller uses the same image', () => {
  const s = combo('server (gpu, quick tunnel)').config.services;
  assert.ok(s.ollama.volumes.some((v) => String(v.target || v).includes('/root/.ollama')));
  const e = env(s.ollama);
  for (const k of ['OLLAMA_NUM_PARALLEL', 'OLLAMA_MAX_LOADED_MODELS', 'OLLAMA_FLASH_ATTENTION']) assert.ok(e[k], k);
  // the api's keep-alive and context length: empty without .env (ollama's own default), .env's value with it
  assert.equal(e.OLLAMA_KEEP_ALIVE, '');
  const set = combo('server (.env sets the api\'s keep-alive, context, default model)').config.services;
  assert.equal(env(set.ollama).OLLAMA_KEEP_ALIVE, '30m');
  assert.equal(env(set.ollama).OLLAMA_CONTEXT_LENGTH, '8192');
  assert.deepEqual([env(set['model-puller']).WARM_MODEL, env(set['model-puller']).WARM_KEEP_ALIVE], ['qwen3:4b', '30m']);
  assert.deepEqual([env(set.api).OLLAMA_KEEP_ALIVE, env(set.api).NUM_CTX, env(set.api).MODEL_DEFAULT], ['30m', '8192', 'qwen3:4b']);
  assert.equal(e.OLLAMA_NO_CLOUD, '1');
  assert.equal(s['model-puller'].image, s.ollama.image);
  assert.equal(env(s['model-puller']).OLLAMA_HOST, 'ollama:11434');
  assert.equal(env(s['model-puller']).MODELS, 'llama3.1:8b,mistral:7b,nomic-embed-text,llava:7b');
  assert.equal(s['model-puller'].restart, 'no');
  assert.equal(env(combo('dev-cpu').config.services['model-puller']).MODELS, 'llama3.2:3b,phi3:mini,nomic-embed-text,moondream');
});

test('api: init, read-only root fs, non-root image, socket proxy instead of the socket, restart and log limits', () => {
  const { config, enabled } = combo('server (gpu, quick tunnel)');
  const api = config.services.api;
  assert.equal(api.init, true);
  assert.equal(api.read_only, true);
  assert.equal(env(api).DOCKER_HOST, 'tcp://docker-socket-proxy:2375');
  assert.equal(env(api).TRUST_PROXY, '1');
  assert.ok(!(api.volumes || []).some((v) => String(v.source || v).includes('docker.sock')), 'no socket in the api');
  const proxy = config.services['docker-socket-proxy'];
  assert.deepEqual(proxy.volumes, ['/var/run/docker.sock:/var/run/docker.sock:ro']);
  assert.equal(proxy.environment, undefined, 'no tecnativa-style CONTAINERS/POST/EXEC switches');
  const raw = fs.readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8');
  assert.ok(raw.includes('${DOCKER_SOCK_PATH:-/var/run/docker.sock}:/var/run/docker.sock:ro'));
  for (const svc of enabled) {
    const s = config.services[svc];
    assert.equal(s.restart, svc === 'model-puller' ? 'no' : 'unless-stopped', `${svc} restart`);
    assert.equal(s.logging?.options?.['max-size'], '10m', `${svc} log rotation`);
    assert.ok(s.deploy?.resources?.limits?.memory, `${svc} memory limit`);
  }
});

test('every variable the API reads is passed by compose and documented in .env.example', () => {
  const src = fs.readFileSync(path.join(ROOT, 'services', 'api', 'src', 'config.ts'), 'utf8');
  const keys = [...src.matchAll(/^\s+([A-Z][A-Z0-9_]+): Joi\./gm)].map((m) => m[1]);
  assert.ok(keys.length >= 30, `found ${keys.length} keys in config.ts`);
  const example = fs.readFileSync(path.join(ROOT, '.env.example'), 'utf8');
  const api = env(combo('server (gpu, quick tunnel)').config.services.api);
  const devApi = env(combo('dev').config.services.api);
  for (const k of keys) {
    assert.match(example, new RegExp(`^(# )?${k}=`, 'm'), `.env.example documents ${k}`);
    assert.ok(k in api, `docker-compose.yml passes ${k} to the api`);
    if (k !== 'DOCKER_HOST' && k !== 'OLLAMA_CONTAINER') assert.ok(k in devApi, `compose/dev.yml passes ${k} to the api`);
  }
  assert.doesNotMatch(example, /^DOCKER_HOST=/m, 'DOCKER_HOST in .env would redirect docker compose itself');
});

test('dev (Mac): the api talks to the native Ollama.app; api and nginx stay in step with the server', () => {
  const dev = combo('dev').config.services;
  const srv = combo('server (gpu, quick tunnel)').config.services;
  assert.equal(env(dev.api).OLLAMA_BASE_URL, 'http://host.docker.internal:11434');
  assert.ok(dev.api.extra_hosts.some((h) => String(h).startsWith('host.docker.internal')));
  for (const key of ['build', 'image', 'init', 'read_only', 'tmpfs', 'healthcheck', 'stop_grace_period', 'logging']) {
    assert.deepEqual(dev.api[key], srv.api[key], `api.${key}`);
  }
  for (const key of ['image', 'volumes', 'tmpfs', 'healthcheck', 'logging']) {
    const norm = (v) => (Array.isArray(v) ? [...v].sort() : v);
    assert.deepEqual(norm(dev.nginx[key]), norm(srv.nginx[key]), `nginx.${key}`);
  }
  assert.deepEqual(Object.keys(env(dev.nginx)).sort(), Object.keys(env(srv.nginx)).sort());
});

test('no AUTH_USERS: compose refuses to render, make up refuses to start', () => {
  const r = run(path.join(ROOT, 'scripts', 'compose.sh'), ['server', 'config', '-q'], {
    env: { ...process.env, STACK_ENV_FILE: EMPTY_ENV, COMPOSE_BIN: 'docker-compose', AUTH_USERS: '' },
  });
  assert.notEqual(r.status, 0);
  // the config itself refuses too, without the script (e.g. someone runs docker compose by hand)
  const raw = run('docker-compose', ['-f', 'docker-compose.yml', '--env-file', EMPTY_ENV, 'config', '-q'], { env: { ...process.env, AUTH_USERS: '' } });
  assert.notEqual(raw.status, 0);
  assert.match(raw.stderr, /AUTH_USERS is empty/);
  const up = run(path.join(ROOT, 'scripts', 'compose.sh'), ['server', 'up', '-d'], {
    env: { ...process.env, STACK_ENV_FILE: EMPTY_ENV, COMPOSE_BIN: 'false', AUTH_USERS: '' },
  });
  assert.equal(up.status, 3);
  assert.match(up.stderr, /refusing to start/);
});

// --- issue 12: the Docker API cut to one verb, hardened containers ---------------------------------

/** The socket proxy's rules as wollomatic/socket-proxy compiles them: "^" + regex + "$" per flag. */
function proxyRules(proxy) {
  const rules = {};
  for (const arg of proxy.command) {
    const m = /^-allow(GET|HEAD|POST|PUT|PATCH|DELETE|CONNECT|TRACE|OPTIONS)=(.*)$/.exec(arg);
    if (m) (rules[m[1]] = rules[m[1]] || []).push(new RegExp(`^${m[2]}$`));
  }
  return rules;
}
/** 'allow' | 403 | 405 for METHOD PATH, like the proxy (path percent-decoded, query string ignored). */
function proxyDecision(rules, method, url) {
  if (!rules[method]) return 405;
  const p = decodeURIComponent(url.split('?')[0]);
  return rules[method].some((re) => re.test(p)) ? 'allow' : 403;
}

test('socket proxy: wollomatic allowlist, pinned, nobody with the socket group, only the api may connect', () => {
  for (const name of ['server (gpu, quick tunnel)', 'server (no gpu, no tunnel)', 'dev-cpu']) {
    const proxy = combo(name).config.services['docker-socket-proxy'];
    assert.equal(proxy.image, 'wollomatic/socket-proxy:1.13.1', name);
    assert.equal(proxy.user, '65534:999', `${name}: nobody + the docker group (DOCKER_GID, default 999)`);
    for (const flag of ['-listenip=0.0.0.0', '-allowfrom=api', '-allowhealthcheck']) assert.ok(proxy.command.includes(flag), `${name}: ${flag}`);
    assert.deepEqual(proxy.healthcheck.test, ['CMD', './healthcheck']);
    assert.deepEqual(Object.keys(proxy.networks), ['docker-api']);
  }
  const raw = fs.readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8');
  assert.ok(raw.includes('user: "65534:${DOCKER_GID:-999}"'));
  const withGid = composeConfig('server', { GPU: '0', TUNNEL: '0', DOCKER_GID: '131' }).services['docker-socket-proxy'];
  assert.equal(withGid.user, '65534:131', 'DOCKER_GID from the environment / .env');
});

test('socket proxy: exactly list, inspect and restart of this project\'s ollama; everything else refused', () => {
  const rules = proxyRules(combo('server (gpu, quick tunnel)').config.services['docker-socket-proxy']);
  assert.deepEqual(Object.keys(rules).sort(), ['GET', 'POST'], 'no rule for other methods: 405');
  const P = 'ai-local-core';
  const allowed = [
    ['GET', '/containers/json?all=true&filters=%7B%22label%22%3A%5B%5D%7D'], // dockerode: no version prefix
    ['GET', '/v1.41/containers/json'],
    ['GET', `/containers/${P}-ollama-1/json`], // Compose v2 name
    ['GET', `/v1.43/containers/${P}_ollama_1/json`], // Compose v1 name
    ['POST', `/containers/${P}-ollama-1/restart?t=10`],
    ['POST', `/v1.41/containers/${P}_ollama_1/restart`],
  ];
  for (const [m, u] of allowed) assert.equal(proxyDecision(rules, m, u), 'allow', `${m} ${u}`);
  const refused = [
    ['POST', '/v1.41/containers/create'],
    ['POST', '/containers/create?name=x'],
    ['POST', `/containers/${P}-ollama-1/exec`],
    ['POST', '/exec/abc/start'],
    ['POST', `/containers/${P}-ollama-1/start`],
    ['POST', `/containers/${P}-ollama-1/stop`],
    ['POST', `/containers/${P}-ollama-1/kill`],
    ['POST', `/containers/${P}-ollama-1/update`],
    ['POST', `/containers/${P}-nginx-1/restart`],
    ['POST', `/containers/${P}-api-1/restart`],
    ['POST', `/containers/other-${P}-ollama-1/restart`],
    ['POST', `/containers/${P}-ollama-1x/restart`],
    ['POST', `/containers/${P}-ollama-1/restart/../../create`],
    ['POST', `/containers/${P}-ollama-1%2F..%2F..%2Fcreate`],
    ['POST', '/containers/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef/restart'],
    ['GET', '/containers/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef/json'],
    ['GET', `/containers/${P}-nginx-1/json`],
    ['GET', `/containers/${P}-ollama-1/logs`],
    ['GET', `/containers/${P}-ollama-1/archive?path=/`],
    ['GET', '/images/json'],
    ['POST', '/images/create?fromImage=alpine'],
    ['GET', '/volumes'],
    ['POST', '/volumes/create'],
    ['GET', '/networks'],
    ['POST', '/networks/create'],
    ['POST', '/build'],
    ['GET', '/info'],
    ['GET', '/_ping'],
    ['GET', '/version'],
    ['GET', '/events'],
    ['GET', '/secrets'],
  ];
  for (const [m, u] of refused) assert.equal(proxyDecision(rules, m, u), 403, `${m} ${u}`);
  for (const [m, u] of [['DELETE', `/containers/${P}-ollama-1`], ['PUT', '/containers/x/archive'], ['HEAD', '/_ping']]) {
    assert.equal(proxyDecision(rules, m, u), 405, `${m} ${u}`);
  }
  // the project name comes from COMPOSE_PROJECT_NAME, as for the api's labels
  const other = proxyRules(composeConfig('server', { GPU: '0', TUNNEL: '0', COMPOSE_PROJECT_NAME: 'box2' }).services['docker-socket-proxy']);
  assert.equal(proxyDecision(other, 'POST', '/containers/box2_ollama_1/restart'), 'allow');
  assert.equal(proxyDecision(other, 'POST', `/containers/${P}-ollama-1/restart`), 403);
});

test('GPU telemetry: the exporter sidecar only in the GPU overlay, on an internal network with the api, unpublished', () => {
  const { config } = combo('server (gpu, quick tunnel)');
  const exp = config.services['gpu-exporter'];
  assert.equal(exp.image, 'utkuozdemir/nvidia_gpu_exporter:1.14.0');
  assert.equal(exp.ports, undefined);
  // gpu: the api reads it; monitoring: Prometheus scrapes it
  assert.deepEqual(Object.keys(exp.networks).sort(), ['gpu', 'monitoring']);
  assert.equal(config.networks.gpu.internal, true);
  const onGpu = Object.entries(config.services).filter(([, s]) => Object.keys(s.networks || {}).includes('gpu')).map(([n]) => n);
  assert.deepEqual(onGpu.sort(), ['api', 'gpu-exporter']);
  assert.equal(env(config.services.api).GPU_EXPORTER_URL, 'http://gpu-exporter:9835/metrics');
  for (const name of ['server (no gpu, no tunnel)', 'dev-cpu', 'dev']) {
    const c = combo(name).config;
    assert.equal(c.services['gpu-exporter'], undefined, name);
    // passed as ${GPU_EXPORTER_URL:-}: empty, which the api reads as unset
    assert.ok(!env(c.services.api).GPU_EXPORTER_URL, `${name}: no GPU telemetry`);
  }
});

test('every service of every combination is hardened: no-new-privileges, cap_drop ALL, read-only, limits', () => {
  // the only capabilities any service keeps, and why (see the comments in the compose files)
  const CAPS = { nginx: ['CHOWN', 'NET_BIND_SERVICE', 'SETGID', 'SETUID'] };
  // where each service may write (tmpfs); everything else is read-only (volumes listed in the files)
  const USERS = {
    api: '1000:1000', 'model-puller': '65534:65534', 'docker-socket-proxy': '65534:999',
    cloudflared: '65532:65532', 'gpu-exporter': '65534:65534', prometheus: '65534:65534', alertmanager: '65534:65534',
    // ollama: root (the image's user; existing model volumes are root's /root/.ollama), but without capabilities
    // nginx: root master (binds 80, drops its workers to the nginx user), the four capabilities above
  };
  let checked = 0;
  for (const name of Object.keys(COMBOS)) {
    const { config, enabled } = combo(name);
    for (const svc of enabled) {
      const s = config.services[svc];
      const where = `${name}: ${svc}`;
      assert.deepEqual(s.security_opt, ['no-new-privileges:true'], `${where} security_opt`);
      assert.deepEqual(s.cap_drop, ['ALL'], `${where} cap_drop`);
      assert.deepEqual([...(s.cap_add || [])].sort(), CAPS[svc] || [], `${where} cap_add`);
      assert.equal(s.read_only, true, `${where} read_only`);
      assert.equal(s.privileged, undefined, `${where} privileged`);
      assert.equal(s.user, USERS[svc], `${where} user`);
      assert.ok(Number.isInteger(s.pids_limit) && s.pids_limit > 0 && s.pids_limit <= 1024, `${where} pids_limit ${s.pids_limit}`);
      assert.match(String(s.deploy?.resources?.limits?.memory), /^\d+[mg]$/, `${where} memory limit`);
      assert.ok(!(s.volumes || []).some((v) => /docker\.sock/.test(String(v.source || v)) && svc !== 'docker-socket-proxy'), `${where}: no Docker socket`);
      for (const v of s.volumes || []) {
        const str = String(v.source ? `${v.source}:${v.target}${v.read_only ? ':ro' : ''}` : v);
        if (!/^(ollama-models|prometheus-data|alertmanager-data):/.test(str)) assert.match(str, /:ro$/, `${where}: bind mounts read-only (${str})`);
      }
      checked++;
    }
  }
  assert.ok(checked >= 25, `${checked} service instances checked`);
  const nginx = combo('server (gpu, quick tunnel)').config.services.nginx;
  for (const dir of ['/etc/nginx/auth', '/etc/nginx/conf.d', '/var/cache/nginx', '/run']) assert.ok(nginx.tmpfs.includes(dir), `nginx tmpfs ${dir}`);
  assert.ok(combo('server (gpu, quick tunnel)').config.services.api.tmpfs.includes('/tmp'));
});
