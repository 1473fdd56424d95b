/**
 * The only module that talks HTTP to Ollama (with its parts connection.ts, upstream-proxy.ts,
 * ollama-errors.ts and deadline.ts, shared with openai.client.ts: the only ones that know axios).
 * Every foreign error is translated into an AppError here.
 *
 * - One keep-alive pool for all calls (connection.ts).
 * - Generation always streams upstream (even for stream:false callers), so no byte-less wait is
 *   bounded by anything but our own first-chunk/idle timers (undici/Cloudflare limits never bite).
 * - Retries (axios-retry, exponential backoff with jitter): idempotent GETs on network errors and
 *   5xx; a POST only when a reused pooled socket was reset before any response (the keep-alive
 *   race Node's http docs describe: Ollama closed the idle socket as we wrote on it). A generation
 *   that got any answer, 5xx included, is never sent again.
 *   A failure to connect (refused, unknown name, connect timeout) is never retried: Ollama is down,
 *   and callers must be able to fall back fast.
 *   shouldResetTimeout: true — each retry gets the full request timeout again.
 */
import type { Readable } from 'node:stream';
import axios, { type AxiosResponse } from 'axios';
import { isNetworkError } from 'axios-retry';
import { AppError, ClientClosedError, UpstreamError, UpstreamTimeoutError } from '../errors';
import { errorText, LineSplitter, readText } from '../wire/lines';
import { parseNdjsonLine } from '../wire/ndjson';
import { connectedHook, createUpstreamHttp, isConnectFailure, requestText } from './connection';
import { Deadline } from './deadline';
import { isAbort, mapOllamaError, mapTransportError } from './ollama-errors';
import { createProxy } from './upstream-proxy';
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

/**
 * getJson's GETs take a 5xx as an error, so axios-retry sees it and retries; every other call takes
 * any status as an answer (a generation is never sent twice, a pass-through keeps Ollama's status).
 */
const RETRY_5XX = { validateStatus: (status: number) => status < 500 };

export function createOllamaClient(opts: OllamaClientOptions): OllamaClient {
  const baseUrl = opts.baseUrl.replace(/\/+$/, '');
  const http_ = createUpstreamHttp({
    baseUrl,
    requestTimeoutMs: opts.requestTimeoutMs,
    connectTimeoutMs: opts.connectTimeoutMs,
    retries: opts.retries,
    retryCondition: (err) => {
      const method = (err.config?.method ?? 'get').toLowerCase();
      // Ollama is down, not flaky (refused, no such name, connect timeout): answer at once so callers fall back.
      if (isConnectFailure(err)) return false;
      if (method === 'get' || method === 'head') {
        // A 5xx reaches here only from getJson's GETs (see RETRY_5XX); everything else takes any status.
        return isNetworkError(err) || err.code === 'ECONNRESET' || (err.response?.status ?? 0) >= 500;
      }
      // A POST is retried only when a reused pooled socket was dead before any response came back.
      const reused = Boolean((err.request as { reusedSocket?: boolean } | undefined)?.reusedSocket);
      return reused && !err.response && err.code === 'ECONNRESET';
    },
  });

  const timeoutS = Math.round(opts.requestTimeoutMs / 1000);

  async function getJson<T>(method: 'get' | 'post' | 'delete', path: string, body?: unknown, model?: string, signal?: AbortSignal): Promise<T> {
    let res: AxiosResponse<string>;
    try {
      res = await requestText(http_, { method, url: path, data: body, signal, ...(method === 'get' ? RETRY_5XX : {}) });
    } catch (err) {
      if (isAbort(err)) throw new ClientClosedError();
      // A GET's 5xx after the last retry: Ollama's own answer, mapped like any other status.
      const answered = axios.isAxiosError<string>(err) ? err.response : undefined;
      if (answered) res = answered;
      else throw mapTransportError(err, baseUrl, model, timeoutS);
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
          ...connectedHook(o.onAccepted),
        });
      } catch (err) {
        if (deadline.timedOut) throw new UpstreamTimeoutError(model, timeoutFor(), { cause: err });
        if (deadline.callerAborted() || isAbort(err)) throw new ClientClosedError();
        throw mapTransportError(err, baseUrl, model, timeoutFor());
      }
      if (res.status >= 400) {
        const text = await readText(res.data).catch(() => '');
        throw mapOllamaError(res.status, errorText(text), model);
      }
      const lines = new LineSplitter();
      // Ollama's last line ({"done": true, ...}) is held until the response has ended: callers stop
      // iterating at it, and leaving the loop before the end would destroy the response (an
      // AbortError, and the pooled socket closed) where reading on costs nothing.
      let doneLine: T | undefined;
      try {
        for await (const piece of res.data) {
          seenFirst = true;
          deadline.touch();
          for (const raw of lines.push(piece)) {
            const line = raw.trim();
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
      const rest = lines.rest().trim();
      const tail = rest ? parseLine<T>(rest, model) : undefined;
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
    const obj = parseNdjsonLine(line);
    if (obj && typeof obj === 'object' && typeof obj.error === 'string') {
      // Mid-stream errors arrive after a 200; the status inside is unknown: treat as a 500.
      throw mapOllamaError(500, obj.error, model);
    }
    return obj as T;
  }

  return {
    baseUrl,
    proxy: createProxy(http_, {
      accept: 'application/json, application/x-ndjson, text/event-stream',
      acceptedOnConnect: true,
      timeoutError: (model, timeoutS, cause) => new UpstreamTimeoutError(model, timeoutS, { cause }),
      transportError: (err, model, timeoutS) => mapTransportError(err, baseUrl, model, timeoutS),
    }),
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
