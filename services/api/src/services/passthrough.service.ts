/**
 * The standard client surfaces (/ollama → Ollama /api, /openai/v1 → Ollama /v1): Ollama's own
 * wire format passes through, but every inference call takes the same path as /v1/generate —
 * restart check, alias resolution, installed-model check, the GPU queue (the slot is held until the
 * upstream body is finished or abandoned), per-model timeouts — and runner options are pinned.
 */
import { finished, type Readable } from 'node:stream';
import type { Config } from '../config';
import { UpstreamError } from '../errors';
import type { OllamaClient, ProxyRequest, ProxyResponse } from '../clients/ollama.types';
import type { Admission, GenerationService } from './generation.service';
import type { Slot } from './gpu-queue';
import type { Metrics } from './metrics';
import type { ModelCatalog } from './model-catalog.service';
import type { OllamaState } from './ollama-state';

export type UpstreamCall = Pick<ProxyRequest, 'method' | 'path' | 'body' | 'headers'>;

/**
 * Runner options change the loaded runner: a caller's value would make Ollama reload the model for
 * everyone (docs/ollama-contract.md, Requests). num_ctx is pinned to NUM_CTX; the others are dropped.
 */
const RUNNER_OPTIONS = ['num_ctx', 'num_batch', 'num_gpu', 'main_gpu', 'use_mmap', 'num_thread', 'numa', 'low_vram', 'f16_kv', 'vocab_only', 'use_mlock'];

export interface PinnedOptions {
  options: Record<string, unknown>;
  /** Runner options the caller sent that were replaced or dropped (for the access log). */
  overridden: string[];
}

/** What a stream:false caller gets from a collected NDJSON stream. */
export type Collected = { ok: true; value: Record<string, unknown> } | { ok: false; error: string };

export interface PassthroughDeps {
  config: Config;
  ollama: OllamaClient;
  generation: GenerationService;
  catalog: ModelCatalog;
  state: OllamaState;
  /** Time to first byte and tokens, as for /v1 (queue waits are counted by the queue itself). */
  metrics?: Metrics;
  /** Called when a generation starts (the warm keeper's idle clock). */
  onActivity?: () => void;
}

/** Token figures of one answer, for the access log and the metrics. */
export interface AnswerUsage {
  tokens?: number;
  tokensPerSecond?: number | null;
  doneReason?: unknown;
}

/** From Ollama's final chunk (native) or an OpenAI `usage` object. */
export function answerUsage(o: Record<string, unknown> | undefined): AnswerUsage {
  if (!o) return {};
  if (typeof o.eval_count === 'number') {
    const ns = typeof o.eval_duration === 'number' ? o.eval_duration : 0;
    return { tokens: o.eval_count, tokensPerSecond: ns ? Math.round((o.eval_count / ns) * 1e9 * 10) / 10 : null, doneReason: o.done_reason };
  }
  const usage = o.usage as { completion_tokens?: unknown } | undefined;
  if (usage && typeof usage.completion_tokens === 'number') return { tokens: usage.completion_tokens };
  return {};
}

export class PassthroughService {
  constructor(private readonly deps: PassthroughDeps) {}

  /** Refusals before any byte: restart (503), unknown model (404), full queue (503). */
  admit(requestedModel: string | undefined, kind: 'chat' | 'embed' | 'vision', signal: AbortSignal): Promise<Admission> {
    return this.deps.generation.admit(requestedModel, kind, signal);
  }

  /** Alias → model name, for calls that do not queue (show). */
  resolve(model: string): string {
    return this.deps.catalog.resolve(model);
  }

  assertAvailable(): void {
    this.deps.state.assertAvailable();
  }

  pinOptions(user: unknown): PinnedOptions {
    const options: Record<string, unknown> = user && typeof user === 'object' && !Array.isArray(user) ? { ...(user as Record<string, unknown>) } : {};
    const overridden = RUNNER_OPTIONS.filter((k) => k in options && !(k === 'num_ctx' && options[k] === this.deps.config.models.numCtx));
    for (const k of RUNNER_OPTIONS) delete options[k];
    options.num_ctx = this.deps.config.models.numCtx;
    return { options, overridden };
  }

  get keepAlive(): string {
    return this.deps.config.ollama.keepAlive;
  }

  /**
   * Waits for the queue slot, then calls Ollama. The slot is held until the returned body ends,
   * fails or is destroyed; on a throw it is already free.
   */
  async inference(admission: Admission, call: UpstreamCall, signal: AbortSignal, onSlot?: (slot: Slot) => void): Promise<ProxyResponse> {
    const slot = await admission.ticket.slot;
    onSlot?.(slot);
    try {
      this.deps.state.assertAvailable();
      this.deps.onActivity?.();
      const t = await this.deps.generation.timeoutsFor(admission.model, signal);
      const sentAt = performance.now();
      const res = await this.deps.ollama.proxy({
        ...call,
        model: admission.model,
        signal,
        firstByteTimeoutMs: t.firstChunkTimeoutMs,
        idleTimeoutMs: t.idleTimeoutMs,
      });
      finished(res.body, () => slot.release());
      if (res.status < 400) {
        this.deps.catalog.markLoaded(admission.model);
        // Ollama sends its headers with the first token (nothing while it loads or reads the prompt).
        this.deps.metrics?.firstToken(admission.model, (performance.now() - sentAt) / 1000);
      }
      return res;
    } catch (err) {
      slot.release();
      throw err;
    }
  }

  /**
   * Counts a finished answer's tokens from its final chunk / usage object (when it has one) and
   * returns the figures for the access log.
   */
  account(model: string, final: Record<string, unknown> | undefined): AnswerUsage {
    const usage = answerUsage(final);
    if (typeof usage.tokens === 'number') this.deps.metrics?.generated(model, usage.tokens, usage.tokensPerSecond ?? null);
    return usage;
  }

  /** Metadata calls (tags, show, ps, version, /v1/models): no queue, the short request timeout. */
  metadata(call: UpstreamCall, signal: AbortSignal): Promise<ProxyResponse> {
    const ms = this.deps.config.ollama.requestTimeoutS * 1000;
    return this.deps.ollama.proxy({ ...call, signal, firstByteTimeoutMs: ms, idleTimeoutMs: ms });
  }

  /**
   * Model management (pull, push, create, copy, delete, blobs). Ollama is silent while it verifies a
   * multi-GB blob, so the gap between two lines may be long (as for /admin/models/pull). The model
   * list is refreshed afterwards.
   */
  async manage(call: UpstreamCall, signal: AbortSignal): Promise<ProxyResponse> {
    this.deps.state.assertAvailable();
    const o = this.deps.config.ollama;
    const res = await this.deps.ollama.proxy({
      ...call,
      signal,
      firstByteTimeoutMs: o.requestTimeoutS * 1000,
      idleTimeoutMs: Math.max(o.requestTimeoutS, 300) * 1000,
    });
    finished(res.body, () => this.deps.catalog.invalidate());
    return res;
  }
}

export async function readText(body: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c));
  return Buffer.concat(chunks).toString('utf8');
}

/** The message inside an Ollama error body (`{"error":"..."}` or OpenAI's `{"error":{"message"}}`). */
export function upstreamErrorText(body: string, status: number): string {
  try {
    const parsed = JSON.parse(body) as { error?: unknown };
    if (typeof parsed.error === 'string') return parsed.error;
    if (parsed.error && typeof parsed.error === 'object' && 'message' in parsed.error) return String((parsed.error as { message: unknown }).message);
  } catch {
    /* not JSON */
  }
  return body.trim().slice(0, 500) || `Ollama answered HTTP ${status}`;
}

/**
 * Collects a streamed NDJSON answer into the object Ollama sends for stream:false: the last line
 * (done / success) with the text fields concatenated. The upstream call always streams, so a long
 * non-streamed generation is bounded by the gap between tokens, not by its whole length.
 */
export async function collectNdjson(kind: 'generate' | 'chat' | 'progress', body: Readable): Promise<Collected> {
  let buf = '';
  let response = '';
  let thinking = '';
  let content = '';
  const toolCalls: unknown[] = [];
  let last: Record<string, unknown> | undefined;
  const take = (line: string): Collected | undefined => {
    if (!line.trim()) return undefined;
    let obj: Record<string, unknown>;
    try {
      obj = JSON.parse(line) as Record<string, unknown>;
    } catch (err) {
      throw new UpstreamError('Ollama sent a malformed stream line', { cause: err });
    }
    if (typeof obj.error === 'string') return { ok: false, error: obj.error };
    if (kind === 'generate') {
      response += typeof obj.response === 'string' ? obj.response : '';
      thinking += typeof obj.thinking === 'string' ? obj.thinking : '';
    } else if (kind === 'chat') {
      const m = (obj.message ?? {}) as Record<string, unknown>;
      content += typeof m.content === 'string' ? m.content : '';
      thinking += typeof m.thinking === 'string' ? m.thinking : '';
      if (Array.isArray(m.tool_calls)) toolCalls.push(...m.tool_calls);
    }
    last = obj;
    return undefined;
  };
  for await (const piece of body) {
    buf += Buffer.isBuffer(piece) ? piece.toString('utf8') : String(piece);
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const failed = take(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
      if (failed) {
        body.destroy();
        return failed;
      }
    }
  }
  const failed = take(buf);
  if (failed) return failed;
  const complete = kind === 'progress' ? last?.status === 'success' : last?.done === true;
  if (!last || !complete) throw new UpstreamError('Ollama ended the answer before it was complete');
  if (kind === 'generate') return { ok: true, value: { ...last, response, ...(thinking ? { thinking } : {}) } };
  if (kind === 'chat') {
    const message = {
      ...((last.message ?? {}) as Record<string, unknown>),
      role: 'assistant',
      content,
      ...(thinking ? { thinking } : {}),
      ...(toolCalls.length ? { tool_calls: toolCalls } : {}),
    };
    return { ok: true, value: { ...last, message } };
  }
  return { ok: true, value: last };
}

/**
 * Collects a streamed OpenAI chat completion (SSE `chat.completion.chunk` events, with
 * `stream_options.include_usage`) into the `chat.completion` object a stream:false caller expects.
 * Same reason as collectNdjson: the upstream wait is then bounded per token, not per answer.
 * An `{"error":…}` event is returned as is (OpenAI shape).
 */
export async function collectChatCompletion(body: Readable): Promise<{ ok: true; value: Record<string, unknown> } | { ok: false; error: unknown }> {
  let buf = '';
  let head: Record<string, unknown> | undefined;
  let content = '';
  let reasoning = '';
  let finishReason: unknown = null;
  let usage: unknown;
  let done = false;
  const toolCalls: Array<Record<string, unknown>> = [];
  const take = (line: string): { ok: false; error: unknown } | undefined => {
    if (!line.startsWith('data:')) return undefined; // blank lines, comments, event names
    const data = line.slice(5).trim();
    if (data === '[DONE]') {
      done = true;
      return undefined;
    }
    let obj: Record<string, unknown>;
    try {
      obj = JSON.parse(data) as Record<string, unknown>;
    } catch (err) {
      throw new UpstreamError('Ollama sent a malformed stream event', { cause: err });
    }
    if (obj.error) return { ok: false, error: obj.error };
    head ??= obj;
    if (obj.usage) usage = obj.usage;
    for (const choice of (obj.choices as Array<Record<string, unknown>> | undefined) ?? []) {
      const delta = (choice.delta ?? {}) as Record<string, unknown>;
      if (typeof delta.content === 'string') content += delta.content;
      if (typeof delta.reasoning === 'string') reasoning += delta.reasoning;
      for (const tc of (delta.tool_calls as Array<Record<string, unknown>> | undefined) ?? []) {
        const i = typeof tc.index === 'number' ? tc.index : toolCalls.length;
        const prev = toolCalls[i];
        if (!prev) {
          toolCalls[i] = { ...tc };
          continue;
        }
        const fn = (prev.function ?? {}) as Record<string, unknown>;
        const more = (tc.function ?? {}) as Record<string, unknown>;
        prev.function = { ...fn, arguments: `${fn.arguments ?? ''}${more.arguments ?? ''}` };
      }
      if (choice.finish_reason) finishReason = choice.finish_reason;
    }
    return undefined;
  };
  for await (const piece of body) {
    buf += Buffer.isBuffer(piece) ? piece.toString('utf8') : String(piece);
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const failed = take(buf.slice(0, nl).trim());
      buf = buf.slice(nl + 1);
      if (failed) {
        body.destroy();
        return failed;
      }
    }
  }
  const failed = take(buf.trim());
  if (failed) return failed;
  if (!head || !done) throw new UpstreamError('Ollama ended the answer before it was complete');
  const calls = toolCalls.filter(Boolean).map(({ index: _index, ...tc }) => tc);
  const message = { role: 'assistant', content, ...(reasoning ? { reasoning } : {}), ...(calls.length ? { tool_calls: calls } : {}) };
  return {
    ok: true,
    value: {
      id: head.id,
      object: 'chat.completion',
      created: head.created,
      model: head.model,
      system_fingerprint: head.system_fingerprint,
      choices: [{ index: 0, message, finish_reason: finishReason }],
      ...(usage ? { usage } : {}),
    },
  };
}
