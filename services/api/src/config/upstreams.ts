/**
 * The upstream pool's configuration: `UPSTREAMS` (a JSON array in the environment), the priority
 * lanes (`USER_PRIORITY`, `PRIORITY_AGING_S`) and spill-over (`SPILL_AFTER_MS`).
 *
 * `UPSTREAMS` unset (or blank) means one Ollama at OLLAMA_BASE_URL, exactly as before the pool.
 * Validation lists every bad entry by index and name (`UPSTREAMS[1] (mac).kind must be one of
 * ollama, openai`) and never echoes a value: URLs may carry credentials and apiKey is a secret.
 *
 * The config loader calls `parseUpstreamsConfig(env, base)` with its own validated values as `base`
 * and merges the returned problems into its ConfigError.
 */
import Joi from 'joi';
import { ConfigError } from '../errors';

export const PRIORITIES = ['high', 'normal', 'low'] as const;
export type Priority = (typeof PRIORITIES)[number];
export type UpstreamKind = 'ollama' | 'openai';

export interface UpstreamTimeouts {
  /** Wait for the next chunk (seconds); the global REQUEST_TIMEOUT_S when unset. */
  requestS: number;
  /** Lookup + TCP connect bound (ms); OLLAMA_CONNECT_TIMEOUT_MS when unset. */
  connectMs: number;
  /** Extra first-chunk allowance for a cold model load (seconds); MODEL_LOAD_TIMEOUT_S when unset. */
  loadS: number;
}

export interface UpstreamConfig {
  name: string;
  /** Base URL without a trailing slash. For `openai` upstreams without the `/v1` suffix. */
  url: string;
  kind: UpstreamKind;
  /** Lower number = preferred. */
  priority: number;
  maxConcurrent: number;
  /** A fixed model list instead of discovery (`/api/tags` or `/v1/models`). */
  models?: string[];
  /** Bearer token for `openai` upstreams. Never logged, never shown in status or metrics. */
  apiKey?: string;
  timeouts: UpstreamTimeouts;
}

export interface UpstreamsConfig {
  upstreams: UpstreamConfig[];
  /** True when UPSTREAMS was unset and the single upstream comes from OLLAMA_BASE_URL. */
  implicit: boolean;
  /** Default lane per user name (USER_PRIORITY); everyone else is `normal`. */
  userPriority: Record<string, Priority>;
  /** A request waiting this long in its lane moves up one lane; 0 turns aging off. */
  agingMs: number;
  /** The preferred upstream is skipped when its estimated wait exceeds this. */
  spillAfterMs: number;
}

/** The values the main config loader already validated; upstream entries inherit them. */
export interface UpstreamDefaults {
  ollamaBaseUrl: string;
  maxConcurrent: number;
  requestTimeoutS: number;
  connectTimeoutMs: number;
  loadAllowanceS: number;
}

export const DEFAULT_AGING_S = 30;
export const DEFAULT_SPILL_AFTER_MS = 10_000;

const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/;

const entrySchema = Joi.object({
  name: Joi.string().pattern(NAME_PATTERN).required(),
  url: Joi.string()
    .uri({ scheme: ['http', 'https'] })
    .required(),
  kind: Joi.string().valid('ollama', 'openai').required(),
  priority: Joi.number().integer().min(1).max(1000).default(1),
  maxConcurrent: Joi.number().integer().min(1).max(1024),
  models: Joi.array().items(Joi.string().trim().min(1).max(200)).min(1).unique(),
  apiKey: Joi.string().min(1).max(4096),
  timeouts: Joi.object({
    requestS: Joi.number().positive(),
    connectMs: Joi.number().integer().positive(),
    loadS: Joi.number().min(0),
  }),
});

const scalarSchema = Joi.object({
  PRIORITY_AGING_S: Joi.number().min(0).max(86_400).default(DEFAULT_AGING_S),
  SPILL_AFTER_MS: Joi.number().integer().min(0).max(3_600_000).default(DEFAULT_SPILL_AFTER_MS),
  USER_PRIORITY: Joi.string().allow('').default(''),
})
  .unknown(true)
  .prefs({ errors: { label: 'key' }, abortEarly: false, convert: true });

/** A joi problem in words, without the value (which may be a secret or a URL with credentials). */
function describe(d: Joi.ValidationErrorItem): string {
  const c = d.context ?? {};
  switch (d.type) {
    case 'any.required':
      return 'is required';
    case 'any.only':
      return `must be one of ${((c.valids as unknown[]) ?? []).join(', ')}`;
    case 'object.unknown':
      return 'is not a known field (name, url, kind, priority, maxConcurrent, models, apiKey, timeouts)';
    case 'object.base':
      return 'must be an object';
    case 'array.base':
      return 'must be an array';
    case 'array.min':
      return 'must not be empty';
    case 'array.unique':
      return 'lists the same model twice';
    case 'string.base':
      return 'must be a string';
    case 'string.empty':
    case 'string.min':
      return 'must not be empty';
    case 'string.max':
      return `must be at most ${String(c.limit)} characters`;
    case 'string.uri':
    case 'string.uriCustomScheme':
      return 'must be an http:// or https:// URL';
    case 'string.pattern.base':
      return 'must be 1-32 letters, digits, ".", "_" or "-", starting with a letter or digit';
    case 'number.base':
      return 'must be a number';
    case 'number.integer':
      return 'must be an integer';
    case 'number.min':
      return `must be ≥ ${String(c.limit)}`;
    case 'number.max':
      return `must be ≤ ${String(c.limit)}`;
    case 'number.positive':
      return 'must be > 0';
    default:
      return 'is invalid';
  }
}

function fieldPath(path: Array<string | number>): string {
  return path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`)).join('');
}

function entryLabel(i: number, raw: unknown): string {
  const name = raw && typeof raw === 'object' ? (raw as { name?: unknown }).name : undefined;
  return typeof name === 'string' && NAME_PATTERN.test(name) ? `UPSTREAMS[${i}] (${name})` : `UPSTREAMS[${i}]`;
}

/** `waldus=high,batch=low` → { waldus: 'high', batch: 'low' }. */
export function parseUserPriority(raw: string, problems: string[]): Record<string, Priority> {
  const out: Record<string, Priority> = {};
  for (const item of raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const eq = item.lastIndexOf('=');
    const user = eq > 0 ? item.slice(0, eq).trim() : '';
    const lane =
      eq > 0
        ? item
            .slice(eq + 1)
            .trim()
            .toLowerCase()
        : '';
    if (!user || !lane) {
      problems.push(`USER_PRIORITY: entry "${item.split('=')[0]}" must look like user=high|normal|low`);
      continue;
    }
    if (!(PRIORITIES as readonly string[]).includes(lane)) {
      problems.push(`USER_PRIORITY: "${user}" must be high, normal or low`);
      continue;
    }
    if (user in out) problems.push(`USER_PRIORITY: "${user}" is listed twice`);
    out[user] = lane as Priority;
  }
  return out;
}

function parseEntries(raw: string, base: UpstreamDefaults, problems: string[]): UpstreamConfig[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    // Never the parser's message: V8 quotes a piece of the text, which may hold an apiKey.
    problems.push('UPSTREAMS is not valid JSON: it must be a JSON array of upstream objects');
    return [];
  }
  if (!Array.isArray(parsed)) {
    problems.push('UPSTREAMS must be a JSON array of upstream objects');
    return [];
  }
  if (parsed.length === 0) {
    problems.push('UPSTREAMS must list at least one upstream (or be unset for the single OLLAMA_BASE_URL)');
    return [];
  }
  const out: UpstreamConfig[] = [];
  const seen = new Map<string, number>();
  parsed.forEach((rawEntry, i) => {
    const label = entryLabel(i, rawEntry);
    const { value, error } = entrySchema.validate(rawEntry, { abortEarly: false, convert: true });
    const own: string[] = error ? error.details.map((d) => `${label}${fieldPath(d.path)} ${describe(d)}`) : [];
    if (!error && value.kind !== 'openai' && value.apiKey !== undefined) {
      own.push(`${label}.apiKey is only for kind openai (Ollama has no API keys)`);
    }
    if (!error) {
      const lower = String(value.name).toLowerCase();
      const first = seen.get(lower);
      if (first !== undefined) own.push(`${label}.name is already used by UPSTREAMS[${first}] (names must be unique)`);
      else seen.set(lower, i);
    }
    problems.push(...own);
    if (own.length) return;
    out.push({
      name: value.name,
      url: String(value.url).replace(/\/+$/, ''),
      kind: value.kind,
      priority: value.priority,
      maxConcurrent: value.maxConcurrent ?? base.maxConcurrent,
      ...(value.models ? { models: value.models as string[] } : {}),
      ...(value.apiKey !== undefined ? { apiKey: value.apiKey as string } : {}),
      timeouts: {
        requestS: value.timeouts?.requestS ?? base.requestTimeoutS,
        connectMs: value.timeouts?.connectMs ?? base.connectTimeoutMs,
        loadS: value.timeouts?.loadS ?? base.loadAllowanceS,
      },
    });
  });
  return out;
}

/** Parses the pool's keys. Problems are returned, not thrown, so the loader reports every bad key. */
export function parseUpstreamsConfig(env: NodeJS.ProcessEnv, base: UpstreamDefaults): { value: UpstreamsConfig; problems: string[] } {
  const problems: string[] = [];
  const { value: v, error } = scalarSchema.validate(env);
  if (error) problems.push(...error.details.map((d) => `${d.path.join('.')} ${describe(d)}`));

  const raw = (env.UPSTREAMS ?? '').trim();
  const implicit = raw === '';
  const upstreams = implicit
    ? [
        {
          name: 'ollama',
          url: base.ollamaBaseUrl.replace(/\/+$/, ''),
          kind: 'ollama' as const,
          priority: 1,
          maxConcurrent: base.maxConcurrent,
          timeouts: { requestS: base.requestTimeoutS, connectMs: base.connectTimeoutMs, loadS: base.loadAllowanceS },
        },
      ]
    : parseEntries(raw, base, problems);

  return {
    value: {
      upstreams,
      implicit,
      userPriority: parseUserPriority(String(v?.USER_PRIORITY ?? ''), problems),
      agingMs: Math.round(Number(v?.PRIORITY_AGING_S ?? DEFAULT_AGING_S) * 1000),
      spillAfterMs: Number(v?.SPILL_AFTER_MS ?? DEFAULT_SPILL_AFTER_MS),
    },
    problems,
  };
}

/** Standalone form: throws one ConfigError listing every problem. */
export function loadUpstreamsConfig(env: NodeJS.ProcessEnv, base: UpstreamDefaults): UpstreamsConfig {
  const { value, problems } = parseUpstreamsConfig(env, base);
  if (problems.length) throw new ConfigError(problems);
  return value;
}

/** The lane of a request: an explicit X-Priority wins, then the user's default, then normal. */
export function priorityFor(header: string | undefined, user: string | undefined, userPriority: Record<string, Priority>): Priority | undefined {
  if (header !== undefined && header !== '') {
    const h = header.trim().toLowerCase();
    return (PRIORITIES as readonly string[]).includes(h) ? (h as Priority) : undefined;
  }
  return (user !== undefined ? userPriority[user] : undefined) ?? 'normal';
}
