import Joi from 'joi';
import { DEFAULT_AGING_S, DEFAULT_SPILL_AFTER_MS, parseUpstreamsConfig, type UpstreamsConfig } from './config/upstreams';
import { ConfigError } from './errors';

/**
 * All configuration comes from the environment, validated once at start-up.
 * UPPER_SNAKE keys map to a nested, frozen camelCase object. Every bad key is reported at once.
 */

export interface User {
  name: string;
  password: string;
}

export interface Config {
  port: number;
  host: string;
  logLevel: string;
  trustProxy: boolean | number | string;
  bodyLimit: string;
  ollama: {
    baseUrl: string;
    /** Seconds to wait for Ollama for a model without its own entry in modelTimeouts. */
    requestTimeoutS: number;
    /** Per-model wait (seconds) for the next chunk from Ollama. */
    modelTimeoutsS: Record<string, number>;
    /** Extra seconds allowed for the first chunk when the model is not loaded (cold load). */
    loadAllowanceS: number;
    /** Connect timeout for "is Ollama there at all": short, so callers can fall back fast. */
    connectTimeoutMs: number;
    retries: number;
    keepAlive: string;
  };
  models: {
    default: string;
    embed: string;
    vision: string;
    aliases: Record<string, string>;
    numCtx: number;
    cacheTtlS: number;
  };
  defaults: { temperature: number; topP: number; topK: number };
  queue: { maxConcurrent: number; maxQueue: number; timeoutS: number };
  health: { cacheTtlS: number };
  structured: { maxAttempts: number };
  auth: { users: User[]; adminUsers: string[] };
  shutdown: { graceS: number };
  /** Requests per minute per user (or client address); 0 = off. nginx limits too, per address. */
  rateLimitPerMin: number;
  jobs: { ttlS: number; max: number };
  warm: { enabled: boolean; checkS: number; idleUnloadMin: number };
  gpuSampleS: number;
  /** Prometheus text of the GPU exporter sidecar; '' = no GPU telemetry. */
  gpuExporterUrl: string;
  cache: { maxEntries: number; ttlS: number };
  /** Users (besides admins) allowed to read /metrics, e.g. a Prometheus scraper. */
  metricsUsers: string[];
  images: { timeoutMs: number; maxBytes: number; maxRedirects: number };
  docker: { host: string; ollamaContainer: string; composeProject: string; restartWaitS: number };
  /** Issue 13: what the gauges for the alert rules watch, and where Prometheus answers (empty = monitoring off). */
  monitoring: { models: string[]; modelsVolumePath: string; prometheusUrl: string };
  /** The pool (UPSTREAMS, USER_PRIORITY, PRIORITY_AGING_S, SPILL_AFTER_MS). */
  upstreams: UpstreamsConfig;
}

const durationPattern = /^-?\d+(\.\d+)?(ns|us|µs|ms|s|m|h)([\d.]+(ns|us|µs|ms|s|m|h))*$|^-?\d+$/;

const schema = Joi.object({
  PORT: Joi.number().port().default(3000).description('Port the API listens on'),
  HOST: Joi.string().default('0.0.0.0').description('Address the API binds to'),
  LOG_LEVEL: Joi.string().valid('error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly').default('info'),
  TRUST_PROXY: Joi.alternatives(Joi.boolean(), Joi.number().integer().min(0), Joi.string())
    .default(false)
    .description('Express trust proxy setting: hop count or address list (nginx in front = 1)'),
  BODY_LIMIT: Joi.string()
    .pattern(/^\d+(b|kb|mb)$/i)
    .default('25mb')
    .description('Largest JSON body (base64 images)'),

  OLLAMA_BASE_URL: Joi.string()
    .uri({ scheme: ['http', 'https'] })
    .default('http://ollama:11434'),
  REQUEST_TIMEOUT_S: Joi.number().positive().default(120).description('Default per-model timeout'),
  MODEL_TIMEOUTS: Joi.string().allow('').default('').description('model=seconds,... per-model timeouts'),
  MODEL_LOAD_TIMEOUT_S: Joi.number().min(0).default(120).description('Extra allowance for a cold model load'),
  OLLAMA_CONNECT_TIMEOUT_MS: Joi.number().integer().positive().default(2000),
  OLLAMA_RETRIES: Joi.number().integer().min(0).max(10).default(2),
  OLLAMA_KEEP_ALIVE: Joi.string().pattern(durationPattern).default('24h').description('keep_alive sent with every call'),

  MODEL_DEFAULT: Joi.string().default('llama3.1:8b'),
  MODEL_EMBED: Joi.string().default('nomic-embed-text'),
  MODEL_VISION: Joi.string().default('llava:7b'),
  MODEL_ALIASES: Joi.string().allow('').default('').description('alias=model,...'),
  NUM_CTX: Joi.number().integer().min(256).max(1048576).default(4096),
  MODELS_CACHE_TTL_S: Joi.number().min(0).default(30),

  DEFAULT_TEMPERATURE: Joi.number().min(0).max(2).default(0.3),
  DEFAULT_TOP_P: Joi.number().min(0).max(1).default(0.9),
  DEFAULT_TOP_K: Joi.number().integer().min(0).default(40),

  MAX_CONCURRENT: Joi.number().integer().min(1).max(64).default(1),
  MAX_QUEUE: Joi.number().integer().min(0).max(10000).default(16),
  QUEUE_TIMEOUT_S: Joi.number().positive().default(120),
  HEALTH_CACHE_TTL_S: Joi.number().min(0).default(30),
  STRUCTURED_MAX_ATTEMPTS: Joi.number().integer().min(1).max(5).default(2),

  AUTH_USERS: Joi.string().allow('').default('').description('user:password,... (empty = auth off)'),
  ADMIN_USERS: Joi.string().allow('').default('').description('comma list of user names from AUTH_USERS'),
  SHUTDOWN_GRACE_S: Joi.number().min(0).default(20),
  RATE_LIMIT_PER_MIN: Joi.number().integer().min(0).default(600),
  JOBS_TTL_S: Joi.number().positive().default(3600).description('How long a finished async job is kept'),
  IMAGE_FETCH_TIMEOUT_MS: Joi.number().integer().positive().default(10000).description('Whole fetch of an image_url'),
  IMAGE_MAX_BYTES: Joi.number()
    .integer()
    .positive()
    .default(10 * 1024 * 1024)
    .description('Largest image_url download'),
  IMAGE_MAX_REDIRECTS: Joi.number().integer().min(0).max(10).default(3),
  CACHE_MAX_ENTRIES: Joi.number().integer().min(0).default(500).description('Cached answers (embeddings, temperature-0 + seed generations); 0 = off'),
  CACHE_TTL_S: Joi.number().min(0).default(3600),
  METRICS_USERS: Joi.string().allow('').default('').description('comma list of users (besides admins) that may read /metrics'),
  WARM_DEFAULT_MODEL: Joi.boolean().default(true).description('Keep MODEL_DEFAULT loaded (re-load it when Ollama dropped it)'),
  WARM_CHECK_S: Joi.number().min(5).default(60).description('How often the warm keeper checks'),
  IDLE_UNLOAD_MIN: Joi.number().min(0).default(0).description('Unload models after this many idle minutes (0 = never)'),
  GPU_SAMPLE_S: Joi.number().min(0).default(60).description('Seconds between GPU exporter samples for the energy estimate (0 = only on request)'),
  GPU_EXPORTER_URL: Joi.string()
    .uri({ scheme: ['http', 'https'] })
    .allow('')
    .default('')
    .description('Metrics URL of the GPU exporter sidecar (GPU overlay); empty = no GPU telemetry'),
  JOBS_MAX: Joi.number().integer().min(1).max(100000).default(200).description('Async jobs kept at once'),

  DOCKER_HOST: Joi.string().default('unix:///var/run/docker.sock'),
  OLLAMA_CONTAINER: Joi.string().allow('').default(''),
  COMPOSE_PROJECT_NAME: Joi.string().allow('').default(''),
  RESTART_WAIT_S: Joi.number().positive().default(90),

  MODELS: Joi.string().default('llama3.1:8b,mistral:7b,nomic-embed-text,llava:7b').description('models that must be installed (ai_local_model_present)'),
  MODELS_VOLUME_PATH: Joi.string().default('/models').description('a path on the models volume (ai_local_models_volume_free_bytes)'),
  // The upstream pool (config/upstreams.ts parses and checks these; listed here for their defaults).
  UPSTREAMS: Joi.any().default('').description('JSON array of upstreams; empty = one Ollama at OLLAMA_BASE_URL'),
  USER_PRIORITY: Joi.any().default('').description('default lane per user: waldus=high,batch=low'),
  PRIORITY_AGING_S: Joi.any().default(DEFAULT_AGING_S).description('a waiting request moves up one lane after this long (0 = never)'),
  SPILL_AFTER_MS: Joi.any().default(DEFAULT_SPILL_AFTER_MS).description('skip the preferred upstream when its estimated wait is longer'),
  PROMETHEUS_URL: Joi.string()
    .uri({ scheme: ['http', 'https'] })
    .allow('')
    .default('')
    .description('Prometheus for the energy figures and history (empty = none)'),
})
  .unknown(true)
  .prefs({ errors: { label: 'key' }, abortEarly: false, convert: true });

/** The non-empty, trimmed items of a comma list. */
function listItems(raw: string): string[] {
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/** Parses `a=b,c=d` lists. Problems are pushed, not thrown, so every bad key is reported. */
function parsePairs(key: string, raw: string, problems: string[]): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  for (const item of listItems(raw)) {
    const eq = item.lastIndexOf('=');
    if (eq <= 0 || eq === item.length - 1) {
      problems.push(`${key}: entry "${item.split('=')[0]}" must look like name=value`);
      continue;
    }
    pairs.push([item.slice(0, eq).trim(), item.slice(eq + 1).trim()]);
  }
  return pairs;
}

function parseUsers(raw: string, problems: string[]): User[] {
  const users: User[] = [];
  for (const item of listItems(raw)) {
    const colon = item.indexOf(':');
    if (colon <= 0 || colon === item.length - 1) {
      // Never echo the entry: it may be a password.
      problems.push(`AUTH_USERS: entry #${users.length + 1} must look like user:password`);
      continue;
    }
    users.push({ name: item.slice(0, colon), password: item.slice(colon + 1) });
  }
  return users;
}

/** Shorter passwords stop the API (and nginx: docker/nginx/05-auth-files.sh, same rule and wording). */
export const MIN_PASSWORD_LENGTH = 16;

/**
 * This door faces the internet (the tunnel): a password under MIN_PASSWORD_LENGTH characters is a
 * problem naming the user, never the password, unless ALLOW_WEAK_PASSWORDS is 1/true/yes. Not in the
 * joi schema: the setting is shared with nginx and has one default there (0).
 */
function checkPasswordStrength(users: User[], allowWeak: string | undefined, problems: string[]): void {
  const weak = users.filter((u) => [...u.password].length < MIN_PASSWORD_LENGTH).map((u) => `"${u.name}"`);
  if (!weak.length || /^(1|true|yes)$/i.test((allowWeak ?? '').trim())) return;
  problems.push(
    `AUTH_USERS: the password of user(s) ${weak.join(', ')} is shorter than ${MIN_PASSWORD_LENGTH} characters: refusing to start, ` +
      'this door faces the internet. Use long random passwords (`make init` generates 24 characters), or set ALLOW_WEAK_PASSWORDS=1 to accept the risk.',
  );
}

function deepFreeze<T>(obj: T): T {
  if (obj && typeof obj === 'object') {
    Object.values(obj as Record<string, unknown>).forEach(deepFreeze);
    Object.freeze(obj);
  }
  return obj;
}

/**
 * The default of every key, as the string an env file would carry (`true`, `120`, `` for none).
 * The one source of the API's defaults: .env.example and the compose files are checked against it.
 */
export function configDefaults(): Record<string, string> {
  const keys = (schema.describe() as { keys: Record<string, { flags?: { default?: unknown } }> }).keys;
  return Object.fromEntries(Object.entries(keys).map(([key, d]) => [key, String((d.flags?.default as string | number | boolean | undefined) ?? '')]));
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // An empty value counts as unset, so compose can pass `KEY: ${KEY:-}` and the default applies.
  const set = Object.fromEntries(Object.entries(env).filter(([, val]) => val !== undefined && val.trim() !== ''));
  const { value: v, error } = schema.validate(set);
  const problems: string[] = error ? error.details.map((d) => d.message.replace(/ with value .*$/, '')) : [];

  const modelTimeoutsS: Record<string, number> = {};
  for (const [model, secs] of parsePairs('MODEL_TIMEOUTS', String(v.MODEL_TIMEOUTS ?? ''), problems)) {
    const n = Number(secs);
    if (!Number.isFinite(n) || n <= 0) problems.push(`MODEL_TIMEOUTS: "${model}" needs a positive number of seconds`);
    else modelTimeoutsS[model] = n;
  }
  const aliases: Record<string, string> = {};
  for (const [alias, model] of parsePairs('MODEL_ALIASES', String(v.MODEL_ALIASES ?? ''), problems)) aliases[alias] = model;

  const users = parseUsers(String(v.AUTH_USERS ?? ''), problems);
  checkPasswordStrength(users, env.ALLOW_WEAK_PASSWORDS, problems);
  const adminUsers = String(v.ADMIN_USERS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const metricsUsers = String(v.METRICS_USERS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const m of metricsUsers) {
    if (!users.some((u) => u.name === m)) problems.push(`METRICS_USERS: "${m}" is not a user in AUTH_USERS`);
  }
  for (const admin of adminUsers) {
    if (!users.some((u) => u.name === admin)) problems.push(`ADMIN_USERS: "${admin}" is not a user in AUTH_USERS`);
  }

  const pool = parseUpstreamsConfig(set, {
    ollamaBaseUrl: String(v.OLLAMA_BASE_URL),
    maxConcurrent: v.MAX_CONCURRENT,
    requestTimeoutS: v.REQUEST_TIMEOUT_S,
    connectTimeoutMs: v.OLLAMA_CONNECT_TIMEOUT_MS,
    loadAllowanceS: v.MODEL_LOAD_TIMEOUT_S,
  });
  problems.push(...pool.problems);

  if (problems.length) throw new ConfigError(problems);

  return deepFreeze<Config>({
    port: v.PORT,
    host: v.HOST,
    logLevel: v.LOG_LEVEL,
    trustProxy: v.TRUST_PROXY,
    bodyLimit: v.BODY_LIMIT,
    ollama: {
      baseUrl: String(v.OLLAMA_BASE_URL).replace(/\/+$/, ''),
      requestTimeoutS: v.REQUEST_TIMEOUT_S,
      modelTimeoutsS,
      loadAllowanceS: v.MODEL_LOAD_TIMEOUT_S,
      connectTimeoutMs: v.OLLAMA_CONNECT_TIMEOUT_MS,
      retries: v.OLLAMA_RETRIES,
      keepAlive: v.OLLAMA_KEEP_ALIVE,
    },
    models: {
      default: v.MODEL_DEFAULT,
      embed: v.MODEL_EMBED,
      vision: v.MODEL_VISION,
      aliases,
      numCtx: v.NUM_CTX,
      cacheTtlS: v.MODELS_CACHE_TTL_S,
    },
    defaults: { temperature: v.DEFAULT_TEMPERATURE, topP: v.DEFAULT_TOP_P, topK: v.DEFAULT_TOP_K },
    queue: { maxConcurrent: v.MAX_CONCURRENT, maxQueue: v.MAX_QUEUE, timeoutS: v.QUEUE_TIMEOUT_S },
    health: { cacheTtlS: v.HEALTH_CACHE_TTL_S },
    structured: { maxAttempts: v.STRUCTURED_MAX_ATTEMPTS },
    auth: { users, adminUsers },
    shutdown: { graceS: v.SHUTDOWN_GRACE_S },
    rateLimitPerMin: v.RATE_LIMIT_PER_MIN,
    jobs: { ttlS: v.JOBS_TTL_S, max: v.JOBS_MAX },
    gpuSampleS: v.GPU_SAMPLE_S,
    gpuExporterUrl: String(v.GPU_EXPORTER_URL ?? ''),
    warm: { enabled: v.WARM_DEFAULT_MODEL, checkS: v.WARM_CHECK_S, idleUnloadMin: v.IDLE_UNLOAD_MIN },
    cache: { maxEntries: v.CACHE_MAX_ENTRIES, ttlS: v.CACHE_TTL_S },
    metricsUsers,
    images: { timeoutMs: v.IMAGE_FETCH_TIMEOUT_MS, maxBytes: v.IMAGE_MAX_BYTES, maxRedirects: v.IMAGE_MAX_REDIRECTS },
    docker: {
      host: v.DOCKER_HOST,
      ollamaContainer: v.OLLAMA_CONTAINER,
      composeProject: v.COMPOSE_PROJECT_NAME,
      restartWaitS: v.RESTART_WAIT_S,
    },
    upstreams: pool.value,
    monitoring: { models: listItems(String(v.MODELS)), modelsVolumePath: v.MODELS_VOLUME_PATH, prometheusUrl: String(v.PROMETHEUS_URL).replace(/\/+$/, '') },
  });
}
