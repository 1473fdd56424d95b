/**
 * The client for OpenAI-compatible upstreams (vLLM, llama.cpp's server, LM Studio, an llm-d or
 * KServe gateway). It speaks /v1/models, /v1/chat/completions, /v1/completions and /v1/embeddings,
 * and hands back Ollama-shaped chunks (see openai-response.mapping.ts), so the generation and embedding
 * services consume an `openai` upstream exactly like an `ollama` one.
 *
 * Same transport rules as the Ollama client: the bounded agents of connection.ts (c-ares lookups,
 * connect timeout → 503 OLLAMA_UNAVAILABLE), generations always streamed upstream under a
 * first-chunk / idle deadline, retries only for GETs and for a POST whose pooled socket was dead
 * before any answer, never on a refused connection. The apiKey goes out as a Bearer header and
 * nowhere else (not in errors, not in logs).
 *
 * `openChat` / `openGenerate` resolve once the upstream has accepted the request (its status is
 * known): a route can commit its stream headers only then, so a refusal is still a real status.
 */
import type { Readable } from 'node:stream';
import type { AxiosResponse } from 'axios';
import { isNetworkError } from 'axios-retry';
import { readSse } from '../wire/openai-sse';
import { readText } from '../wire/lines';
import { createUpstreamHttp, isConnectFailure, requestText } from './connection';
import { Deadline } from './deadline';
import { isAbort } from './ollama-errors';
import { createProxy } from './upstream-proxy';
import { mapOpenAiError, mapTransportError, upstreamTimeout } from './openai-errors';
import { AppError, ClientClosedError, UpstreamError } from '../errors';
import type {
  OllamaChatChunk,
  OllamaChatRequest,
  OllamaClient,
  OllamaGenerateChunk,
  OllamaGenerateRequest,
  OllamaTag,
  StreamCallOptions,
} from './ollama.types';
import { toOpenAiChatRequest, toOpenAiCompletionRequest, toOpenAiEmbeddingRequest, generateToChat } from './openai-request.mapping';
import { ChatStreamMapper, chatChunkToGenerate, chatCompletionToChunks, embeddingsToOllama, modelsToTags } from './openai-response.mapping';
import type { OpenAiChatChunk, OpenAiChatCompletion, OpenAiEmbeddingResponse, OpenAiModel } from './openai.types';

export interface OpenAiClientOptions {
  /** The upstream's name (UPSTREAMS[].name), for messages. */
  name: string;
  /** Base URL; a trailing `/v1` is accepted and removed. */
  baseUrl: string;
  apiKey?: string;
  /** Timeout for the small JSON calls (models). */
  requestTimeoutMs: number;
  retries: number;
  connectTimeoutMs?: number;
  /** Clock for the durations in the mapped chunks (ms). */
  now?: () => number;
}

/**
 * chat, generate, embed and proxy keep the OllamaClient's contract (chat and generate send the
 * request on the first iteration; proxy is the raw pass-through of the /openai/v1 surface).
 */
export interface OpenAiClient extends Pick<OllamaClient, 'chat' | 'generate' | 'embed' | 'proxy'> {
  readonly kind: 'openai';
  readonly name: string;
  readonly baseUrl: string;
  models(signal?: AbortSignal): Promise<OpenAiModel[]>;
  /** The models in the catalog's shape (discovery). */
  tags(signal?: AbortSignal): Promise<OllamaTag[]>;
  /** Resolves once the upstream accepted the request (2xx); then iterate for the chunks. */
  openChat(req: OllamaChatRequest, opts: StreamCallOptions): Promise<AsyncIterable<OllamaChatChunk>>;
  openGenerate(req: OllamaGenerateRequest, opts: StreamCallOptions): Promise<AsyncIterable<OllamaGenerateChunk>>;
  /** One stream:false call (for servers or callers that want the whole answer at once). */
  chatOnce(req: OllamaChatRequest, opts: StreamCallOptions): Promise<OllamaChatChunk[]>;
}

// ---------------------------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------------------------

/** A streamed completion once accepted: its parsed events, and whether `data: [DONE]` came. */
interface SseSource {
  events: AsyncGenerator<{ chunk: OpenAiChatChunk; at: number }>;
  state: { done: boolean };
}

export function createOpenAiClient(opts: OpenAiClientOptions): OpenAiClient {
  const baseUrl = opts.baseUrl.replace(/\/+$/, '').replace(/\/v1$/, '');
  const upstream = opts.name;
  const now = opts.now ?? Date.now;
  const auth: Record<string, string> = opts.apiKey ? { Authorization: `Bearer ${opts.apiKey}` } : {};
  const http_ = createUpstreamHttp({
    baseUrl,
    requestTimeoutMs: opts.requestTimeoutMs,
    connectTimeoutMs: opts.connectTimeoutMs,
    retries: opts.retries,
    headers: auth,
    retryCondition: (err) => {
      const method = (err.config?.method ?? 'get').toLowerCase();
      if (isConnectFailure(err)) return false; // down, not flaky: let callers fall back now
      if (method === 'get' || method === 'head') return isNetworkError(err) || err.code === 'ECONNRESET';
      return !err.response && err.code === 'ECONNRESET';
    },
  });
  const timeoutS = Math.round(opts.requestTimeoutMs / 1000);

  async function getJson<T>(
    method: 'get' | 'post',
    path: string,
    body: unknown,
    model: string | undefined,
    signal: AbortSignal | undefined,
    timeoutMs?: number,
  ): Promise<T> {
    let res: AxiosResponse<string>;
    try {
      res = await requestText(http_, { method, url: path, data: body, signal, ...(timeoutMs !== undefined ? { timeout: timeoutMs } : {}) });
    } catch (err) {
      if (isAbort(err)) throw new ClientClosedError();
      throw mapTransportError(err, upstream, model, timeoutMs !== undefined ? Math.round(timeoutMs / 1000) : timeoutS);
    }
    if (res.status >= 400) throw mapOpenAiError(res.status, res.data ?? '', upstream, model, res.headers?.['retry-after'] as string | undefined);
    try {
      return JSON.parse(res.data) as T;
    } catch (err) {
      throw new UpstreamError(`The upstream '${upstream}' sent invalid JSON on ${path}`, { cause: err, details: { upstream } });
    }
  }

  /** One non-streamed POST under the call's Deadline (its first-chunk timeout bounds the whole answer). */
  async function oneCall<T>(path: string, body: unknown, model: string, o: StreamCallOptions): Promise<T> {
    const deadline = new Deadline(o);
    try {
      return await getJson<T>('post', path, body, model, deadline.controller.signal, 0);
    } catch (err) {
      if (deadline.timedOut) throw upstreamTimeout(upstream, model, Math.round(o.firstChunkTimeoutMs / 1000), err);
      throw err;
    } finally {
      deadline.dispose();
    }
  }

  /**
   * POSTs a streamed completion; resolves when the status is known (throws the mapped error on a
   * 4xx/5xx or a transport failure), then yields the parsed `data:` objects until `[DONE]`.
   */
  async function openSse(path: string, body: unknown, model: string, o: StreamCallOptions): Promise<SseSource> {
    const deadline = new Deadline(o);
    let seenFirst = false;
    const timeoutFor = () => Math.round((seenFirst ? o.idleTimeoutMs : o.firstChunkTimeoutMs) / 1000);
    let res: AxiosResponse<Readable>;
    try {
      res = await http_.request<Readable>({
        method: 'post',
        url: path,
        data: body,
        headers: { Accept: 'text/event-stream' },
        responseType: 'stream',
        signal: deadline.controller.signal,
        timeout: 0, // the Deadline bounds the wait (a cold load sends no byte for a while)
      });
    } catch (err) {
      deadline.dispose();
      if (deadline.timedOut) throw upstreamTimeout(upstream, model, timeoutFor(), err);
      if (deadline.callerAborted() || isAbort(err)) throw new ClientClosedError();
      throw mapTransportError(err, upstream, model, timeoutFor());
    }
    if (res.status >= 400) {
      try {
        const text = await readText(res.data).catch(() => '');
        throw mapOpenAiError(res.status, text, upstream, model, res.headers?.['retry-after'] as string | undefined);
      } finally {
        deadline.dispose();
      }
    }
    o.onAccepted?.();
    const state = { done: false };
    async function* events(): AsyncGenerator<{ chunk: OpenAiChatChunk; at: number }> {
      let finished = false;
      try {
        const touched = (async function* () {
          for await (const piece of res.data as AsyncIterable<Buffer>) {
            seenFirst = true;
            deadline.touch();
            yield piece;
          }
        })();
        try {
          for await (const ev of readSse(touched)) {
            if (state.done) continue; // read on to the end: leaving early would cut the pooled socket
            if (ev.data.trim() === '[DONE]') {
              state.done = true;
              continue;
            }
            let obj: unknown;
            try {
              obj = JSON.parse(ev.data);
            } catch (err) {
              throw new UpstreamError(`The upstream '${upstream}' sent a malformed stream event`, { cause: err, details: { upstream } });
            }
            const o2 = obj as { error?: unknown; object?: unknown; code?: unknown };
            if (o2 && (o2.error !== undefined || o2.object === 'error')) {
              // An error after the 200 (vLLM: a `data: {"error": {...}}` event); its own code if numeric.
              const code = Number((o2.error as { code?: unknown } | undefined)?.code ?? o2.code);
              throw mapOpenAiError(Number.isInteger(code) && code >= 400 ? code : 500, ev.data, upstream, model);
            }
            yield { chunk: obj as OpenAiChatChunk, at: now() };
          }
        } catch (err) {
          if (err instanceof AppError) throw err;
          if (deadline.timedOut) throw upstreamTimeout(upstream, model, timeoutFor(), err);
          if (deadline.callerAborted()) throw new ClientClosedError();
          throw mapTransportError(err, upstream, model, timeoutFor());
        }
        if (deadline.timedOut) throw upstreamTimeout(upstream, model, timeoutFor());
        finished = true;
      } finally {
        deadline.dispose();
        // Stopping early or failing aborts the upstream request: frees its GPU.
        if (!finished) {
          deadline.controller.abort();
          res.data.destroy();
        }
      }
    }
    return { events: events(), state };
  }

  async function openChat(req: OllamaChatRequest, o: StreamCallOptions): Promise<AsyncIterable<OllamaChatChunk>> {
    const sentAt = now();
    const { body } = toOpenAiChatRequest(req, true);
    const source = await openSse('/v1/chat/completions', body, req.model, o);
    return mapStream(source, req.model, sentAt);
  }

  async function* mapStream(source: SseSource, model: string, sentAt: number): AsyncGenerator<OllamaChatChunk> {
    const mapper = new ChatStreamMapper(model, sentAt);
    try {
      for await (const { chunk, at } of source.events) yield* mapper.push(chunk, at);
    } finally {
      await source.events.return(undefined);
    }
    // Neither `[DONE]` nor a finish_reason: the answer was cut short (the body just ended).
    if (!source.state.done && !mapper.finished) {
      throw new UpstreamError(`The upstream '${upstream}' ended the answer before it was complete`, { details: { upstream } });
    }
    yield* mapper.finish(now());
  }

  async function openGenerate(req: OllamaGenerateRequest, o: StreamCallOptions): Promise<AsyncIterable<OllamaGenerateChunk>> {
    let chunks: AsyncIterable<OllamaChatChunk>;
    if (req.raw) {
      const sentAt = now();
      const { body } = toOpenAiCompletionRequest(req, true);
      chunks = mapStream(await openSse('/v1/completions', body, req.model, o), req.model, sentAt);
    } else {
      chunks = await openChat(generateToChat(req), o);
    }
    return (async function* () {
      for await (const c of chunks) yield chatChunkToGenerate(c);
    })();
  }

  function lazy<T>(open: () => Promise<AsyncIterable<T>>): AsyncIterable<T> {
    return {
      async *[Symbol.asyncIterator]() {
        yield* await open();
      },
    };
  }

  const client: OpenAiClient = {
    kind: 'openai',
    name: upstream,
    baseUrl,
    async models(signal) {
      const r = await getJson<{ data?: OpenAiModel[] }>('get', '/v1/models', undefined, undefined, signal);
      return Array.isArray(r?.data) ? r.data.filter((m) => m && typeof m.id === 'string') : [];
    },
    async tags(signal) {
      return modelsToTags(await client.models(signal));
    },
    openChat,
    openGenerate,
    chat: (req, o) => lazy(() => openChat(req, o)),
    generate: (req, o) => lazy(() => openGenerate(req, o)),
    async chatOnce(req, o) {
      const sentAt = now();
      const r = await oneCall<OpenAiChatCompletion>('/v1/chat/completions', toOpenAiChatRequest(req, false).body, req.model, o);
      return chatCompletionToChunks(r, req.model, { sentAt, endedAt: now() });
    },
    async embed(req, o) {
      const sentAt = now();
      const r = await oneCall<OpenAiEmbeddingResponse>('/v1/embeddings', toOpenAiEmbeddingRequest(req).body, req.model, o);
      return embeddingsToOllama(r, req.model, now() - sentAt);
    },
    proxy: createProxy(http_, {
      accept: 'application/json, text/event-stream',
      headers: auth,
      timeoutError: (model, timeoutS, cause) => upstreamTimeout(upstream, model, timeoutS, cause),
      transportError: (err, model, timeoutS) => mapTransportError(err, upstream, model, timeoutS),
    }),
  };
  return client;
}
