/**
 * Text and chat generation: model resolution and validation, the GPU queue, per-model timeouts
 * (with the cold-load allowance), pinned runner options, and usage figures. Routes decide whether
 * the events are streamed or collected.
 */
import type { Config } from '../config';
import { UpstreamError } from '../errors';
import type { OllamaChatChunk, OllamaClient, OllamaGenerateChunk, OllamaMessage, OllamaMetrics, StreamCallOptions } from '../clients/ollama.types';
import type { ModelCatalog } from './model-catalog';
import { timeoutsFor } from './model-timeouts';
import type { LaneQueue, Slot, Ticket } from './lane-queue';
import type { OllamaState } from './ollama-state';
import type { Metrics } from './metrics';

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

/** An admitted request: it holds (or waits for) a queue place. */
export interface Admission {
  model: string;
  ticket: Ticket;
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
  ollama: OllamaClient;
  catalog: ModelCatalog;
  queue: LaneQueue;
  state: OllamaState;
  metrics?: Metrics;
  /** Called when a generation starts (the warm keeper's idle clock). */
  onActivity?: () => void;
}

export class GenerationService {
  constructor(private readonly deps: GenerationDeps) {}

  /** Options sent on every call: plan defaults, the caller's, and the pinned context size. */
  buildOptions(user: Record<string, unknown> = {}): Record<string, unknown> {
    const d = this.deps.config.defaults;
    return { temperature: d.temperature, top_p: d.topP, top_k: d.topK, ...user, num_ctx: this.deps.config.models.numCtx };
  }

  /** Upstream waits for a model: per-model timeout, plus the load allowance when it is cold. */
  async timeoutsFor(model: string, signal?: AbortSignal): Promise<StreamCallOptions> {
    const cold = !(await this.deps.catalog.isLoaded(model));
    return timeoutsFor(this.deps.config.ollama, model, cold, signal);
  }

  /**
   * What identifies a cacheable answer, or undefined when it is not cacheable: only deterministic
   * generations (temperature 0 and a seed) give the same answer to the same request.
   */
  cacheParts(requestedModel: string | undefined, kind: 'chat' | 'vision', req: GenRequest): unknown {
    const options = req.input.options ?? {};
    const deterministic = options.temperature === 0 && options.seed !== undefined;
    return deterministic ? { model: this.resolveModel(requestedModel, kind), request: req } : undefined;
  }

  /** The model a request will use (alias and defaults applied), without any check. */
  resolveModel(requested: string | undefined, kind: 'chat' | 'embed' | 'vision'): string {
    return this.deps.catalog.resolve(requested, kind);
  }

  /**
   * Everything that can refuse a request before a response starts: restart in progress, unknown
   * model, full queue. Health, readiness and model listing never come here.
   */
  async admit(requestedModel: string | undefined, kind: 'chat' | 'embed' | 'vision', signal?: AbortSignal): Promise<Admission> {
    this.deps.state.assertAvailable();
    const model = this.deps.catalog.resolve(requestedModel, kind);
    await this.deps.catalog.ensureInstalled(model);
    return { model, ticket: this.deps.queue.admit(model, signal) };
  }

  /** Waits for the slot, runs the generation, yields its events, and always frees the slot. */
  async *run(admission: Admission, req: GenRequest, signal: AbortSignal, onSlot?: (slot: Slot) => void): AsyncGenerator<GenEvent> {
    const slot = await admission.ticket.slot;
    onSlot?.(slot);
    try {
      this.deps.state.assertAvailable();
      yield* this.upstream(admission.model, req, signal);
    } finally {
      slot.release();
    }
  }

  /** One upstream generation, no queueing (the caller holds a slot). */
  async *upstream(model: string, req: GenRequest, signal: AbortSignal): AsyncGenerator<GenEvent> {
    this.deps.onActivity?.();
    const timeouts = await this.timeoutsFor(model, signal);
    const keep_alive = this.deps.config.ollama.keepAlive;
    const chunks: AsyncIterable<OllamaGenerateChunk | OllamaChatChunk> =
      req.kind === 'generate'
        ? this.deps.ollama.generate(
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
        : this.deps.ollama.chat(
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
        this.deps.catalog.markLoaded(model);
        const usage = usageFrom(chunk);
        this.deps.metrics?.generated(model, usage.completion_tokens, usage.tokens_per_second);
        yield { type: 'done', doneReason: chunk.done_reason ?? 'stop', usage };
        return;
      }
    }
    throw new UpstreamError('Ollama ended the answer before it was complete');
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
