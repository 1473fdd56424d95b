/**
 * The only module that talks HTTP to Ollama and the only one that knows axios.
 * Every foreign error is translated into an AppError here.
 *
 * - One keep-alive agent for all calls (pooled sockets).
 * - Generation always streams upstream (even for stream:false callers), so no byte-less wait is
 *   bounded by anything but our own first-chunk/idle timers (undici/Cloudflare limits never bite).
 * - Retries (axios-retry, exponential backoff with jitter): idempotent GETs on network errors and
 *   5xx; a POST only when the connection was reset before any response (a stale pooled socket).
 *   Connection refused is never retried: Ollama is down, and callers must be able to fall back fast.
 *   shouldResetTimeout: true — each retry gets the full connect timeout again.
 */
import { createAgents } from './connection';
import { Readable, Transform } from 'node:stream';
import axios, { AxiosError, type AxiosInstance, type AxiosResponse } from 'axios';
import axiosRetry, { exponentialDelay, isNetworkError } from 'axios-retry';
import {
  AppError,
  ClientClosedError,
  InsufficientMemoryError,
  ModelNotFoundError,
  OllamaUnavailableError,
  QueueFullError,
  UpstreamError,
  UpstreamRejectedError,
  UpstreamTimeoutError,
} from '../errors';
import type {
  OllamaChatChunk,
  OllamaChatRequest,
  OllamaClient,
  OllamaEmbedRequest,
  OllamaEmbedResponse,
  OllamaGenerateChunk,
  OllamaGenerateRequest,
  OllamaPullProgress,
  OllamaRunningModel,
  OllamaShowResponse,
  OllamaTag,
  ProxyRequest,
  ProxyResponse,
  StreamCallOptions,
} from './ollama.types';

export interface OllamaClientOptions {
  baseUrl: string;
  /** Timeout for the small JSON calls (tags, ps, version, show, delete). */
  requestTimeoutMs: number;
  retries: number;
  /** Lookup + TCP connect bound (OLLAMA_CONNECT_TIMEOUT_MS). */
  connectTimeoutMs?: number;
}

const OOM_PATTERN =
  /out[ -]of[ -]memory|requires more system memory|unable to load full model|too large for system memory|cudaMalloc failed|failed to allocate|insufficient memory/i;
const LOAD_TIMEOUT_PATTERN = /timed out waiting for llama/i;
const QUEUE_FULL_PATTERN = /server busy|maximum pending requests/i;
const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNECTTIMEOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ERR_NETWORK']);

/** Maps one Ollama error (status + its `error` text) to our error model. Exported for tests. */
export function mapOllamaError(status: number, upstreamMessage: string, model?: string): AppError {
  const msg = upstreamMessage || `HTTP ${status}`;
  const details = { upstreamStatus: status };
  if (status === 404 && /not found/i.test(msg) && model) return new ModelNotFoundError(model, { details });
  if (status === 404) return new UpstreamError(`Ollama answered 404: ${msg}`, { details });
  if (QUEUE_FULL_PATTERN.test(msg) || status === 503) {
    return new QueueFullError("Ollama's own queue is full", 5, { details });
  }
  if (OOM_PATTERN.test(msg)) return new InsufficientMemoryError(msg, { details });
  if (LOAD_TIMEOUT_PATTERN.test(msg)) {
    return new UpstreamTimeoutError(model, 0, {
      details,
      hint: 'Ollama gave up loading the model (OLLAMA_LOAD_TIMEOUT). Check disk speed and free VRAM, or use a smaller model.',
    });
  }
  if (status === 499) return new ClientClosedError();
  if (status === 403) {
    return new UpstreamError('Ollama refused the request (403): its Host/Origin check', {
      details,
      hint: 'Set OLLAMA_ORIGINS on the Ollama side, or make sure no Origin header reaches it.',
    });
  }
  if (status >= 400 && status < 500) return new UpstreamRejectedError(msg, { details });
  return new UpstreamError(`Ollama failed: ${msg}`, {
    details,
    hint: /unexpectedly stopped|terminated/i.test(msg)
      ? 'The model runner crashed, often from lack of VRAM/RAM. Try a smaller model or NUM_CTX, or restart Ollama (POST /admin/ollama/restart).'
      : 'See the ollama logs (`make logs`) for details.',
  });
}

function isAbort(err: unknown): boolean {
  return axios.isCancel(err) || (err instanceof Error && (err.name === 'AbortError' || err.name === 'CanceledError'));
}

/** Translates a transport failure (no usable HTTP answer) into our error model. */
function mapTransportError(err: unknown, baseUrl: string, model: string | undefined, timeoutS: number): AppError {
  if (err instanceof AppError) return err;
  const code = (err as AxiosError)?.code ?? (err as NodeJS.ErrnoException)?.code;
  if (code === 'ECONNABORTED' || code === 'ETIMEDOUT') return new UpstreamTimeoutError(model, timeoutS, { cause: err });
  if (code && CONNECTION_CODES.has(code)) {
    return new OllamaUnavailableError(`Ollama is not reachable at ${baseUrl} (${code})`, { cause: err });
  }
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'ERR_STREAM_PREMATURE_CLOSE') {
    return new UpstreamError('Ollama closed the connection unexpectedly', { cause: err });
  }
  return new UpstreamError('Unexpected failure talking to Ollama', { cause: err });
}

async function readAll(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c));
  return Buffer.concat(chunks).toString('utf8');
}

function errorText(body: string): string {
  try {
    const parsed = JSON.parse(body) as { error?: unknown };
    if (typeof parsed.error === 'string') return parsed.error;
    if (parsed.error && typeof parsed.error === 'object' && 'message' in parsed.error) {
      return String((parsed.error as { message: unknown }).message);
    }
  } catch {
    /* not JSON: use the text */
  }
  return body.trim().slice(0, 500);
}

/**
 * Runs `fn` under a deadline that the caller re-arms: first wait `firstMs`, then `idleMs` per
 * `touch()`. Aborts the upstream request when the deadline passes or the caller's signal fires.
 */
class Deadline {
  readonly controller = new AbortController();
  timedOut = false;
  private timer?: NodeJS.Timeout;
  private readonly onCallerAbort = () => this.controller.abort();

  constructor(private readonly opts: StreamCallOptions) {
    if (opts.signal?.aborted) this.controller.abort();
    opts.signal?.addEventListener('abort', this.onCallerAbort, { once: true });
    this.arm(opts.firstChunkTimeoutMs);
  }

  arm(ms: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timedOut = true;
      this.controller.abort();
    }, ms);
    this.timer.unref?.();
  }

  touch(): void {
    this.arm(this.opts.idleTimeoutMs);
  }

  callerAborted(): boolean {
    return Boolean(this.opts.signal?.aborted);
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.opts.signal?.removeEventListener('abort', this.onCallerAbort);
  }
}

export function createOllamaClient(opts: OllamaClientOptions): OllamaClient {
  const baseUrl = opts.baseUrl.replace(/\/+$/, '');
  const { httpAgent, httpsAgent } = createAgents(opts.connectTimeoutMs ?? 2_000);
  const http_: AxiosInstance = axios.create({
    baseURL: baseUrl,
    timeout: opts.requestTimeoutMs,
    httpAgent,
    httpsAgent,
    validateStatus: () => true,
    maxContentLength: Infinity,
    maxBodyLength: Infinity,
    // Ollama's CORS layer answers 403 to unknown origins; we never send one.
    headers: { 'User-Agent': 'ai-local-core-api' },
    proxy: false,
    // Ollama never redirects; 0 makes axios use node's http directly instead of follow-redirects
    // (about a tenth of the API's CPU per request in a profile, `make bench`).
    maxRedirects: 0,
  });

  axiosRetry(http_, {
    retries: opts.retries,
    shouldResetTimeout: true,
    retryDelay: (count, err) => exponentialDelay(count, err, 100),
    retryCondition: (err) => {
      const method = (err.config?.method ?? 'get').toLowerCase();
      // Connection refused means Ollama is down, not flaky: answer at once so callers fall back.
      if (err.code === 'ECONNREFUSED') return false;
      if (method === 'get' || method === 'head') return isNetworkError(err) || err.code === 'ECONNRESET';
      // A POST is retried only when the pooled socket was dead before any response came back.
      return !err.response && err.code === 'ECONNRESET';
    },
  });

  const timeoutS = Math.round(opts.requestTimeoutMs / 1000);

  async function getJson<T>(method: 'get' | 'post' | 'delete', path: string, body?: unknown, model?: string, signal?: AbortSignal): Promise<T> {
    let res: AxiosResponse<string>;
    try {
      res = await http_.request<string>({ method, url: path, data: body, signal, responseType: 'text', transformResponse: (d) => d });
    } catch (err) {
      if (isAbort(err)) throw new ClientClosedError();
      throw mapTransportError(err, baseUrl, model, timeoutS);
    }
    if (res.status >= 400) throw mapOllamaError(res.status, errorText(res.data ?? ''), model);
    if (!res.data) return undefined as T;
    try {
      return JSON.parse(res.data) as T;
    } catch (err) {
      throw new UpstreamError(`Ollama sent invalid JSON on ${path}`, { cause: err });
    }
  }

  /** POSTs with stream:true and yields each NDJSON object. An `{"error"}` line is thrown, mapped. */
  async function* streamNdjson<T>(path: string, body: Record<string, unknown>, model: string | undefined, o: StreamCallOptions): AsyncGenerator<T> {
    const deadline = new Deadline(o);
    const timeoutFor = () => Math.round((deadline.timedOut && !seenFirst ? o.firstChunkTimeoutMs : o.idleTimeoutMs) / 1000);
    let seenFirst = false;
    let finished = false;
    try {
      let res: AxiosResponse<Readable>;
      try {
        res = await http_.request<Readable>({
          method: 'post',
          url: path,
          data: { ...body, stream: true },
          responseType: 'stream',
          signal: deadline.controller.signal,
          timeout: 0, // our Deadline bounds the wait instead (a cold load sends no byte for a while)
        });
      } catch (err) {
        if (deadline.timedOut) throw new UpstreamTimeoutError(model, timeoutFor(), { cause: err });
        if (deadline.callerAborted() || isAbort(err)) throw new ClientClosedError();
        throw mapTransportError(err, baseUrl, model, timeoutFor());
      }
      if (res.status >= 400) {
        const text = await readAll(res.data).catch(() => '');
        throw mapOllamaError(res.status, errorText(text), model);
      }
      let buffered = '';
      // Ollama's last line ({"done": true, ...}) is held until the response has ended: callers stop
      // iterating at it, and leaving the loop before the end would destroy the response (an
      // AbortError, and the pooled socket closed) where reading on costs nothing.
      let doneLine: T | undefined;
      try {
        for await (const piece of res.data) {
          seenFirst = true;
          deadline.touch();
          buffered += Buffer.isBuffer(piece) ? piece.toString('utf8') : String(piece);
          let nl: number;
          while ((nl = buffered.indexOf('\n')) >= 0) {
            const line = buffered.slice(0, nl).trim();
            buffered = buffered.slice(nl + 1);
            if (!line) continue;
            const obj = parseLine<T>(line, model);
            if (doneLine === undefined && (obj as { done?: unknown } | null)?.done === true) {
              doneLine = obj;
              continue;
            }
            yield obj;
          }
        }
      } catch (err) {
        if (err instanceof AppError) throw err;
        if (deadline.timedOut) throw new UpstreamTimeoutError(model, timeoutFor(), { cause: err });
        if (deadline.callerAborted()) throw new ClientClosedError();
        throw mapTransportError(err, baseUrl, model, timeoutFor());
      }
      const tail = buffered.trim() ? parseLine<T>(buffered.trim(), model) : undefined;
      if (deadline.timedOut) throw new UpstreamTimeoutError(model, timeoutFor());
      // the response has ended: nothing left to abort, whenever the caller stops
      finished = true;
      if (doneLine !== undefined) yield doneLine;
      if (tail !== undefined) yield tail;
    } finally {
      deadline.dispose();
      // Returning early (caller stopped iterating) or failing aborts the upstream request: frees
      // the GPU. Not once the response has ended: abort() there only builds two errors with
      // stack traces (AbortError, axios' CanceledError) for nothing.
      if (!finished) deadline.controller.abort();
    }
  }

  function parseLine<T>(line: string, model: string | undefined): T {
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (err) {
      throw new UpstreamError('Ollama sent a malformed stream line', { cause: err });
    }
    if (obj && typeof obj === 'object' && typeof (obj as { error?: unknown }).error === 'string') {
      // Mid-stream errors arrive after a 200; the status inside is unknown: treat as a 500.
      throw mapOllamaError(500, (obj as { error: string }).error, model);
    }
    return obj as T;
  }

  /**
   * Raw pass-through. Only our own headers go out (never the caller's Origin, Host, Authorization
   * or Cookie: Ollama answers 403 with an empty body to unknown origins). The Deadline bounds the
   * wait for the headers, then each gap between two body chunks; leaving the body unread and
   * destroying it aborts the upstream request.
   */
  async function proxy(r: ProxyRequest): Promise<ProxyResponse> {
    const deadline = new Deadline({ signal: r.signal, firstChunkTimeoutMs: r.firstByteTimeoutMs, idleTimeoutMs: r.idleTimeoutMs });
    const raw = r.body instanceof Readable;
    // identity: the bytes are passed on as they are, without a Content-Encoding of their own.
    const headers: Record<string, string> = { Accept: 'application/json, application/x-ndjson, text/event-stream', 'Accept-Encoding': 'identity', ...r.headers };
    if (r.body !== undefined && !raw) headers['Content-Type'] = 'application/json';
    let res: AxiosResponse<Readable>;
    try {
      res = await http_.request<Readable>({
        method: r.method,
        url: r.path,
        data: r.body,
        headers,
        responseType: 'stream',
        decompress: false,
        signal: deadline.controller.signal,
        timeout: 0, // the Deadline bounds the wait instead (a cold load sends no byte for a while)
        // A byte stream cannot be replayed; a JSON body keeps the dead-pooled-socket retry.
        ...(raw ? { 'axios-retry': { retries: 0 } } : {}),
      });
    } catch (err) {
      deadline.dispose();
      if (deadline.timedOut) throw new UpstreamTimeoutError(r.model, Math.round(r.firstByteTimeoutMs / 1000), { cause: err });
      if (deadline.callerAborted() || isAbort(err)) throw new ClientClosedError();
      throw mapTransportError(err, baseUrl, r.model, Math.round(r.firstByteTimeoutMs / 1000));
    }
    deadline.touch();

    const src = res.data;
    const tap = new Transform({
      transform(chunk, _enc, cb) {
        deadline.touch();
        cb(null, chunk);
      },
    });
    const idleS = Math.round(r.idleTimeoutMs / 1000);
    let settled = false;
    const settle = (err?: AppError) => {
      if (settled) return;
      settled = true;
      deadline.dispose();
      deadline.controller.signal.removeEventListener('abort', onAbort);
      if (err) {
        deadline.controller.abort();
        tap.destroy(err);
      }
    };
    // Our reason wins over axios's generic "canceled" (which it raises from the same abort event).
    const reason = (err?: unknown): AppError => {
      if (deadline.timedOut) return new UpstreamTimeoutError(r.model, idleS, { cause: err });
      if (deadline.callerAborted() || isAbort(err)) return new ClientClosedError();
      return mapTransportError(err, baseUrl, r.model, idleS);
    };
    const onAbort = () => settle(reason());
    deadline.controller.signal.addEventListener('abort', onAbort, { once: true });
    src.on('error', (err) => settle(err instanceof AppError ? err : reason(err)));
    src.on('end', () => settle());
    tap.on('close', () => {
      // The consumer stopped reading (caller gone, or it had what it needed): free the upstream.
      if (!src.readableEnded) {
        settle();
        deadline.controller.abort();
        src.destroy();
      }
    });
    src.pipe(tap);

    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(res.headers ?? {})) {
      if (v !== undefined && v !== null) out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : String(v);
    }
    return { status: res.status, headers: out, body: tap };
  }

  return {
    baseUrl,
    proxy,
    async version(signal) {
      const r = await getJson<{ version: string }>('get', '/api/version', undefined, undefined, signal);
      return r.version;
    },
    async tags(signal) {
      const r = await getJson<{ models?: OllamaTag[] }>('get', '/api/tags', undefined, undefined, signal);
      return r?.models ?? [];
    },
    async ps(signal) {
      const r = await getJson<{ models?: OllamaRunningModel[] }>('get', '/api/ps', undefined, undefined, signal);
      return r?.models ?? [];
    },
    show(model, signal) {
      return getJson<OllamaShowResponse>('post', '/api/show', { model }, model, signal);
    },
    generate(req: OllamaGenerateRequest, o) {
      return streamNdjson<OllamaGenerateChunk>('/api/generate', { ...req }, req.model, o);
    },
    chat(req: OllamaChatRequest, o) {
      return streamNdjson<OllamaChatChunk>('/api/chat', { ...req }, req.model, o);
    },
    async embed(req: OllamaEmbedRequest, o) {
      const deadline = new Deadline(o);
      try {
        return await getJson<OllamaEmbedResponse>('post', '/api/embed', req, req.model, deadline.controller.signal);
      } catch (err) {
        if (deadline.timedOut) throw new UpstreamTimeoutError(req.model, Math.round(o.firstChunkTimeoutMs / 1000));
        throw err;
      } finally {
        deadline.dispose();
      }
    },
    pull(model, o) {
      return streamNdjson<OllamaPullProgress>('/api/pull', { model }, undefined, o);
    },
    async deleteModel(model, signal) {
      await getJson<unknown>('delete', '/api/delete', { model }, model, signal);
    },
    async setLoaded(model, keepAlive, o, options) {
      const body = { model, prompt: '', keep_alive: keepAlive, ...(options ? { options } : {}) };
      for await (const _chunk of streamNdjson<OllamaGenerateChunk>('/api/generate', body, model, o)) {
        /* the load/unload answer is a single done chunk */
      }
    },
  };
}
