'use strict';
// Each default once. The api's defaults live in services/api/src/config.ts (its joi schema, read
// through configDefaults() of the build); .env.example documents every variable with that default,
// and the compose files pass what the owner set (`${KEY:-}`) without restating it. Settings that
// are not the api's (nginx, ollama, the model-puller, ports) have one default, the same in every
// compose file that names them and in .env.example. Reads files only: runs everywhere.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { ROOT, API_DIR } = require('./lib/helpers');

// dist/config.js or dist/config/index.js, whichever the build has
const built = path.join(API_DIR, 'dist', 'config');
assert.ok(fs.existsSync(`${built}.js`) || fs.existsSync(path.join(built, 'index.js')), 'build the API first: cd services/api && npm run build (make test-infra does)');
const { configDefaults, loadConfig } = require(built);
const DEFAULTS = configDefaults();
const API_KEYS = Object.keys(DEFAULTS);

/** api keys whose value is this combination's own, written in the compose file on purpose */
const PER_COMBINATION = {
  PORT: 'nginx reaches the api at api:3000',
  HOST: 'the container listens on every interface',
  TRUST_PROXY: 'nginx is the one proxy in front',
  DOCKER_HOST: 'the socket proxy, never the raw socket',
  PROMETHEUS_URL: 'compose/monitoring.yml: its own Prometheus, only when monitoring is on',
  GPU_EXPORTER_URL: 'the GPU overlay points the api at its own gpu-exporter sidecar',
};
/** api keys another service reads too, with its own `${KEY:-default}` (the model-puller pulls MODELS): that default must be config.ts's */
const SHARED = ['MODELS'];
/** the same, in the dev files only: the DEV_* models and Ollama.app's address */
const PER_DEV = ['OLLAMA_BASE_URL', 'MODEL_DEFAULT', 'MODEL_VISION', 'MODEL_ALIASES', 'MODEL_TIMEOUTS', 'MODELS'];
/** the vLLM combination serves other model names, and the Ollama-only warm keeper has nothing to keep warm there */
const PER_VLLM = ['UPSTREAMS', 'MODEL_DEFAULT', 'MODEL_ALIASES', 'MODEL_TIMEOUTS', 'WARM_DEFAULT_MODEL', 'IDLE_UNLOAD_MIN'];
/** api keys .env.example sets to something other than the api's default (make init ships them) */
const SHIPPED = {
  MODEL_TIMEOUTS: /default: none/, // per-model timeouts for the models of MODELS
  MODEL_ALIASES: /default: none/, // aliases naming models of MODELS
  COMPOSE_PROJECT_NAME: /empty = any project/, // compose's project name, passed on to the api
};
/** non-api settings with a deliberately different default per combination */
const PER_COMBINATION_DEFAULT = { OLLAMA_MEM_LIMIT: 'RAM cap: 10g beside a GPU, 6g when ollama runs on the CPU' };

const COMPOSE_FILES = ['docker-compose.yml', 'docker-compose.gpu.yml', ...fs.readdirSync(path.join(ROOT, 'compose')).filter((f) => f.endsWith('.yml')).map((f) => `compose/${f}`)];
const read = (f) => fs.readFileSync(path.join(ROOT, f), 'utf8');
const uncommented = (text) => text.replace(/(^|\s)#.*$/gm, '$1');

/** .env.example as { KEY: { value, active, comment } }; comment = the comment block above its group */
function parseExample() {
  const out = {};
  let comment = [];
  let afterKey = false;
  for (const line of read('.env.example').split('\n')) {
    const m = /^(# )?([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
    if (m) {
      assert.equal(out[m[2]], undefined, `.env.example lists ${m[2]} twice`);
      out[m[2]] = { value: m[3], active: !m[1], comment: comment.join(' ') };
      afterKey = true;
    } else if (line.startsWith('#')) {
      if (afterKey) comment = [];
      comment.push(line);
      afterKey = false;
    } else {
      comment = [];
      afterKey = false;
    }
  }
  return out;
}

/** Every `${VAR:-default}` / `${VAR:?message}` / `${VAR}` outside comments: [{ file, name, op, value }] */
function interpolations(files) {
  const found = [];
  for (const file of files) {
    for (const m of uncommented(read(file)).matchAll(/\$\{([A-Z][A-Z0-9_]*)(?:(:?[-?])([^}]*))?\}/g)) {
      found.push({ file, name: m[1], op: m[2] ?? '', value: m[3] ?? '' });
    }
  }
  return found;
}

test('config.ts: an empty value counts as unset, so `KEY: ${KEY:-}` in compose means the default', () => {
  const empty = Object.fromEntries(API_KEYS.map((k) => [k, '']));
  assert.deepEqual(loadConfig(empty), loadConfig({}));
  assert.equal(loadConfig({ NUM_CTX: '  ' }).models.numCtx, Number(DEFAULTS.NUM_CTX));
  assert.equal(loadConfig({ NUM_CTX: '8192' }).models.numCtx, 8192, 'a set value still wins');
  assert.ok(API_KEYS.length >= 40, `configDefaults() lists ${API_KEYS.length} keys`);
});

test('.env.example documents every api key once, with config.ts\'s default', () => {
  const example = parseExample();
  const wrong = [];
  for (const key of API_KEYS) {
    const doc = example[key];
    if (!doc) {
      wrong.push(`${key}: missing (add "# ${key}=${DEFAULTS[key]}" with a comment)`);
      continue;
    }
    assert.ok(doc.comment, `.env.example: ${key} has no comment line above it`);
    if (SHIPPED[key]) {
      assert.equal(DEFAULTS[key], '', `${key}: the api's default is meant to be empty`);
      assert.match(doc.comment, SHIPPED[key], `.env.example: ${key} sets a value; its comment must say what the default is`);
      continue;
    }
    if (doc.value !== DEFAULTS[key]) wrong.push(`${key}: .env.example says "${doc.value}", config.ts "${DEFAULTS[key]}"`);
  }
  assert.deepEqual(wrong, []);
  assert.equal(example.DOCKER_HOST.active, false, 'DOCKER_HOST in .env would redirect docker compose itself');
});

test('the compose files pass the api\'s settings without restating a default', () => {
  const wrong = [];
  for (const { file, name, op, value } of interpolations(COMPOSE_FILES)) {
    if (SHARED.includes(name) && op.endsWith('-') && value !== '') {
      if (value !== DEFAULTS[name]) wrong.push(`${file}: \${${name}${op}${value}} differs from the api's default "${DEFAULTS[name]}"`);
      continue;
    }
    if (API_KEYS.includes(name) && op.endsWith('-') && value !== '') wrong.push(`${file}: \${${name}${op}${value}} restates the api's default (write \${${name}:-})`);
  }
  for (const file of COMPOSE_FILES) {
    const dev = file.startsWith('compose/dev');
    for (const line of uncommented(read(file)).split('\n')) {
      const m = /^\s+([A-Z][A-Z0-9_]*):\s*(.*?)\s*$/.exec(line);
      if (!m || !API_KEYS.includes(m[1])) continue;
      const [, key, value] = m;
      if (value === `\${${key}:-}` || value.startsWith(`\${${key}:?`)) continue;
      if (SHARED.includes(key) && value === `\${${key}:-${DEFAULTS[key]}}`) continue;
      if (PER_COMBINATION[key] || (dev && PER_DEV.includes(key)) || (file === 'compose/vllm.yml' && PER_VLLM.includes(key))) continue;
      wrong.push(`${file}: ${key}: ${value} (pass \${${key}:-}; the default is config.ts's)`);
    }
  }
  assert.deepEqual(wrong, []);
});

test('settings that are not the api\'s have one default, the same in compose and .env.example', () => {
  const example = parseExample();
  const defaults = new Map();
  const files = [...COMPOSE_FILES, 'scripts/render-nginx.sh'];
  for (const { file, name, op, value } of interpolations(files)) {
    if (API_KEYS.includes(name) || !op.endsWith('-')) continue;
    if (file.endsWith('.sh') && !example[name]) continue; // the script's own knobs (ports for loopback)
    if (!defaults.has(name)) defaults.set(name, new Map());
    defaults.get(name).set(value, [...(defaults.get(name).get(value) ?? []), file]);
  }
  const wrong = [];
  for (const [name, values] of defaults) {
    if (!example[name]) wrong.push(`${name}: not in .env.example`);
    if (PER_COMBINATION_DEFAULT[name]) continue;
    if (values.size > 1) wrong.push(`${name}: different defaults ${JSON.stringify(Object.fromEntries(values))}`);
    const [value] = values.keys();
    if (example[name] && example[name].value !== value) wrong.push(`${name}: .env.example says "${example[name].value}", ${values.get(value).join(", ")} "${value}"`);
  }
  assert.deepEqual(wrong, []);
  // and every variable compose reads is documented
  for (const { file, name } of interpolations(COMPOSE_FILES)) assert.ok(example[name], `${file} reads ${name}, which .env.example does not list`);
});
