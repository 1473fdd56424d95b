/**
 * Fake OpenAI-compatible server (the shape vLLM, llama.cpp's server and LM Studio speak) for tests.
 * Loopback only; node's `http` module only.
 *
 * - GET /v1/models, GET /v1/models/:id
 * - POST /v1/chat/completions and /v1/completions, streamed (SSE `data: {...}\n\n`, a finish chunk,
 *   a usage chunk when `stream_options.include_usage`, then `data: [DONE]`) or whole
 * - POST /v1/embeddings
 * - errors in OpenAI's shape `{"error":{"message","type","param","code"}}` with real statuses:
 *   401 bad key, 404 model_not_found, 400 bad body, and on demand 429 / 500 / 503
 * - behaviours per model: delays, hang, stall, mid-stream error, dropped connection
 * - `stats.generations` counts generations the fake accepted (the proof of "never two")
 * - `close()` makes the port refuse connections; `restart()` listens on the same port again
 */
import * as http from 'node:http';
import type { Socket } from 'node:net';
import { fakeEmbedding, tokenize } from './fake-ollama';

export type FakeOpenAiBehaviour =
  | { kind: 'normal' }
  /** Refuses before generating, with this status and an OpenAI error body (429/5xx: a Retry-After too). */
  | { kind: 'error'; status: number; message?: string; type?: string; code?: string | null }
  /** Accepts (headers sent when streaming) and then never sends a byte. */
  | { kind: 'hang' }
  | { kind: 'stall-after'; chunks: number }
  | { kind: 'midstream-error'; afterChunks: number; message?: string }
  /** Ends the body after some tokens: no finish_reason, no `[DONE]`. */
  | { kind: 'truncate'; afterChunks: number }
  /** Closes the socket without an answer. */
  | { kind: 'drop-connection' };

export interface FakeOpenAiOptions {
  models?: string[];
  /** Required Bearer key; unset = no auth (like vLLM without --api-key). */
  apiKey?: string;
  reply?: string;
  embeddingDims?: number;
  /** Before the status line (a slow acceptance). */
  headerDelayMs?: number;
  /** After the headers, before the first token (prefill / a cold load). */
  firstChunkDelayMs?: number;
  /** Between two tokens. */
  chunkDelayMs?: number;
  host?: string;
  port?: number;
}

export interface FakeOpenAiRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: unknown;
}

export interface FakeOpenAiStats {
  /** Chat/completion requests accepted for generation (not those refused with an error). */
  generations: number;
  embeddings: number;
  active: number;
  completed: number;
  /** The client went away before the answer was complete. */
  aborted: number;
}

export const DEFAULT_OPENAI_MODELS = ['meta-llama/Llama-3.1-8B-Instruct', 'BAAI/bge-small-en-v1.5'];
const DEFAULT_REPLY = 'Hello from the fake OpenAI server.';

type Json = Record<string, unknown>;

class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: string,
    readonly code: string | null = null,
    readonly param: string | null = null,
  ) {
    super(message);
  }
}

function isObj(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function defaultErrorFor(status: number): { message: string; type: string; code: string | null } {
  if (status === 429) return { message: 'Rate limit reached for requests. Please try again later.', type: 'requests', code: 'rate_limit_exceeded' };
  if (status === 503) return { message: 'The server is overloaded or not ready yet.', type: 'server_error', code: null };
  if (status >= 500) return { message: 'The server had an error while processing your request.', type: 'server_error', code: null };
  if (status === 401) return { message: 'Incorrect API key provided.', type: 'invalid_request_error', code: 'invalid_api_key' };
  return { message: `Request failed with status ${status}.`, type: 'invalid_request_error', code: null };
}

/** A minimal instance of a JSON schema, so a json_schema request gets valid output. */
function instanceFor(schema: unknown, depth = 0): unknown {
  if (!isObj(schema) || depth > 6) return {};
  if (Array.isArray(schema.enum) && schema.enum.length) return schema.enum[0];
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  switch (type) {
    case 'string':
      return 'fake';
    case 'integer':
    case 'number':
      return typeof schema.minimum === 'number' ? schema.minimum : 1;
    case 'boolean':
      return true;
    case 'null':
      return null;
    case 'array':
      return Array.from({ length: typeof schema.minItems === 'number' ? schema.minItems : 0 }, () => instanceFor(schema.items, depth + 1));
    default: {
      const out: Json = {};
      for (const [k, v] of Object.entries(isObj(schema.properties) ? schema.properties : {})) out[k] = instanceFor(v, depth + 1);
      return out;
    }
  }
}

function words(s: string): number {
  return (s.match(/\S+/g) ?? []).length;
}

export class FakeOpenAi {
  readonly requests: FakeOpenAiRequest[] = [];
  readonly stats: FakeOpenAiStats = { generations: 0, embeddings: 0, active: 0, completed: 0, aborted: 0 };
  private server?: http.Server;
  private readonly sockets = new Set<Socket>();
  private readonly behaviours = new Map<string, FakeOpenAiBehaviour>();
  private readonly toolCalls = new Map<string, Array<{ name: string; arguments: Json }>>();
  private readonly models: string[];
  private reply: string;
  private portValue = 0;
  private readonly host: string;
  private seq = 0;

  private constructor(private readonly opts: FakeOpenAiOptions) {
    this.models = [...(opts.models ?? DEFAULT_OPENAI_MODELS)];
    this.reply = opts.reply ?? DEFAULT_REPLY;
    this.host = opts.host ?? '127.0.0.1';
  }

  static async start(opts: FakeOpenAiOptions = {}): Promise<FakeOpenAi> {
    const fake = new FakeOpenAi(opts);
    await fake.listen(opts.port ?? 0);
    return fake;
  }

  get url(): string {
    return `http://${this.host}:${this.portValue}`;
  }

  get port(): number {
    return this.portValue;
  }

  setBehaviour(model: string /* or '*' for every model */, b: FakeOpenAiBehaviour): void {
    this.behaviours.set(model, b);
  }

  resetBehaviours(): void {
    this.behaviours.clear();
  }

  setReply(text: string): void {
    this.reply = text;
  }

  /** The next answer for `model` (when the request has tools) is this tool call. */
  queueToolCall(model: string, call: { name: string; arguments: Json }): void {
    const q = this.toolCalls.get(model) ?? [];
    q.push(call);
    this.toolCalls.set(model, q);
  }

  /** Stops listening and cuts open connections: the port refuses from now on. */
  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await closed;
  }

  /** Listens again on the same port after close(). */
  async restart(): Promise<void> {
    if (!this.server) await this.listen(this.portValue);
  }

  async waitFor(pred: () => boolean, timeoutMs = 2000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred()) {
      if (Date.now() > deadline) throw new Error(`FakeOpenAi.waitFor: condition not met within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  private async listen(port: number): Promise<void> {
    const server = http.createServer({ noDelay: true }, (req, res) => void this.onRequest(req, res));
    server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, this.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const addr = server.address();
    if (addr === null || typeof addr === 'string') throw new Error('unexpected server address');
    this.portValue = addr.port;
    this.server = server;
  }

  // --- plumbing ------------------------------------------------------------------------------

  private async onRequest(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const method = (req.method ?? 'GET').toUpperCase();
    const path = new URL(req.url ?? '/', 'http://fake').pathname;
    const chunks: Buffer[] = [];
    try {
      for await (const c of req) chunks.push(c as Buffer);
    } catch {
      return;
    }
    const raw = Buffer.concat(chunks).toString('utf8');
    let body: unknown;
    let badJson = false;
    if (raw !== '') {
      try {
        body = JSON.parse(raw);
      } catch {
        badJson = true;
        body = raw;
      }
    }
    this.requests.push({ method, path, headers: { ...req.headers }, body });
    const ac = new AbortController();
    res.on('close', () => ac.abort());
    try {
      if (this.opts.apiKey !== undefined && req.headers.authorization !== `Bearer ${this.opts.apiKey}`) {
        throw new ApiError(401, 'Incorrect API key provided. You can find your API key in your account settings.', 'invalid_request_error', 'invalid_api_key');
      }
      if (badJson) throw new ApiError(400, 'We could not parse the JSON body of your request.', 'invalid_request_error');
      if (method === 'GET' && path === '/v1/models') return this.send(res, 200, { object: 'list', data: this.models.map((id) => this.modelEntry(id)) });
      if (method === 'GET' && path.startsWith('/v1/models/')) {
        const id = decodeURIComponent(path.slice('/v1/models/'.length));
        if (!this.models.includes(id)) throw this.modelNotFound(id);
        return this.send(res, 200, this.modelEntry(id));
      }
      if (method === 'POST' && path === '/v1/chat/completions') return await this.completion(res, body, 'chat', ac.signal);
      if (method === 'POST' && path === '/v1/completions') return await this.completion(res, body, 'text', ac.signal);
      if (method === 'POST' && path === '/v1/embeddings') return this.embeddings(res, body);
      throw new ApiError(404, `Unknown request URL: ${method} ${path}. Please check the URL for typos.`, 'invalid_request_error', 'unknown_url');
    } catch (err) {
      if (err instanceof ApiError) {
        const headers: http.OutgoingHttpHeaders = err.status === 429 || err.status >= 500 ? { 'Retry-After': '2' } : {};
        return this.send(res, err.status, { error: { message: err.message, type: err.type, param: err.param, code: err.code } }, headers);
      }
      if (ac.signal.aborted) return;
      if (!res.headersSent) this.send(res, 500, { error: { message: 'fake: internal error', type: 'server_error', param: null, code: null } });
      else res.destroy();
    }
  }

  private send(res: http.ServerResponse, status: number, body: unknown, headers: http.OutgoingHttpHeaders = {}): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
    res.end(text);
  }

  private modelEntry(id: string): Json {
    return { id, object: 'model', created: 1767225600, owned_by: 'fake', root: id, parent: null, max_model_len: 8192 };
  }

  private modelNotFound(model: string): ApiError {
    return new ApiError(404, `The model \`${model}\` does not exist or you do not have access to it.`, 'invalid_request_error', 'model_not_found');
  }

  private behaviourFor(model: string): FakeOpenAiBehaviour {
    return this.behaviours.get(model) ?? this.behaviours.get('*') ?? { kind: 'normal' };
  }

  private checkModel(body: unknown): { b: Json; model: string } {
    if (!isObj(body)) throw new ApiError(400, 'The request body must be a JSON object.', 'invalid_request_error');
    if (typeof body.model !== 'string' || body.model === '')
      throw new ApiError(400, 'you must provide a model parameter', 'invalid_request_error', null, 'model');
    if (!this.models.includes(body.model)) throw this.modelNotFound(body.model);
    return { b: body, model: body.model };
  }

  private sleep(ms: number, signal: AbortSignal): Promise<void> {
    if (ms <= 0) return signal.aborted ? Promise.reject(new Error('aborted')) : Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      const onAbort = () => {
        clearTimeout(t);
        reject(new Error('aborted'));
      };
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  private embeddings(res: http.ServerResponse, body: unknown): void {
    const { b, model } = this.checkModel(body);
    const behaviour = this.behaviourFor(model);
    if (behaviour.kind === 'error') throw this.behaviourError(behaviour);
    const input = b.input;
    const inputs = typeof input === 'string' ? [input] : Array.isArray(input) && input.every((s) => typeof s === 'string') ? input : undefined;
    if (!inputs || inputs.length === 0)
      throw new ApiError(400, "'input' must be a non-empty string or array of strings", 'invalid_request_error', null, 'input');
    const format = b.encoding_format ?? 'float';
    if (format !== 'float' && format !== 'base64')
      throw new ApiError(400, "'encoding_format' must be 'float' or 'base64'", 'invalid_request_error', null, 'encoding_format');
    this.stats.embeddings++;
    const dims = this.opts.embeddingDims ?? 8;
    // base64 (the official clients' default): the float32 little-endian bytes
    const encode = (v: number[]) => (format === 'base64' ? Buffer.from(new Float32Array(v).buffer).toString('base64') : v);
    const tokens = inputs.reduce((n, s) => n + words(s), 0);
    this.send(res, 200, {
      object: 'list',
      data: inputs.map((s, index) => ({ object: 'embedding', index, embedding: encode(fakeEmbedding(s, dims)) })),
      model,
      usage: { prompt_tokens: tokens, total_tokens: tokens },
    });
  }

  private behaviourError(b: Extract<FakeOpenAiBehaviour, { kind: 'error' }>): ApiError {
    const d = defaultErrorFor(b.status);
    return new ApiError(b.status, b.message ?? d.message, b.type ?? d.type, b.code === undefined ? d.code : b.code);
  }

  private answerFor(b: Json, model: string, kind: 'chat' | 'text'): { text: string; tool?: { name: string; arguments: Json } } {
    if (kind === 'chat' && Array.isArray(b.tools) && b.tools.length) {
      const q = this.toolCalls.get(model);
      const tool = q?.shift();
      if (tool) return { text: '', tool };
    }
    const rf = isObj(b.response_format) ? b.response_format : undefined;
    if (rf?.type === 'json_object') return { text: JSON.stringify({ answer: 'fake' }) };
    if (rf?.type === 'json_schema' && isObj(rf.json_schema)) return { text: JSON.stringify(instanceFor(rf.json_schema.schema)) };
    return { text: this.reply };
  }

  private promptTokens(b: Json, kind: 'chat' | 'text'): number {
    if (kind === 'text') return words(typeof b.prompt === 'string' ? b.prompt : JSON.stringify(b.prompt ?? ''));
    let n = 0;
    for (const m of Array.isArray(b.messages) ? b.messages : []) {
      if (!isObj(m)) continue;
      if (typeof m.content === 'string') n += words(m.content);
      else if (Array.isArray(m.content)) for (const p of m.content) if (isObj(p) && typeof p.text === 'string') n += words(p.text);
    }
    return n;
  }

  private async completion(res: http.ServerResponse, body: unknown, kind: 'chat' | 'text', signal: AbortSignal): Promise<void> {
    const { b, model } = this.checkModel(body);
    if (kind === 'chat' && (!Array.isArray(b.messages) || b.messages.length === 0)) {
      throw new ApiError(400, "'messages' must be a non-empty array", 'invalid_request_error', null, 'messages');
    }
    if (kind === 'text' && typeof b.prompt !== 'string') throw new ApiError(400, "'prompt' must be a string", 'invalid_request_error', null, 'prompt');
    const behaviour = this.behaviourFor(model);
    await this.sleep(this.opts.headerDelayMs ?? 0, signal);
    if (behaviour.kind === 'error') throw this.behaviourError(behaviour);
    if (behaviour.kind === 'drop-connection') {
      res.socket?.destroy();
      return;
    }

    this.stats.generations++;
    this.stats.active++;
    let counted = false;
    const finish = (ok: boolean) => {
      if (counted) return;
      counted = true;
      this.stats.active--;
      if (ok) this.stats.completed++;
      else this.stats.aborted++;
    };
    res.on('close', () => finish(res.writableFinished));

    const id = `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-fake${++this.seq}`;
    const created = Math.floor(Date.now() / 1000);
    const answer = this.answerFor(b, model, kind);
    const maxTokens = typeof b.max_tokens === 'number' && b.max_tokens > 0 ? b.max_tokens : Infinity;
    let tokens = tokenize(answer.text);
    let finishReason = answer.tool ? 'tool_calls' : 'stop';
    if (tokens.length > maxTokens) {
      tokens = tokens.slice(0, maxTokens);
      finishReason = 'length';
    }
    const usage = { prompt_tokens: this.promptTokens(b, kind), completion_tokens: answer.tool ? 12 : tokens.length, total_tokens: 0 };
    usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
    const object = kind === 'chat' ? 'chat.completion.chunk' : 'text_completion';

    if (b.stream !== true) {
      if (behaviour.kind === 'hang') return; // never answers; the client's timer must fire
      await this.sleep((this.opts.firstChunkDelayMs ?? 0) + (this.opts.chunkDelayMs ?? 0) * tokens.length, signal);
      const text = tokens.join('');
      const choice =
        kind === 'chat'
          ? {
              index: 0,
              message: {
                role: 'assistant',
                content: answer.tool ? null : text,
                ...(answer.tool
                  ? {
                      tool_calls: [
                        { id: 'call_fake0', type: 'function', function: { name: answer.tool.name, arguments: JSON.stringify(answer.tool.arguments) } },
                      ],
                    }
                  : {}),
              },
              logprobs: null,
              finish_reason: finishReason,
            }
          : { index: 0, text, logprobs: null, finish_reason: finishReason };
      return this.send(res, 200, { id, object: kind === 'chat' ? 'chat.completion' : 'text_completion', created, model, choices: [choice], usage });
    }

    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
    res.flushHeaders();
    const event = (obj: unknown) => res.write(`data: ${JSON.stringify(obj)}\n\n`);
    const chunk = (delta: Json | undefined, text: string | undefined, finish: string | null) =>
      event({
        id,
        object,
        created,
        model,
        choices: [
          kind === 'chat'
            ? { index: 0, delta: delta ?? {}, logprobs: null, finish_reason: finish }
            : { index: 0, text: text ?? '', logprobs: null, finish_reason: finish },
        ],
      });
    if (behaviour.kind === 'hang') return;
    try {
      await this.sleep(this.opts.firstChunkDelayMs ?? 0, signal);
      if (kind === 'chat') chunk({ role: 'assistant', content: '' }, undefined, null);
      let sent = 0;
      if (answer.tool) {
        const args = JSON.stringify(answer.tool.arguments);
        const half = Math.floor(args.length / 2);
        chunk(
          { tool_calls: [{ index: 0, id: 'call_fake0', type: 'function', function: { name: answer.tool.name, arguments: args.slice(0, half) } }] },
          undefined,
          null,
        );
        await this.sleep(this.opts.chunkDelayMs ?? 0, signal);
        chunk({ tool_calls: [{ index: 0, function: { arguments: args.slice(half) } }] }, undefined, null);
      }
      for (const tok of tokens) {
        if (behaviour.kind === 'stall-after' && sent >= behaviour.chunks) return; // silent from here on
        if (behaviour.kind === 'truncate' && sent >= behaviour.afterChunks) {
          res.end();
          return;
        }
        if (behaviour.kind === 'midstream-error' && sent >= behaviour.afterChunks) {
          event({ error: { message: behaviour.message ?? 'The engine failed while generating.', type: 'server_error', param: null, code: 500 } });
          res.end();
          return;
        }
        await this.sleep(sent === 0 ? 0 : (this.opts.chunkDelayMs ?? 0), signal);
        chunk({ content: tok }, tok, null);
        sent++;
      }
      chunk(kind === 'chat' ? {} : undefined, '', finishReason);
      const so = isObj(b.stream_options) ? b.stream_options : undefined;
      if (so?.include_usage === true) event({ id, object, created, model, choices: [], usage });
      res.write('data: [DONE]\n\n');
      res.end();
    } catch {
      // the client went away: nothing to send
    }
  }
}
