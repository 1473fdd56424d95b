/**
 * Text and chat generation: model resolution and validation, the GPU queue, per-model timeouts
 * (with the cold-load allowance), pinned runner options, and usage figures. Routes decide whether
 * the events are streamed or collected.
 */
import type { Config } from '../config';
import { type AppError, UpstreamError } from '../errors';
import type { OllamaChatChunk, OllamaGenerateChunk, OllamaMessage, OllamaMetrics, StreamCallOptions } from '../clients/ollama.types';
import type { ModelCatalog } from './model-catalog';
import type { OllamaState } from './ollama-state';
import type { Metrics } from './metrics';
import type { Priority, UpstreamKind } from '../config/upstreams';
import { timeoutsFor as modelTimeouts } from './model-timeouts';
import { primed, type OpenFn, type OpenHooks, type PoolAdmission, type PoolMember, type UpstreamPool } from './upstream-pool';

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  total_ms: number;
  load_ms: number;
  prompt_eval_ms: number;
  eval_ms: number;
  tokens_per_second: number | null;
}

export type GenEvent = { type: 'delta'; text: string; thinking?: string; toolCalls?: unknown[] } | { type: 'done'; doneReason: string; usage: Usage };

export interface GenerateInput {
  prompt: string;
  system?: string;
  images?: string[];
  options?: Record<string, unknown>;
  format?: 'json' | Record<string, unknown>;
}

export interface ChatInput {
  messages: OllamaMessage[];
  options?: Record<string, unknown>;
  format?: 'json' | Record<string, unknown>;
  tools?: unknown[];
}

export type GenRequest = { kind: 'generate'; input: GenerateInput } | { kind: 'chat'; input: ChatInput };

/** An admitted request: it holds (or waits for) a queue place at its first upstream. */
export type Admission = PoolAdmission;

/** What a route learns while a request runs: its slot (queue wait) and the upstream that took it. */
export type RunHooks = OpenHooks;

/** A request's lane and the route's hooks, for the services that admit and run in one call. */
export interface RunOptions {
  priority?: Priority;
  hooks?: RunHooks;
}

/** A whole generation, collected (for stream:false callers). */
export interface GenerationResult {
  text: string;
  thinking: string;
  toolCalls: unknown[];
  doneReason: string;
  usage: Usage;
}

const nsToMs = (ns?: number) => Math.round((ns ?? 0) / 1e6);

export function usageFrom(m: OllamaMetrics): Usage {
  const prompt = m.prompt_eval_count ?? 0;
  const completion = m.eval_count ?? 0;
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    total_ms: nsToMs(m.total_duration),
    load_ms: nsToMs(m.load_duration),
    prompt_eval_ms: nsToMs(m.prompt_eval_duration),
    eval_ms: nsToMs(m.eval_duration),
    // Ollama reports durations in nanoseconds: tokens per second = eval_count / eval_duration * 1e9.
    tokens_per_second: m.eval_duration ? Math.round((completion / m.eval_duration) * 1e9 * 10) / 10 : null,
  };
}

export interface GenerationDeps {
  config: Config;
  catalog: ModelCatalog;
  pool: UpstreamPool;
  state: OllamaState;
  metrics?: Metrics;
  /** Called when a generation starts (the warm keeper's idle clock). */
  onActivity?: () => void;
}

/**
 * Temperature 0 and a seed: the same request gets the same answer, so it may be cached. Reads
 * validated options and raw ones alike (the early refusal looks before validation).
 */
export function deterministic(options: { temperature?: unknown; seed?: unknown } | null | undefined): boolean {
  return !!options && options.temperature !== undefined && Number(options.temperature) === 0 && options.seed !== undefined;
}

export class GenerationService {
  constructor(private readonly deps: GenerationDeps) {}

  /** Options sent on every call: plan defaults, the caller's, and the pinned context size. */
  buildOptions(user: Record<string, unknown> = {}): Record<string, unknown> {
    const d = this.deps.config.defaults;
    return { temperature: d.temperature, top_p: d.topP, top_k: d.topK, ...user, num_ctx: this.deps.config.models.numCtx };
  }

  /**
   * Upstream waits for a model: per-model timeout, plus the load allowance when it may be cold.
   * The local Ollama tells whether the model is loaded; any other upstream counts as cold (a
   * wrong "warm" would time a load out, a wrong "cold" only waits longer for a dead one).
   */
  async timeoutsFor(model: string, signal?: AbortSignal, member?: PoolMember): Promise<StreamCallOptions> {
    const o = this.deps.config.ollama;
    if (member && !member.local) {
      const t = member.config.timeouts;
      return modelTimeouts({ ...o, requestTimeoutS: t.requestS, loadAllowanceS: t.loadS }, model, true, signal);
    }
    const cold = !(await this.deps.catalog.isLoadedBeforeCall(model));
    return modelTimeouts(o, model, cold, signal);
  }

  /**
   * What identifies a cacheable answer, or undefined when it is not cacheable: only deterministic
   * generations (temperature 0 and a seed) give the same answer to the same request.
   */
  cacheParts(requestedModel: string | undefined, kind: 'chat' | 'vision', req: GenRequest): unknown {
    return deterministic(req.input.options) ? { model: this.resolveModel(requestedModel, kind), request: req } : undefined;
  }

  /** The model a request will use (alias and defaults applied), without any check. */
  resolveModel(requested: string | undefined, kind: 'chat' | 'embed' | 'vision'): string {
    return this.deps.catalog.resolve(requested, kind);
  }

  /**
   * Everything that can refuse a request before a response starts: restart in progress, unknown
   * model, nobody up to serve it, full queue (of the request's lane). Health, readiness and model
   * listing never come here. `kinds` limits the upstreams (the /ollama surface: `ollama` only).
   */
  async admit(
    requestedModel: string | undefined,
    kind: 'chat' | 'embed' | 'vision',
    signal?: AbortSignal,
    priority: Priority = 'normal',
    kinds?: readonly UpstreamKind[],
  ): Promise<Admission> {
    this.deps.state.assertAvailable();
    const model = this.deps.catalog.resolve(requestedModel, kind);
    // One upstream: its model list is the catalog's (one cache, its 404 with the pull hint). A
    // pool: routing knows who has what, and says 404 or 503 itself.
    if (this.deps.pool.implicit) await this.deps.catalog.ensureInstalled(model);
    return this.deps.pool.admit(model, priority, signal, kinds);
  }

  /**
   * The early answer to an overload: the QUEUE_FULL that `admit` would give this request now, or
   * undefined. Synchronous and queues nothing, so a route can ask before validating a body.
   */
  refusal(requestedModel: string | undefined, kind: 'chat' | 'embed' | 'vision', priority: Priority, kinds?: readonly UpstreamKind[]): AppError | undefined {
    return this.deps.pool.refusal(this.deps.catalog.resolve(requestedModel, kind), priority, kinds);
  }

  /**
   * Waits for the slot, runs the generation on the first upstream that takes it (the next one when
   * it fails before the first byte), yields its events, and always frees the slot.
   */
  async *run(admission: Admission, req: GenRequest, signal: AbortSignal, hooks: RunHooks = {}): AsyncGenerator<GenEvent> {
    const opened = await this.deps.pool.open(admission, signal, hooks, (member, onAccepted) => {
      this.deps.state.assertAvailable();
      return primed(this.upstream(member, admission.model, req, signal, onAccepted));
    });
    try {
      yield* opened.value;
    } finally {
      opened.slot.release();
    }
  }

  /**
   * Waits for the slot and runs `call` on an upstream (the next one when it fails before its first
   * byte); the slot is free again when it returns. For answers that are not streamed.
   */
  runOn<T>(admission: Admission, signal: AbortSignal, hooks: RunHooks, call: OpenFn<T>): Promise<{ value: T; upstream: string }> {
    return this.deps.pool.run(admission, signal, hooks, call);
  }

  /** One generation on one upstream, no queueing (the caller holds a slot there). */
  async *upstream(member: PoolMember, model: string, req: GenRequest, signal: AbortSignal, onAccepted?: () => void): AsyncGenerator<GenEvent> {
    this.deps.onActivity?.();
    const timeouts = { ...(await this.timeoutsFor(model, signal, member)), onAccepted };
    const keep_alive = this.deps.config.ollama.keepAlive;
    const upstream = member.client;
    const chunks: AsyncIterable<OllamaGenerateChunk | OllamaChatChunk> =
      req.kind === 'generate'
        ? upstream.generate(
            {
              model,
              prompt: req.input.prompt,
              system: req.input.system,
              images: req.input.images,
              format: req.input.format,
              options: this.buildOptions(req.input.options),
              keep_alive,
            },
            timeouts,
          )
        : upstream.chat(
            {
              model,
              messages: req.input.messages,
              format: req.input.format,
              tools: req.input.tools,
              options: this.buildOptions(req.input.options),
              keep_alive,
            },
            timeouts,
          );
    const sentAt = performance.now();
    let first = true;
    for await (const chunk of chunks) {
      if (first) {
        first = false;
        this.deps.metrics?.firstToken(model, (performance.now() - sentAt) / 1000);
      }
      const text = 'response' in chunk ? chunk.response : (chunk.message?.content ?? '');
      const thinking = 'response' in chunk ? chunk.thinking : chunk.message?.thinking;
      const toolCalls = 'message' in chunk ? chunk.message?.tool_calls : undefined;
      if (text || thinking || toolCalls?.length) yield { type: 'delta', text, thinking, toolCalls };
      if (chunk.done) {
        if (member.local) this.deps.catalog.markLoaded(model);
        const usage = usageFrom(chunk);
        this.deps.metrics?.generated(model, usage.completion_tokens, usage.tokens_per_second);
        yield { type: 'done', doneReason: chunk.done_reason ?? 'stop', usage };
        return;
      }
    }
    throw new UpstreamError(`${member.local ? 'Ollama' : `The upstream '${member.name}'`} ended the answer before it was complete`);
  }
}

/** Drains a generation into one result (for stream:false callers). */
export async function collect(events: AsyncIterable<GenEvent>): Promise<GenerationResult> {
  let text = '';
  let thinking = '';
  const toolCalls: unknown[] = [];
  for await (const ev of events) {
    if (ev.type === 'delta') {
      text += ev.text;
      thinking += ev.thinking ?? '';
      if (ev.toolCalls) toolCalls.push(...ev.toolCalls);
    } else {
      return { text, thinking, toolCalls, doneReason: ev.doneReason, usage: ev.usage };
    }
  }
  throw new UpstreamError('Ollama ended the answer before it was complete');
}
