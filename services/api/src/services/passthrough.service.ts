/**
 * The standard client surfaces (/ollama → Ollama /api, /openai/v1 → Ollama /v1): Ollama's own
 * wire format passes through, but every inference call takes the same path as /v1/generate —
 * restart check, alias resolution, installed-model check, the GPU queue (the slot is held until the
 * upstream body is finished or abandoned), per-model timeouts — and the native surface's runner
 * options are pinned.
 */
import { finished } from 'node:stream';
import type { Config } from '../config';
import type { OllamaClient, ProxyRequest, ProxyResponse } from '../clients/ollama.types';
import { AppError, ModelNotFoundError, QueueFullError, UpstreamError } from '../errors';
import type { Priority, UpstreamKind } from '../config/upstreams';
import type { Admission, GenerationService, RunHooks } from './generation.service';
import type { PoolMember, UpstreamPool } from './upstream-pool';
import type { Metrics } from './metrics';
import type { ModelCatalog } from './model-catalog';
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

/** The inference calls of the two surfaces. */
export type NativeInference = 'generate' | 'chat' | 'embed' | 'embeddings';
export type OpenaiInference = 'chat/completions' | 'completions' | 'embeddings';
type Lane = 'chat' | 'embed' | 'vision';

function nativeHasImages(kind: NativeInference, b: Record<string, unknown>): boolean {
  if (kind === 'generate') return Array.isArray(b.images) && b.images.length > 0;
  if (kind === 'chat' && Array.isArray(b.messages)) {
    return b.messages.some(
      (m) => m && typeof m === 'object' && Array.isArray((m as { images?: unknown }).images) && (m as { images: unknown[] }).images.length > 0,
    );
  }
  return false;
}

function openaiHasImages(b: Record<string, unknown>): boolean {
  if (!Array.isArray(b.messages)) return false;
  return b.messages.some((m) => {
    const content = m && typeof m === 'object' ? (m as { content?: unknown }).content : undefined;
    return Array.isArray(content) && content.some((p) => p && typeof p === 'object' && (p as { type?: unknown }).type === 'image_url');
  });
}

/** The queue lane of a native call: embeddings, vision (it sends images) or chat. */
export function nativeLane(kind: NativeInference, b: Record<string, unknown>): Lane {
  return kind === 'embed' || kind === 'embeddings' ? 'embed' : nativeHasImages(kind, b) ? 'vision' : 'chat';
}

/** The queue lane of an OpenAI-compatible call. */
export function openaiLane(kind: OpenaiInference, b: Record<string, unknown>): Lane {
  return kind === 'embeddings' ? 'embed' : openaiHasImages(b) ? 'vision' : 'chat';
}

/**
 * A non-streamed chat completion that can be streamed from Ollama and collected without losing
 * anything (not with logprobs or n > 1).
 */
export function collectable(b: Record<string, unknown>): boolean {
  return !b.logprobs && (b.n === undefined || b.n === null || b.n === 1);
}

export interface PassthroughDeps {
  config: Config;
  /** The local Ollama (metadata and model management of the /ollama surface). */
  ollama: OllamaClient;
  pool: UpstreamPool;
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

/** A 5xx before any byte, as the error that moves the request on (503: the upstream's own "busy"). */
function failedStatus(member: PoolMember, status: number): AppError {
  const details = { upstream: member.name, upstreamStatus: status };
  return status === 503
    ? new QueueFullError(`The upstream '${member.name}' is busy (503)`, 5, { details })
    : new UpstreamError(`The upstream '${member.name}' answered ${status}`, { details });
}

export class PassthroughService {
  constructor(private readonly deps: PassthroughDeps) {}

  /**
   * Refusals before any byte: restart (503), unknown model (404), nobody up (503), full queue (503).
   * The native surface passes Ollama's own format through, so it routes to `ollama` upstreams
   * only; a model that only an `openai` upstream serves is a 400 that says where to ask instead.
   */
  async admit(
    requestedModel: string | undefined,
    kind: 'chat' | 'embed' | 'vision',
    signal: AbortSignal,
    priority: Priority = 'normal',
    surface: 'ollama' | 'openai' = 'openai',
  ): Promise<Admission> {
    if (surface === 'openai') return this.deps.generation.admit(requestedModel, kind, signal, priority);
    try {
      return await this.deps.generation.admit(requestedModel, kind, signal, priority, ['ollama']);
    } catch (err) {
      const model = this.deps.catalog.resolve(requestedModel, kind);
      const elsewhere = err instanceof ModelNotFoundError ? this.deps.pool.servedBy(model).filter((m) => m.kind !== 'ollama') : [];
      if (elsewhere.length === 0) throw err;
      throw new AppError(
        'UPSTREAM_KIND_UNSUPPORTED',
        400,
        `Model '${model}' is served by an openai upstream (${elsewhere.map((m) => m.name).join(', ')}); the /ollama surface speaks to ollama upstreams only`,
        { hint: 'Use /v1 or /openai/v1 for this model.', details: { model, upstreams: elsewhere.map((m) => ({ name: m.name, kind: m.kind })) } },
      );
    }
  }

  /** The early QUEUE_FULL (lanes.ts, refuseWhenFull); `kinds` ['ollama'] for the native surface. */
  refusal(requestedModel: string | undefined, kind: 'chat' | 'embed' | 'vision', priority: Priority, kinds?: readonly UpstreamKind[]): AppError | undefined {
    return this.deps.generation.refusal(requestedModel, kind, priority, kinds);
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

  /**
   * The body of a native inference call as it goes to Ollama: the admitted model, pinned runner
   * options, and keep_alive, which decides when the GPU is freed for everyone: only admins may
   * choose it, everyone else gets OLLAMA_KEEP_ALIVE.
   */
  nativeBody(kind: NativeInference, b: Record<string, unknown>, model: string, isAdmin: boolean): { body: Record<string, unknown>; overridden: string[] } {
    const pinned = this.pinOptions(b.options);
    if (b.keep_alive !== undefined && !isAdmin) pinned.overridden.push('keep_alive');
    const keepAlive = this.deps.config.ollama.keepAlive;
    const streamable = kind === 'generate' || kind === 'chat';
    return {
      body: { ...b, model, options: pinned.options, keep_alive: isAdmin ? (b.keep_alive ?? keepAlive) : keepAlive, ...(streamable ? { stream: true } : {}) },
      overridden: pinned.overridden,
    };
  }

  /**
   * Waits for the queue slot, then calls the upstream (the next one when it is unreachable or
   * answers 5xx before any byte; the last one's 5xx is passed on as it is). The slot is held until
   * the returned body ends, fails or is destroyed; on a throw it is already free.
   */
  async inference(admission: Admission, call: UpstreamCall, signal: AbortSignal, hooks: RunHooks = {}): Promise<ProxyResponse> {
    const last = admission.candidates[admission.candidates.length - 1];
    const opened = await this.deps.pool.open(admission, signal, hooks, async (member, onAccepted) => {
      this.deps.state.assertAvailable();
      this.deps.onActivity?.();
      const t = await this.deps.generation.timeoutsFor(admission.model, signal, member);
      const sentAt = performance.now();
      const res = await member.client.proxy({
        ...call,
        model: admission.model,
        signal,
        firstByteTimeoutMs: t.firstChunkTimeoutMs,
        idleTimeoutMs: t.idleTimeoutMs,
        onAccepted,
      });
      if (res.status >= 500 && member.name !== last) {
        res.body.destroy();
        throw failedStatus(member, res.status);
      }
      if (res.status < 400) {
        if (member.local) this.deps.catalog.markLoaded(admission.model);
        // Ollama sends its headers with the first token (nothing while it loads or reads the prompt).
        this.deps.metrics?.firstToken(admission.model, (performance.now() - sentAt) / 1000);
      }
      return res;
    });
    finished(opened.value.body, () => opened.slot.release());
    return opened.value;
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
  async manage(call: UpstreamCall, signal: AbortSignal, target?: OllamaClient): Promise<ProxyResponse> {
    this.deps.state.assertAvailable();
    const o = this.deps.config.ollama;
    const res = await (target ?? this.deps.ollama).proxy({
      ...call,
      signal,
      firstByteTimeoutMs: o.requestTimeoutS * 1000,
      idleTimeoutMs: Math.max(o.requestTimeoutS, 300) * 1000,
    });
    finished(res.body, () => {
      this.deps.catalog.invalidate();
      void this.deps.pool.refresh();
    });
    return res;
  }
}
