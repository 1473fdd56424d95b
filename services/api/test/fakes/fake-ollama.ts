/**
 * Fake Ollama HTTP server for tests.
 *
 * Follows docs/ollama-contract.md (Ollama's API as of v0.32.x): routes, NDJSON streaming,
 * exact error strings/status codes, load behaviour (no bytes while a model loads), keep_alive,
 * CORS 403 with an empty body, 405 on wrong methods, OpenAI-shaped errors on /v1.
 *
 * Only node's `http` module is used. Everything is deterministic except timings.
 */
import * as http from 'node:http';
import * as crypto from 'node:crypto';
import type { Socket } from 'node:net';

// ---------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------

export interface FakeModel {
  name: string;
  family?: string;
  parameterSize?: string;
  quantization?: string;
  sizeBytes?: number;
  /** < sizeBytes means partly on CPU (reported by /api/ps). */
  sizeVramBytes?: number;
  /** e.g. ['completion'], ['completion','vision'], ['embedding'], ['completion','tools'], ['completion','thinking'] */
  capabilities?: string[];
  embeddingDims?: number;
}

export type Behaviour =
  | { kind: 'normal' }
  | { kind: 'oom'; message?: string }
  | { kind: 'crash' }
  | { kind: 'queue-full' }
  | { kind: 'midstream-error'; afterChunks: number; message?: string }
  | { kind: 'hang' }
  | { kind: 'stall-after'; chunks: number }
  | { kind: 'reject'; status: number; error: string }
  | { kind: 'drop-connection' };

export interface FakeOllamaOptions {
  models?: FakeModel[];
  version?: string;
  tokenDelayMs?: number;
  loadDelayMs?: number;
  pullDelayMs?: number;
  pullFailPattern?: RegExp;
  host?: string;
  port?: number;
}

export interface RecordedRequest {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
  receivedAt: number;
}

export interface FakeOllamaStats {
  /** Inference requests (generate/chat/embed/embeddings and /v1 chat/embeddings) currently open. */
  active: number;
  completed: number;
  /** Client closed the connection before the fake finished writing the response. */
  aborted: number;
  maxActive: number;
}

// ---------------------------------------------------------------------------------------------
// Exact strings Ollama sends (docs/ollama-contract.md)
// ---------------------------------------------------------------------------------------------

export const ERR_QUEUE_FULL = 'server busy, please try again.  maximum pending requests exceeded';
export const ERR_CRASH =
  'model runner has unexpectedly stopped, this may be due to resource limitations or an internal error, check ollama server logs for details';
export const ERR_OOM_DEFAULT = 'llama-server reported out-of-memory during startup: cudaMalloc failed: out of memory';
export const ERR_OOM_LEGACY = 'model requires more system memory (10.2 GiB) than is available (7.6 GiB)';
export const ERR_MIDSTREAM_DEFAULT = 'an error was encountered while running the model';
export const ERR_PULL_MANIFEST = 'pull model manifest: file does not exist';
/** Not a documented string; seen in the wild both as 500 (old runner) and 400. The fake uses 400. */
export const ERR_NO_VISION = 'this model is missing data required for image input';

const DEFAULT_REPLY = 'Hello from the fake Ollama.';
const DEFAULT_KEEP_ALIVE_MS = 5 * 60 * 1000;
const DEFAULT_NUM_CTX = 4096;
const JSON_CT = 'application/json; charset=utf-8';
const NDJSON_CT = 'application/x-ndjson';
const SSE_CT = 'text/event-stream';

export const DEFAULT_MODELS: FakeModel[] = [
  {
    name: 'llama3.1:8b',
    family: 'llama',
    parameterSize: '8.0B',
    quantization: 'Q4_K_M',
    sizeBytes: 4_920_753_328,
    capabilities: ['completion', 'tools'],
    embeddingDims: 4096,
  },
  {
    name: 'mistral:7b',
    family: 'llama',
    parameterSize: '7.2B',
    quantization: 'Q4_K_M',
    sizeBytes: 4_372_824_384,
    capabilities: ['completion', 'tools'],
    embeddingDims: 4096,
  },
  {
    name: 'nomic-embed-text',
    family: 'nomic-bert',
    parameterSize: '137M',
    quantization: 'F16',
    sizeBytes: 274_302_450,
    capabilities: ['embedding'],
    embeddingDims: 768,
  },
  {
    name: 'llava:7b',
    family: 'llama',
    parameterSize: '7B',
    quantization: 'Q4_0',
    sizeBytes: 4_733_363_377,
    capabilities: ['completion', 'vision'],
    embeddingDims: 4096,
  },
];

// ---------------------------------------------------------------------------------------------
// Small helpers (exported where tests or the CLI can use them)
// ---------------------------------------------------------------------------------------------

/** Go's %q / strconv.Quote (close enough for ASCII + printable unicode). */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0) ?? 0;
    switch (ch) {
      case '"':
        out += '\\"';
        break;
      case '\\':
        out += '\\\\';
        break;
      case '\n':
        out += '\\n';
        break;
      case '\r':
        out += '\\r';
        break;
      case '\t':
        out += '\\t';
        break;
      case '\x07':
        out += '\\a';
        break;
      case '\b':
        out += '\\b';
        break;
      case '\f':
        out += '\\f';
        break;
      case '\v':
        out += '\\v';
        break;
      default:
        if (c < 0x20 || c === 0x7f) out += '\\x' + c.toString(16).padStart(2, '0');
        else out += ch;
    }
  }
  return out + '"';
}

/** Go time.ParseDuration → milliseconds. Throws Error with Go's message. */
export function parseGoDuration(orig: string): number {
  let s = orig;
  let sign = 1;
  if (s.startsWith('-') || s.startsWith('+')) {
    if (s[0] === '-') sign = -1;
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') throw new Error(`time: invalid duration ${goQuote(orig)}`);
  const units: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, μs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  while (s !== '') {
    const num = /^(\d*)(\.\d*)?/.exec(s);
    if (!num || (num[1] === '' && (num[2] === undefined || num[2] === '.'))) {
      throw new Error(`time: invalid duration ${goQuote(orig)}`);
    }
    const value = parseFloat((num[1] || '0') + (num[2] ?? ''));
    s = s.slice(num[0].length);
    const unitMatch = /^[^\d.]+/.exec(s);
    if (!unitMatch) throw new Error(`time: missing unit in duration ${goQuote(orig)}`);
    const unit = unitMatch[0];
    const mult = units[unit];
    if (mult === undefined) throw new Error(`time: unknown unit ${goQuote(unit)} in duration ${goQuote(orig)}`);
    total += value * mult;
    s = s.slice(unit.length);
  }
  return sign * total;
}

/**
 * keep_alive → ms. undefined = default (5m); Infinity = forever; 0 = unload after the request.
 * Throws HttpError(400) on Go parse errors.
 */
export function parseKeepAlive(v: unknown): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'number') return v < 0 ? Infinity : v * 1000;
  if (typeof v === 'string') {
    let ms: number;
    try {
      ms = parseGoDuration(v);
    } catch (e) {
      throw new HttpError(400, (e as Error).message);
    }
    return ms < 0 ? Infinity : ms;
  }
  throw new HttpError(400, `Unsupported type: '${goKind(v)}'`);
}

/** Deterministic unit-length vector for a text (FNV-1a seeded mulberry32). */
export function fakeEmbedding(text: string, dims: number): number[] {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  let a = h || 1;
  const rnd = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const v: number[] = [];
  let norm = 0;
  for (let i = 0; i < dims; i++) {
    const x = rnd() * 2 - 1;
    v.push(x);
    norm += x * x;
  }
  norm = Math.sqrt(norm) || 1;
  return v.map((x) => Math.fround(x / norm));
}

/** Splits into one chunk per word, keeping the leading whitespace of each word. */
export function tokenize(text: string): string[] {
  const out: string[] = [...(text.match(/\s*\S+/g) ?? [])];
  const trailing = /\s+$/.exec(text);
  if (trailing) {
    if (out.length) out[out.length - 1] += trailing[0];
    else out.push(trailing[0]);
  }
  return out;
}

function countWords(text: string): number {
  return (text.match(/\S+/g) ?? []).length;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

class Aborted extends Error {
  constructor() {
    super('aborted');
  }
}

function goKind(v: unknown): string {
  if (Array.isArray(v)) return 'array';
  if (v === null) return 'null';
  if (typeof v === 'boolean') return 'bool';
  return typeof v;
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function normalizeName(name: string): string {
  const n = name.trim().toLowerCase();
  const last = n.slice(n.lastIndexOf('/') + 1);
  return last.includes(':') ? n : n + ':latest';
}

function qualifiedName(name: string): string {
  const n = normalizeName(name);
  const parts = n.split('/');
  if (parts.length === 1) return `registry.ollama.ai/library/${n}`;
  if (parts.length === 2) return `registry.ollama.ai/${n}`;
  return n;
}

function sha256(s: string): string {
  return crypto.createHash('sha256').update(s).digest('hex');
}

function nowIso(): string {
  return new Date().toISOString();
}

function ns(ms: number): number {
  return Math.max(1, Math.round(ms * 1e6));
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new Aborted());
    const t = setTimeout(
      () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      },
      Math.max(0, ms),
    );
    const onAbort = (): void => {
      clearTimeout(t);
      reject(new Aborted());
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

function untilAborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) return reject(new Aborted());
    signal.addEventListener('abort', () => reject(new Aborted()), { once: true });
  });
}

function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  return Promise.race([p, untilAborted(signal)]);
}

const ALLOWED_ORIGINS: RegExp[] = [/^https?:\/\/(localhost|127\.0\.0\.1|0\.0\.0\.0)(:\d+)?$/i, /^(app|file|tauri|vscode-webview|vscode-file):\/\/.*$/i];
export function isAllowedOrigin(origin: string): boolean {
  return ALLOWED_ORIGINS.some((re) => re.test(origin));
}

/** Minimal instance for a JSON schema (so `format` requests get valid JSON by default). */
function instanceFor(schema: unknown, depth = 0): unknown {
  if (!isObj(schema) || depth > 6) return {};
  if (Array.isArray(schema.enum) && schema.enum.length) return schema.enum[0];
  if ('const' in schema) return schema.const;
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  switch (type) {
    case 'string':
      return 'fake';
    case 'integer':
      return typeof schema.minimum === 'number' ? Math.ceil(schema.minimum) : 1;
    case 'number':
      return typeof schema.minimum === 'number' ? schema.minimum : 1;
    case 'boolean':
      return true;
    case 'null':
      return null;
    case 'array': {
      const min = typeof schema.minItems === 'number' ? schema.minItems : 0;
      return Array.from({ length: min }, () => instanceFor(schema.items, depth + 1));
    }
    default: {
      const props = isObj(schema.properties) ? schema.properties : {};
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(props)) out[k] = instanceFor(v, depth + 1);
      return out;
    }
  }
}

function spacedJson(v: unknown): string {
  // `{"a": 1, "b": "x"}` — spaces so the word tokenizer yields several chunks
  return JSON.stringify(v, null, 1).replace(/\n\s*/g, ' ').replace(/\[ \]/g, '[]').replace(/\{ \}/g, '{}');
}

// ---------------------------------------------------------------------------------------------
// Internal state
// ---------------------------------------------------------------------------------------------

interface ModelState {
  model: FakeModel;
  key: string; // normalized name
  modifiedAt: string;
  loaded?: { numCtx: number; expiresAt: number };
  loading?: Promise<void>;
  refCount: number;
}

interface Ctx {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  rawBody: string;
  path: string;
  openai: boolean;
  signal: AbortSignal;
}

interface Metrics {
  total_duration: number;
  load_duration: number;
  prompt_eval_count: number;
  prompt_eval_duration: number;
  eval_count: number;
  eval_duration: number;
}

interface Formatter {
  streamContentType: string;
  chunk(tok: string): string;
  final(m: Metrics, doneReason: string): string;
  errorFrame(msg: string): string;
  whole(full: string, m: Metrics, doneReason: string): unknown;
}

interface GenPlan {
  ctx: Ctx;
  st: ModelState;
  requestedName: string;
  stream: boolean;
  promptTokens: number;
  tokens: string[];
  doneReason: 'stop' | 'length';
  keepAliveMs: number | undefined;
  numCtx: number;
  startedAt: number;
  fmt: Formatter;
}

type Handler = (ctx: Ctx) => Promise<void> | void;

const INFERENCE_PATHS = new Set(['/api/generate', '/api/chat', '/api/embed', '/api/embeddings', '/v1/chat/completions', '/v1/embeddings']);

// ---------------------------------------------------------------------------------------------
// FakeOllama
// ---------------------------------------------------------------------------------------------

export class FakeOllama {
  readonly requests: RecordedRequest[] = [];
  readonly stats: FakeOllamaStats = { active: 0, completed: 0, aborted: 0, maxActive: 0 };
  private urlValue = '';
  private portValue = 0;
  get url(): string {
    return this.urlValue;
  }
  get port(): number {
    return this.portValue;
  }

  private readonly server: http.Server;
  private readonly sockets = new Set<Socket>();
  private readonly models = new Map<string, ModelState>();
  private readonly behaviours = new Map<string, Behaviour>();
  private readonly replyQueues = new Map<string, string[]>();
  private defaultReply = DEFAULT_REPLY;
  private defaultReplyExplicit = false;
  private readonly closeAc = new AbortController();
  private readonly version: string;
  private readonly tokenDelayMs: number;
  private readonly loadDelayMs: number;
  private readonly pullDelayMs: number;
  private readonly pullFailPattern: RegExp;
  private readonly routes: Record<string, Partial<Record<string, Handler>>>;

  private constructor(opts: FakeOllamaOptions) {
    this.version = opts.version ?? '0.32.15';
    this.tokenDelayMs = opts.tokenDelayMs ?? 5;
    this.loadDelayMs = opts.loadDelayMs ?? 0;
    this.pullDelayMs = opts.pullDelayMs ?? 50;
    this.pullFailPattern = opts.pullFailPattern ?? /^fail/;
    for (const m of opts.models ?? DEFAULT_MODELS) this.addModel(m);

    const root: Handler = (c) => this.sendText(c.res, 200, 'Ollama is running');
    const version: Handler = (c) => this.sendJson(c.res, 200, { version: this.version });
    const tags: Handler = (c) => this.sendJson(c.res, 200, { models: [...this.models.values()].map((s) => this.tagEntry(s)) });
    this.routes = {
      '/': { GET: root, HEAD: root },
      '/api/version': { GET: version, HEAD: version },
      '/api/status': { GET: (c) => this.sendJson(c.res, 200, { cloud: { disabled: false, source: 'default' } }) },
      '/api/tags': { GET: tags, HEAD: tags },
      '/api/ps': { GET: (c) => this.handlePs(c) },
      '/api/show': { POST: (c) => this.handleShow(c) },
      '/api/generate': { POST: (c) => this.handleGenerate(c) },
      '/api/chat': { POST: (c) => this.handleChat(c) },
      '/api/embed': { POST: (c) => this.handleEmbed(c) },
      '/api/embeddings': { POST: (c) => this.handleLegacyEmbeddings(c) },
      '/api/pull': { POST: (c) => this.handlePull(c) },
      '/api/delete': { DELETE: (c) => this.handleDelete(c) },
      '/api/copy': { POST: (c) => this.handleCopy(c) },
      '/v1/models': { GET: (c) => this.handleV1Models(c) },
      '/v1/chat/completions': { POST: (c) => this.handleV1Chat(c) },
      '/v1/embeddings': { POST: (c) => this.handleV1Embeddings(c) },
    };

    this.server = http.createServer({ noDelay: true }, (req, res) => {
      void this.onRequest(req, res);
    });
    this.server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  static async start(opts: FakeOllamaOptions = {}): Promise<FakeOllama> {
    const fake = new FakeOllama(opts);
    const host = opts.host ?? '127.0.0.1';
    await new Promise<void>((resolve, reject) => {
      fake.server.once('error', reject);
      fake.server.listen(opts.port ?? 0, host, () => {
        fake.server.off('error', reject);
        resolve();
      });
    });
    const addr = fake.server.address();
    if (addr === null || typeof addr === 'string') throw new Error('unexpected server address');
    fake.portValue = addr.port;
    fake.urlValue = `http://${host.includes(':') ? `[${host}]` : host}:${addr.port}`;
    return fake;
  }

  async close(): Promise<void> {
    this.closeAc.abort();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await closed;
  }

  // --- control API ---------------------------------------------------------------------------

  /** `model` '*' sets the behaviour of every model. */
  setBehaviour(model: string, b: Behaviour): void {
    this.behaviours.set(model === '*' ? '*' : normalizeName(model), b);
  }

  resetBehaviours(): void {
    this.behaviours.clear();
  }

  queueReplies(model: string, replies: string[]): void {
    const key = normalizeName(model);
    const q = this.replyQueues.get(key) ?? [];
    q.push(...replies);
    this.replyQueues.set(key, q);
  }

  setDefaultReply(text: string): void {
    this.defaultReply = text;
    this.defaultReplyExplicit = true;
  }

  addModel(m: FakeModel): void {
    const key = normalizeName(m.name);
    const existing = this.models.get(key);
    this.models.set(key, {
      model: { ...m, name: key },
      key,
      modifiedAt: new Date(Date.UTC(2026, 7, 1, 10, 0, 0) + this.models.size * 60_000).toISOString(),
      refCount: existing?.refCount ?? 0,
      loaded: existing?.loaded,
    });
  }

  removeModel(name: string): void {
    this.models.delete(normalizeName(name));
  }

  loadedModels(): string[] {
    return [...this.models.values()].filter((s) => this.isLoaded(s)).map((s) => s.key);
  }

  async waitFor(pred: () => boolean, timeoutMs = 2000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred()) {
      if (Date.now() > deadline) throw new Error(`FakeOllama.waitFor: condition not met within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  // --- request plumbing ----------------------------------------------------------------------

  private async onRequest(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const receivedAt = Date.now();
    const method = (req.method ?? 'GET').toUpperCase();
    const path = new URL(req.url ?? '/', 'http://fake').pathname;
    const counted = INFERENCE_PATHS.has(path);
    let dropped = false;
    if (counted) {
      this.stats.active++;
      this.stats.maxActive = Math.max(this.stats.maxActive, this.stats.active);
    }
    const ac = new AbortController();
    res.on('close', () => {
      ac.abort();
      if (counted) {
        this.stats.active--;
        if (res.writableFinished || dropped) this.stats.completed++;
        else this.stats.aborted++;
      }
    });

    let rawBody = '';
    try {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      rawBody = Buffer.concat(chunks).toString('utf8');
    } catch {
      return; // client went away while sending
    }
    let body: unknown = undefined;
    if (rawBody !== '') {
      try {
        body = JSON.parse(rawBody);
      } catch {
        body = rawBody;
      }
    }
    this.requests.push({ method, path, headers: { ...req.headers }, body, receivedAt });

    // CORS (gin-contrib/cors runs first): disallowed Origin → 403 with an empty body.
    const origin = req.headers.origin;
    if (typeof origin === 'string') {
      if (!isAllowedOrigin(origin)) {
        res.writeHead(403, { 'Content-Length': '0' });
        res.end();
        return;
      }
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Vary', 'Origin');
      if (method === 'OPTIONS' && req.headers['access-control-request-method']) {
        res.writeHead(204, {
          'Access-Control-Allow-Methods': 'GET,POST,PUT,PATCH,DELETE,HEAD,OPTIONS',
          'Access-Control-Allow-Headers': 'Authorization,Content-Type,User-Agent,Accept,X-Requested-With',
        });
        res.end();
        return;
      }
    }

    const ctx: Ctx = { req, res, rawBody, path, openai: path.startsWith('/v1/'), signal: ac.signal };
    let methods = this.routes[path];
    if (!methods && path.startsWith('/v1/models/') && path.length > '/v1/models/'.length) {
      methods = { GET: (c) => this.handleV1Model(c, decodeURIComponent(path.slice('/v1/models/'.length))) };
    }
    if (!methods) {
      this.sendText(res, 404, '404 page not found');
      return;
    }
    const handler = methods[method];
    if (!handler) {
      res.setHeader('Allow', Object.keys(methods).join(', '));
      this.sendText(res, 405, '405 method not allowed');
      return;
    }
    try {
      const b = this.behaviourFor(path, body);
      if (b?.kind === 'drop-connection') {
        dropped = true;
        req.socket.destroy();
        return;
      }
      await handler(ctx);
    } catch (e) {
      if (e instanceof Aborted) return;
      if (res.headersSent) {
        res.end();
        return;
      }
      if (e instanceof HttpError) this.sendError(ctx, e.status, e.message);
      else this.sendError(ctx, 500, (e as Error).message ?? String(e));
    }
  }

  /** drop-connection is handled before any parsing (it needs no model validation). */
  private behaviourFor(path: string, body: unknown): Behaviour | undefined {
    if (!INFERENCE_PATHS.has(path) || !isObj(body) || typeof body.model !== 'string') return undefined;
    const key = normalizeName(body.model);
    if (!this.models.has(key)) return undefined;
    return this.behaviours.get(key) ?? this.behaviours.get('*');
  }

  private sendJson(res: http.ServerResponse, status: number, obj: unknown): void {
    const text = JSON.stringify(obj);
    res.writeHead(status, { 'Content-Type': JSON_CT, 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  }

  private sendText(res: http.ServerResponse, status: number, text: string): void {
    res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  }

  private sendEmpty(res: http.ServerResponse, status: number): void {
    res.writeHead(status, { 'Content-Length': '0' });
    res.end();
  }

  private sendError(ctx: Ctx, status: number, message: string): void {
    if (ctx.openai) {
      const type = status === 400 ? 'invalid_request_error' : status === 404 ? 'not_found_error' : 'api_error';
      this.sendJson(ctx.res, status, { error: { message, type, param: null, code: null } });
    } else {
      this.sendJson(ctx.res, status, { error: message });
    }
  }

  /** Parses the JSON body like gin's ShouldBindJSON into a Go struct named `structName`. */
  private parseBody(ctx: Ctx, structName: string): Record<string, unknown> {
    if (ctx.rawBody.trim() === '') throw new HttpError(400, ctx.openai ? 'EOF' : 'missing request body');
    let v: unknown;
    try {
      v = JSON.parse(ctx.rawBody);
    } catch {
      const first = ctx.rawBody.trim()[0] ?? '';
      if ('{["-0123456789tfn'.includes(first)) throw new HttpError(400, 'unexpected EOF');
      throw new HttpError(400, `invalid character '${first}' looking for beginning of value`);
    }
    if (v === null) return {};
    if (!isObj(v)) throw new HttpError(400, `json: cannot unmarshal ${goKind(v)} into Go value of type ${structName}`);
    return v;
  }

  /** Go decode error for a field of the wrong JSON type. */
  private checkTypes(body: Record<string, unknown>, structName: string, fields: Record<string, 'string' | 'bool' | 'array' | 'object' | 'number'>): void {
    const goTypes = { string: 'string', bool: 'bool', array: '[]', object: 'map', number: 'int' } as const;
    for (const [field, kind] of Object.entries(fields)) {
      const v = body[field];
      if (v === undefined || v === null) continue;
      const k = goKind(v);
      const ok = kind === 'number' ? k === 'number' : kind === 'object' ? k === 'object' : k === kind;
      if (!ok) {
        throw new HttpError(400, `json: cannot unmarshal ${k} into Go struct field ${structName}.${field} of type ${goTypes[kind]}`);
      }
    }
  }

  private findModel(name: unknown): ModelState | undefined {
    if (typeof name !== 'string' || name === '') return undefined;
    return this.models.get(normalizeName(name));
  }

  private caps(st: ModelState): string[] {
    return st.model.capabilities ?? ['completion'];
  }

  // --- model load / keep_alive -----------------------------------------------------------------

  private isLoaded(st: ModelState): boolean {
    if (!st.loaded) return false;
    if (st.refCount > 0) return true;
    if (st.loaded.expiresAt <= Date.now()) {
      st.loaded = undefined;
      return false;
    }
    return true;
  }

  /** Waits until the model is loaded (sharing an in-flight load). Returns the load wait in ms. */
  private async ensureLoaded(st: ModelState, numCtx: number, signal: AbortSignal): Promise<number> {
    const t0 = performance.now();
    for (;;) {
      if (st.loading) {
        await raceAbort(st.loading, signal);
        continue;
      }
      if (this.isLoaded(st) && st.loaded?.numCtx === numCtx) break;
      // not loaded, expired, or a runner option (num_ctx) changed → (re)load
      st.loaded = undefined;
      const p = sleep(this.loadDelayMs, this.closeAc.signal).then(() => {
        st.loaded = { numCtx, expiresAt: Date.now() + DEFAULT_KEEP_ALIVE_MS };
      });
      st.loading = p.finally(() => {
        st.loading = undefined;
      });
      st.loading.catch(() => undefined);
    }
    return performance.now() - t0;
  }

  private acquire(st: ModelState): void {
    st.refCount++;
  }

  private release(st: ModelState, keepAliveMs: number | undefined): void {
    st.refCount = Math.max(0, st.refCount - 1);
    if (!st.loaded) return;
    const ka = keepAliveMs ?? DEFAULT_KEEP_ALIVE_MS;
    if (ka === 0) {
      if (st.refCount === 0) st.loaded = undefined;
    } else {
      st.loaded.expiresAt = ka === Infinity ? Infinity : Date.now() + ka;
    }
  }

  /**
   * Applies the pre-generation behaviours (error statuses, hang). Returns the behaviour for the
   * generation phase (normal / midstream-error / stall-after).
   */
  private async preflight(ctx: Ctx, st: ModelState): Promise<Behaviour> {
    const b = this.behaviours.get(st.key) ?? this.behaviours.get('*') ?? { kind: 'normal' };
    switch (b.kind) {
      case 'queue-full':
        throw new HttpError(503, ERR_QUEUE_FULL);
      case 'reject':
        throw new HttpError(b.status, b.error);
      case 'crash':
        throw new HttpError(500, ERR_CRASH);
      case 'oom':
        // the load is attempted (no bytes meanwhile), then fails; the model stays unloaded
        if (!this.isLoaded(st)) await sleep(this.loadDelayMs, ctx.signal);
        st.loaded = undefined;
        throw new HttpError(500, b.message ?? ERR_OOM_DEFAULT);
      case 'hang':
        await untilAborted(ctx.signal);
        return b;
      case 'drop-connection':
        ctx.req.socket.destroy();
        throw new Aborted();
      default:
        return b;
    }
  }

  // --- routes: metadata ----------------------------------------------------------------------

  private details(st: ModelState): Record<string, unknown> {
    const m = st.model;
    const family = m.family ?? (this.caps(st).includes('embedding') ? 'nomic-bert' : 'llama');
    const families = this.caps(st).includes('vision') ? [family, 'clip'] : [family];
    return {
      parent_model: '',
      format: 'gguf',
      family,
      families,
      parameter_size: m.parameterSize ?? guessParamSize(st.key),
      quantization_level: m.quantization ?? 'Q4_K_M',
    };
  }

  private size(st: ModelState): number {
    return st.model.sizeBytes ?? 4_000_000_000;
  }

  private tagEntry(st: ModelState): Record<string, unknown> {
    return {
      name: st.key,
      model: st.key,
      modified_at: st.modifiedAt,
      size: this.size(st),
      digest: sha256(st.key),
      details: this.details(st),
      capabilities: this.caps(st),
    };
  }

  private handlePs(ctx: Ctx): void {
    const models = [...this.models.values()]
      .filter((s) => this.isLoaded(s))
      .map((s) => {
        const exp = s.refCount > 0 ? Date.now() + DEFAULT_KEEP_ALIVE_MS : (s.loaded?.expiresAt ?? Date.now());
        return {
          name: s.key,
          model: s.key,
          size: this.size(s),
          digest: sha256(s.key),
          details: this.details(s),
          expires_at: new Date(exp === Infinity ? Date.now() + 292 * 365.25 * 86_400_000 : exp).toISOString(),
          size_vram: s.model.sizeVramBytes ?? this.size(s),
          context_length: s.loaded?.numCtx ?? DEFAULT_NUM_CTX,
        };
      });
    this.sendJson(ctx.res, 200, { models });
  }

  private handleShow(ctx: Ctx): void {
    const body = this.parseBody(ctx, 'api.ShowRequest');
    this.checkTypes(body, 'ShowRequest', { model: 'string', name: 'string' });
    const name = (body.model as string | undefined) || (body.name as string | undefined) || '';
    const st = this.findModel(name);
    if (!st) throw new HttpError(404, `model '${name}' not found`);
    const d = this.details(st);
    const family = String(d.family);
    const dims = this.dims(st);
    const isEmbed = this.caps(st).includes('embedding');
    const template = isEmbed ? '{{ .Prompt }}' : '{{ if .System }}<|system|>{{ .System }}{{ end }}<|user|>{{ .Prompt }}<|assistant|>';
    const parameters = isEmbed
      ? 'num_ctx                        8192'
      : 'stop                           "<|eot_id|>"\nstop                           "<|start_header_id|>"';
    this.sendJson(ctx.res, 200, {
      license: 'fake license',
      modelfile: `# Modelfile generated by "ollama show"\nFROM /root/.ollama/models/blobs/sha256-${sha256(st.key)}\nTEMPLATE """${template}"""\n${parameters.replace(/ +/g, ' ').replace(/^/gm, 'PARAMETER ')}\n`,
      parameters,
      template,
      details: d,
      model_info: {
        'general.architecture': family,
        'general.parameter_count': paramCount(String(d.parameter_size)),
        'general.file_type': 15,
        [`${family}.context_length`]: isEmbed ? 2048 : 131072,
        [`${family}.embedding_length`]: dims,
      },
      capabilities: this.caps(st),
      modified_at: st.modifiedAt,
    });
  }

  private dims(st: ModelState): number {
    return st.model.embeddingDims ?? (this.caps(st).includes('embedding') ? 768 : 4096);
  }

  // --- routes: generation ----------------------------------------------------------------------

  private validateThink(v: unknown): void {
    if (v === undefined || v === null || typeof v === 'boolean') return;
    if (typeof v === 'string' && ['high', 'medium', 'low', 'max'].includes(v)) return;
    const shown = typeof v === 'string' ? v : JSON.stringify(v);
    throw new HttpError(400, `invalid think value: ${goQuote(shown)} (must be "high", "medium", "low", "max", true, or false)`);
  }

  private validateFormat(v: unknown): void {
    if (v === undefined || v === null) return;
    if (v === 'json' || isObj(v)) return;
    throw new HttpError(400, `invalid format: ${goQuote(JSON.stringify(v))}; expected "json" or a valid JSON Schema object`);
  }

  private validateCommon(body: Record<string, unknown>): void {
    this.validateThink(body.think);
    const tl = body.top_logprobs;
    if (typeof tl === 'number' && (tl < 0 || tl > 20)) throw new HttpError(400, 'top_logprobs must be between 0 and 20');
  }

  private checkThinking(st: ModelState, name: string, think: unknown): void {
    if (think === undefined || think === null || think === false) return;
    if (!this.caps(st).includes('thinking')) throw new HttpError(400, `${goQuote(name)} does not support thinking`);
  }

  private checkVision(st: ModelState, hasImages: boolean): void {
    if (hasImages && !this.caps(st).includes('vision')) throw new HttpError(400, ERR_NO_VISION);
  }

  private checkTools(st: ModelState, name: string, tools: unknown): void {
    if (Array.isArray(tools) && tools.length > 0 && !this.caps(st).includes('tools')) {
      throw new HttpError(400, `${qualifiedName(name)} does not support tools`);
    }
  }

  /** Picks the reply text and turns it into tokens, honouring stop / num_predict. */
  private planReply(st: ModelState, format: unknown, options: Record<string, unknown>): { tokens: string[]; doneReason: 'stop' | 'length' } {
    let text = this.replyQueues.get(st.key)?.shift();
    if (text === undefined) {
      if (format !== undefined && format !== null && !this.defaultReplyExplicit) {
        text = format === 'json' ? spacedJson({ response: this.defaultReply }) : spacedJson(instanceFor(format));
      } else {
        text = this.defaultReply;
      }
    }
    const stops =
      typeof options.stop === 'string'
        ? [options.stop]
        : Array.isArray(options.stop)
          ? options.stop.filter((s): s is string => typeof s === 'string' && s !== '')
          : [];
    for (const s of stops) {
      const i = text.indexOf(s);
      if (i >= 0) text = text.slice(0, i);
    }
    let tokens = tokenize(text);
    let doneReason: 'stop' | 'length' = 'stop';
    const np = options.num_predict;
    if (typeof np === 'number' && np >= 0 && tokens.length > np) {
      tokens = tokens.slice(0, Math.floor(np));
      doneReason = 'length';
    }
    return { tokens, doneReason };
  }

  private numCtx(options: Record<string, unknown>): number {
    return typeof options.num_ctx === 'number' && options.num_ctx > 0 ? options.num_ctx : DEFAULT_NUM_CTX;
  }

  /** Empty prompt / messages: load (done_reason load) or unload with keep_alive 0 (done_reason unload). */
  private async loadOnly(
    ctx: Ctx,
    st: ModelState,
    name: string,
    keepAliveMs: number | undefined,
    numCtx: number,
    extra: Record<string, unknown>,
  ): Promise<void> {
    if (keepAliveMs === 0) {
      if (st.refCount === 0) st.loaded = undefined;
      this.sendJson(ctx.res, 200, { model: name, created_at: nowIso(), ...extra, done: true, done_reason: 'unload' });
      return;
    }
    await this.preflight(ctx, st);
    await this.ensureLoaded(st, numCtx, ctx.signal);
    this.acquire(st);
    this.release(st, keepAliveMs);
    this.sendJson(ctx.res, 200, { model: name, created_at: nowIso(), ...extra, done: true, done_reason: 'load' });
  }

  private async handleGenerate(ctx: Ctx): Promise<void> {
    const body = this.parseBody(ctx, 'api.GenerateRequest');
    this.checkTypes(body, 'GenerateRequest', {
      model: 'string',
      prompt: 'string',
      suffix: 'string',
      system: 'string',
      template: 'string',
      stream: 'bool',
      raw: 'bool',
      images: 'array',
      options: 'object',
      context: 'array',
    });
    const keepAliveMs = parseKeepAlive(body.keep_alive);
    this.validateCommon(body);
    const name = (body.model as string | undefined) ?? '';
    const st = this.findModel(name);
    if (!st) throw new HttpError(404, `model '${name}' not found`);
    if (body.raw === true && (body.template || body.system || body.context)) {
      throw new HttpError(400, 'raw mode does not support template, system, or context');
    }
    const images = (body.images as unknown[] | undefined) ?? [];
    if (images.some((i) => typeof i !== 'string'))
      throw new HttpError(400, 'json: cannot unmarshal number into Go struct field GenerateRequest.images of type api.ImageData');
    if (!this.caps(st).includes('completion')) throw new HttpError(400, `${goQuote(name)} does not support generate`);
    this.checkThinking(st, name, body.think);
    this.checkVision(st, images.length > 0);
    this.validateFormat(body.format);
    const options = (body.options as Record<string, unknown> | undefined) ?? {};
    const prompt = (body.prompt as string | undefined) ?? '';
    if (prompt === '' && images.length === 0) {
      await this.loadOnly(ctx, st, name, keepAliveMs, this.numCtx(options), { response: '' });
      return;
    }
    const { tokens, doneReason } = this.planReply(st, body.format, options);
    const created = (): string => nowIso();
    const fmt: Formatter = {
      streamContentType: NDJSON_CT,
      chunk: (tok) => JSON.stringify({ model: name, created_at: created(), response: tok, done: false }) + '\n',
      final: (m, dr) => JSON.stringify({ model: name, created_at: created(), response: '', done: true, done_reason: dr, context: fakeContext(m), ...m }) + '\n',
      errorFrame: (msg) => JSON.stringify({ error: msg }) + '\n',
      whole: (full, m, dr) => ({ model: name, created_at: created(), response: full, done: true, done_reason: dr, context: fakeContext(m), ...m }),
    };
    await this.generate({
      ctx,
      st,
      requestedName: name,
      stream: body.stream !== false,
      promptTokens: countWords(prompt) + countWords((body.system as string | undefined) ?? ''),
      tokens,
      doneReason,
      keepAliveMs,
      numCtx: this.numCtx(options),
      startedAt: performance.now(),
      fmt,
    });
  }

  private async handleChat(ctx: Ctx): Promise<void> {
    const body = this.parseBody(ctx, 'api.ChatRequest');
    this.checkTypes(body, 'ChatRequest', { model: 'string', stream: 'bool', messages: 'array', tools: 'array', options: 'object' });
    const keepAliveMs = parseKeepAlive(body.keep_alive);
    this.validateCommon(body);
    const name = (body.model as string | undefined) ?? '';
    if (name === '') throw new HttpError(400, 'model is required');
    const st = this.findModel(name);
    if (!st) throw new HttpError(404, `model '${name}' not found`);
    const messages = (body.messages as unknown[] | undefined) ?? [];
    let promptTokens = 0;
    let hasImages = false;
    for (const m of messages) {
      if (!isObj(m)) throw new HttpError(400, `json: cannot unmarshal ${goKind(m)} into Go struct field ChatRequest.messages of type api.Message`);
      this.checkTypes(m, 'ChatRequest.messages', { role: 'string', content: 'string', images: 'array' });
      promptTokens += countWords((m.content as string | undefined) ?? '');
      if (Array.isArray(m.images) && m.images.length > 0) hasImages = true;
    }
    if (!this.caps(st).includes('completion')) throw new HttpError(400, `${goQuote(name)} does not support chat`);
    this.checkTools(st, name, body.tools);
    this.checkThinking(st, name, body.think);
    this.checkVision(st, hasImages);
    this.validateFormat(body.format);
    const options = (body.options as Record<string, unknown> | undefined) ?? {};
    if (messages.length === 0) {
      await this.loadOnly(ctx, st, name, keepAliveMs, this.numCtx(options), { message: { role: 'assistant', content: '' } });
      return;
    }
    const { tokens, doneReason } = this.planReply(st, body.format, options);
    const msg = (content: string): Record<string, unknown> => ({ role: 'assistant', content });
    const fmt: Formatter = {
      streamContentType: NDJSON_CT,
      chunk: (tok) => JSON.stringify({ model: name, created_at: nowIso(), message: msg(tok), done: false }) + '\n',
      final: (m, dr) => JSON.stringify({ model: name, created_at: nowIso(), message: msg(''), done: true, done_reason: dr, ...m }) + '\n',
      errorFrame: (e) => JSON.stringify({ error: e }) + '\n',
      whole: (full, m, dr) => ({ model: name, created_at: nowIso(), message: msg(full), done: true, done_reason: dr, ...m }),
    };
    await this.generate({
      ctx,
      st,
      requestedName: name,
      stream: body.stream !== false,
      promptTokens,
      tokens,
      doneReason,
      keepAliveMs,
      numCtx: this.numCtx(options),
      startedAt: performance.now(),
      fmt,
    });
  }

  private async handleV1Chat(ctx: Ctx): Promise<void> {
    const body = this.parseBody(ctx, 'openai.ChatCompletionRequest');
    this.checkTypes(body, 'ChatCompletionRequest', { model: 'string', stream: 'bool', messages: 'array', tools: 'array' });
    const name = (body.model as string | undefined) ?? '';
    const messages = (body.messages as unknown[] | undefined) ?? [];
    if (messages.length === 0) throw new HttpError(400, `[] is too short - 'messages'`);
    const st = this.findModel(name);
    if (!st) throw new HttpError(404, `model '${name}' not found`);
    let promptTokens = 0;
    let hasImages = false;
    for (const m of messages) {
      if (!isObj(m)) throw new HttpError(400, 'invalid message format');
      const c = m.content;
      if (typeof c === 'string') promptTokens += countWords(c);
      else if (Array.isArray(c)) {
        for (const part of c) {
          if (!isObj(part)) throw new HttpError(400, 'invalid message format');
          if (part.type === 'text' && typeof part.text === 'string') promptTokens += countWords(part.text);
          else if (part.type === 'image_url') hasImages = true;
          else throw new HttpError(400, 'invalid message format');
        }
      } else if (c !== undefined && c !== null) throw new HttpError(400, 'invalid message content type');
    }
    let format: unknown = undefined;
    const rf = body.response_format;
    if (isObj(rf)) {
      if (rf.type === 'json_object') format = 'json';
      else if (rf.type === 'json_schema') {
        const js = rf.json_schema;
        if (!isObj(js) || !isObj(js.schema)) throw new HttpError(400, 'invalid json_schema in response_format');
        format = js.schema;
      } else if (rf.type !== 'text') throw new HttpError(400, `invalid response format type: ${goQuote(String(rf.type))}`);
    }
    if (!this.caps(st).includes('completion')) throw new HttpError(400, `${goQuote(name)} does not support chat`);
    this.checkTools(st, name, body.tools);
    this.checkVision(st, hasImages);
    const options: Record<string, unknown> = {};
    const maxTokens = body.max_completion_tokens ?? body.max_tokens;
    if (typeof maxTokens === 'number') options.num_predict = maxTokens;
    if (body.stop !== undefined) options.stop = body.stop;
    const { tokens, doneReason } = this.planReply(st, format, options);
    const id = `chatcmpl-${Math.floor(Math.random() * 1000)}`;
    const created = Math.floor(Date.now() / 1000);
    const base = { id, created, model: name, system_fingerprint: 'fp_ollama' };
    const includeUsage = isObj(body.stream_options) && body.stream_options.include_usage === true;
    const usage = (m: Metrics): Record<string, number> => ({
      prompt_tokens: m.prompt_eval_count,
      completion_tokens: m.eval_count,
      total_tokens: m.prompt_eval_count + m.eval_count,
    });
    const sse = (o: unknown): string => `data: ${JSON.stringify(o)}\n\n`;
    const fmt: Formatter = {
      streamContentType: SSE_CT,
      chunk: (tok) =>
        sse({ ...base, object: 'chat.completion.chunk', choices: [{ index: 0, delta: { role: 'assistant', content: tok }, finish_reason: null }] }),
      final: (m, dr) =>
        sse({ ...base, object: 'chat.completion.chunk', choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: dr }] }) +
        (includeUsage ? sse({ ...base, object: 'chat.completion.chunk', choices: [], usage: usage(m) }) : '') +
        'data: [DONE]\n\n',
      errorFrame: (e) => sse({ error: { message: e, type: 'api_error', param: null, code: null } }),
      whole: (full, m, dr) => ({
        ...base,
        object: 'chat.completion',
        choices: [{ index: 0, message: { role: 'assistant', content: full }, finish_reason: dr }],
        usage: usage(m),
      }),
    };
    await this.generate({
      ctx,
      st,
      requestedName: name,
      stream: body.stream === true,
      promptTokens,
      tokens,
      doneReason,
      keepAliveMs: undefined,
      numCtx: DEFAULT_NUM_CTX,
      startedAt: performance.now(),
      fmt,
    });
  }

  /** The shared generation engine: behaviours, load, streaming / aggregation, metrics, keep_alive. */
  private async generate(p: GenPlan): Promise<void> {
    const { ctx, st, fmt } = p;
    const b = await this.preflight(ctx, st);
    const loadMs = await this.ensureLoaded(st, p.numCtx, ctx.signal);
    this.acquire(st);
    try {
      const genStart = performance.now();
      const metrics = (evalCount: number): Metrics => {
        const end = performance.now();
        return {
          total_duration: ns(end - p.startedAt),
          load_duration: ns(loadMs),
          prompt_eval_count: p.promptTokens,
          prompt_eval_duration: ns(Math.max(0.01, p.promptTokens * 0.05)),
          eval_count: evalCount,
          eval_duration: ns(Math.max(0.001 * Math.max(1, evalCount), end - genStart)),
        };
      };
      const delay = this.tokenDelayMs;
      const tokenAt = (i: number): string => (p.tokens.length ? p.tokens[i % p.tokens.length] : i === 0 ? 'The' : ' model');

      if (b.kind === 'midstream-error') {
        const msg = b.message ?? ERR_MIDSTREAM_DEFAULT;
        if (!p.stream || b.afterChunks <= 0) {
          if (!p.stream) await sleep(delay * b.afterChunks, ctx.signal);
          throw new HttpError(500, msg);
        }
        for (let i = 0; i < b.afterChunks; i++) {
          if (i > 0) await sleep(delay, ctx.signal);
          this.writeStream(ctx, fmt, fmt.chunk(tokenAt(i)));
        }
        await sleep(delay, ctx.signal);
        this.writeStream(ctx, fmt, fmt.errorFrame(msg));
        ctx.res.end();
        return;
      }
      if (b.kind === 'stall-after') {
        if (p.stream) {
          for (let i = 0; i < b.chunks; i++) {
            if (i > 0) await sleep(delay, ctx.signal);
            this.writeStream(ctx, fmt, fmt.chunk(tokenAt(i)));
          }
        }
        await untilAborted(ctx.signal);
        return;
      }

      if (p.stream) {
        for (let i = 0; i < p.tokens.length; i++) {
          if (i > 0) await sleep(delay, ctx.signal);
          this.writeStream(ctx, fmt, fmt.chunk(p.tokens[i]));
        }
        if (p.tokens.length > 0) await sleep(delay, ctx.signal);
        this.writeStream(ctx, fmt, fmt.final(metrics(p.tokens.length), p.doneReason));
        ctx.res.end();
      } else {
        // no bytes until the whole generation is done
        await sleep(delay * p.tokens.length, ctx.signal);
        this.sendJson(ctx.res, 200, fmt.whole(p.tokens.join(''), metrics(p.tokens.length), p.doneReason));
      }
    } finally {
      this.release(st, p.keepAliveMs);
    }
  }

  private writeStream(ctx: Ctx, fmt: Formatter, data: string): void {
    if (ctx.signal.aborted) throw new Aborted();
    if (!ctx.res.headersSent) {
      const headers: Record<string, string> = { 'Content-Type': fmt.streamContentType };
      if (fmt.streamContentType === SSE_CT) {
        headers['Cache-Control'] = 'no-cache';
        headers.Connection = 'keep-alive';
      }
      ctx.res.writeHead(200, headers);
    }
    ctx.res.write(data);
  }

  // --- routes: embeddings ----------------------------------------------------------------------

  private async embedCommon(ctx: Ctx, st: ModelState, keepAliveMs: number | undefined, numCtx: number): Promise<{ loadMs: number; startedAt: number }> {
    const startedAt = performance.now();
    const b = await this.preflight(ctx, st);
    const loadMs = await this.ensureLoaded(st, numCtx, ctx.signal);
    this.acquire(st);
    try {
      if (b.kind === 'midstream-error') throw new HttpError(500, b.message ?? ERR_MIDSTREAM_DEFAULT);
      if (b.kind === 'stall-after') await untilAborted(ctx.signal);
      await sleep(this.tokenDelayMs, ctx.signal);
    } finally {
      this.release(st, keepAliveMs);
    }
    return { loadMs, startedAt };
  }

  private embedVectors(st: ModelState, inputs: string[], dimensions: unknown): number[][] {
    const full = this.dims(st);
    const dims = typeof dimensions === 'number' && dimensions > 0 && dimensions < full ? Math.floor(dimensions) : full;
    return inputs.map((t) => {
      const v = fakeEmbedding(t, full).slice(0, dims);
      if (dims === full) return v;
      const n = Math.sqrt(v.reduce((a, x) => a + x * x, 0)) || 1;
      return v.map((x) => Math.fround(x / n));
    });
  }

  private readInputs(input: unknown): string[] {
    if (input === undefined || input === null) return [];
    if (typeof input === 'string') return input === '' ? [] : [input];
    if (Array.isArray(input)) {
      if (input.some((x) => typeof x !== 'string')) throw new HttpError(400, 'invalid input type');
      return input as string[];
    }
    throw new HttpError(400, 'invalid input type');
  }

  private async handleEmbed(ctx: Ctx): Promise<void> {
    const body = this.parseBody(ctx, 'api.EmbedRequest');
    this.checkTypes(body, 'EmbedRequest', { model: 'string', truncate: 'bool', dimensions: 'number', options: 'object' });
    const keepAliveMs = parseKeepAlive(body.keep_alive);
    const name = (body.model as string | undefined) ?? '';
    const inputs = this.readInputs(body.input);
    const st = this.findModel(name);
    if (!st) throw new HttpError(404, `model '${name}' not found`);
    const options = (body.options as Record<string, unknown> | undefined) ?? {};
    const { loadMs, startedAt } = await this.embedCommon(ctx, st, keepAliveMs, this.numCtx(options));
    const promptTokens = inputs.reduce((a, t) => a + Math.max(1, countWords(t)), 0);
    this.sendJson(ctx.res, 200, {
      model: name,
      embeddings: this.embedVectors(st, inputs, body.dimensions),
      total_duration: ns(performance.now() - startedAt),
      load_duration: ns(loadMs),
      prompt_eval_count: promptTokens,
    });
  }

  private async handleLegacyEmbeddings(ctx: Ctx): Promise<void> {
    const body = this.parseBody(ctx, 'api.EmbeddingRequest');
    this.checkTypes(body, 'EmbeddingRequest', { model: 'string', prompt: 'string', options: 'object' });
    const keepAliveMs = parseKeepAlive(body.keep_alive);
    const name = (body.model as string | undefined) ?? '';
    const st = this.findModel(name);
    if (!st) throw new HttpError(404, `model ${goQuote(name)} not found, try pulling it first`);
    const options = (body.options as Record<string, unknown> | undefined) ?? {};
    await this.embedCommon(ctx, st, keepAliveMs, this.numCtx(options));
    const prompt = (body.prompt as string | undefined) ?? '';
    this.sendJson(ctx.res, 200, { embedding: prompt === '' ? [] : this.embedVectors(st, [prompt], undefined)[0] });
  }

  private async handleV1Embeddings(ctx: Ctx): Promise<void> {
    const body = this.parseBody(ctx, 'openai.EmbedRequest');
    this.checkTypes(body, 'EmbedRequest', { model: 'string', encoding_format: 'string', dimensions: 'number' });
    const name = (body.model as string | undefined) ?? '';
    if (body.input === undefined || body.input === null || body.input === '' || (Array.isArray(body.input) && body.input.length === 0)) {
      throw new HttpError(400, 'invalid input');
    }
    const inputs = this.readInputs(body.input);
    const st = this.findModel(name);
    if (!st) throw new HttpError(404, `model '${name}' not found`);
    const enc = body.encoding_format ?? 'float';
    if (enc !== 'float' && enc !== 'base64')
      throw new HttpError(400, `invalid encoding format: ${goQuote(typeof enc === 'string' ? enc : JSON.stringify(enc))}`);
    await this.embedCommon(ctx, st, undefined, DEFAULT_NUM_CTX);
    const vectors = this.embedVectors(st, inputs, body.dimensions);
    const promptTokens = inputs.reduce((a, t) => a + Math.max(1, countWords(t)), 0);
    this.sendJson(ctx.res, 200, {
      object: 'list',
      data: vectors.map((v, index) => ({
        object: 'embedding',
        embedding: enc === 'base64' ? Buffer.from(new Float32Array(v).buffer).toString('base64') : v,
        index,
      })),
      model: name,
      usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
    });
  }

  // --- routes: model management ----------------------------------------------------------------

  private async handlePull(ctx: Ctx): Promise<void> {
    const body = this.parseBody(ctx, 'api.PullRequest');
    this.checkTypes(body, 'PullRequest', { model: 'string', name: 'string', stream: 'bool', insecure: 'bool' });
    const name = (body.model as string | undefined) || (body.name as string | undefined) || '';
    if (!/^[a-zA-Z0-9][a-zA-Z0-9_.\-/]*(:[a-zA-Z0-9_.-]+)?$/.test(name)) throw new HttpError(400, 'invalid model name');
    const stream = body.stream !== false;
    const fail = this.pullFailPattern.test(name);
    const key = normalizeName(name);
    const digest = sha256('blob:' + key);
    const total = this.models.get(key)?.model.sizeBytes ?? 2_019_393_189;
    const steps: Array<Record<string, unknown>> = [{ status: 'pulling manifest' }];
    if (!fail) {
      for (let k = 0; k <= 4; k++) {
        steps.push({ status: `pulling ${digest.slice(0, 12)}`, digest: `sha256:${digest}`, total, completed: Math.round((total * k) / 4) });
      }
      steps.push({ status: 'verifying sha256 digest' }, { status: 'writing manifest' }, { status: 'removing any unused layers' }, { status: 'success' });
    }
    const gap = this.pullDelayMs / (steps.length + (fail ? 1 : 0));
    if (stream) {
      const fmt: Formatter = {
        streamContentType: NDJSON_CT,
        chunk: (s) => s,
        final: () => '',
        errorFrame: (e) => JSON.stringify({ error: e }) + '\n',
        whole: () => ({}),
      };
      for (const [i, s] of steps.entries()) {
        if (i > 0) await sleep(gap, ctx.signal);
        if (s.status === 'success') this.addPulled(key);
        this.writeStream(ctx, fmt, JSON.stringify(s) + '\n');
      }
      if (fail) {
        await sleep(gap, ctx.signal);
        this.writeStream(ctx, fmt, fmt.errorFrame(ERR_PULL_MANIFEST));
      }
      ctx.res.end();
      return;
    }
    await sleep(this.pullDelayMs, ctx.signal);
    if (fail) throw new HttpError(500, ERR_PULL_MANIFEST);
    this.addPulled(key);
    this.sendJson(ctx.res, 200, { status: 'success' });
  }

  private addPulled(key: string): void {
    if (this.models.has(key)) return;
    const known = DEFAULT_MODELS.find((m) => normalizeName(m.name) === key);
    this.addModel(known ? { ...known, name: key } : guessModel(key));
  }

  private handleDelete(ctx: Ctx): void {
    const body = this.parseBody(ctx, 'api.DeleteRequest');
    this.checkTypes(body, 'DeleteRequest', { model: 'string', name: 'string' });
    const name = (body.model as string | undefined) || (body.name as string | undefined) || '';
    const st = this.findModel(name);
    if (!st) throw new HttpError(404, `model '${name}' not found`);
    this.models.delete(st.key);
    this.sendEmpty(ctx.res, 200);
  }

  private handleCopy(ctx: Ctx): void {
    const body = this.parseBody(ctx, 'api.CopyRequest');
    this.checkTypes(body, 'CopyRequest', { source: 'string', destination: 'string' });
    const source = (body.source as string | undefined) ?? '';
    const destination = (body.destination as string | undefined) ?? '';
    const st = this.findModel(source);
    if (!st) throw new HttpError(404, `model ${goQuote(source)} not found`);
    if (destination === '') throw new HttpError(400, 'invalid model name');
    this.addModel({ ...st.model, name: destination });
    this.sendEmpty(ctx.res, 200);
  }

  private handleV1Models(ctx: Ctx): void {
    this.sendJson(ctx.res, 200, {
      object: 'list',
      data: [...this.models.values()].map((s) => this.v1Model(s)),
    });
  }

  private handleV1Model(ctx: Ctx, name: string): void {
    const st = this.findModel(name);
    if (!st) throw new HttpError(404, `model '${name}' not found`);
    this.sendJson(ctx.res, 200, this.v1Model(st));
  }

  private v1Model(s: ModelState): Record<string, unknown> {
    const owner = s.key.includes('/') ? s.key.split('/').slice(-2, -1)[0] : 'library';
    return { id: s.key, object: 'model', created: Math.floor(Date.parse(s.modifiedAt) / 1000), owned_by: owner };
  }
}

function fakeContext(m: Metrics): number[] {
  const n = Math.min(64, m.prompt_eval_count + m.eval_count);
  return Array.from({ length: n }, (_, i) => 128000 + i);
}

function guessParamSize(name: string): string {
  const m = /:(\d+(?:\.\d+)?)([bm])/i.exec(name);
  if (!m) return '7B';
  return m[2].toLowerCase() === 'b' ? `${parseFloat(m[1]).toFixed(1)}B` : `${m[1]}M`;
}

function paramCount(size: string): number {
  const m = /^(\d+(?:\.\d+)?)([BM])$/i.exec(size);
  if (!m) return 7_000_000_000;
  return Math.round(parseFloat(m[1]) * (m[2].toUpperCase() === 'B' ? 1e9 : 1e6));
}

/** Capabilities guessed from a model name (for pulled models and the CLI). */
export function guessModel(name: string): FakeModel {
  const known = DEFAULT_MODELS.find((m) => normalizeName(m.name) === normalizeName(name));
  if (known) return { ...known };
  const n = name.toLowerCase();
  if (/embed|bge|minilm/.test(n)) return { name, capabilities: ['embedding'], embeddingDims: 768, family: 'bert' };
  if (/llava|vision|moondream|bakllava/.test(n)) return { name, capabilities: ['completion', 'vision'] };
  if (/qwen3|deepseek-r1|gpt-oss/.test(n)) return { name, capabilities: ['completion', 'tools', 'thinking'] };
  if (/llama3|mistral|qwen/.test(n)) return { name, capabilities: ['completion', 'tools'] };
  return { name, capabilities: ['completion'] };
}
