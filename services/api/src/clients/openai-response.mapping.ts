/**
 * Pure answer mapping from the OpenAI API to Ollama's wire shapes: OpenAI stream chunks (SSE
 * `data:` objects) and whole completions → OllamaChatChunk / OllamaGenerateChunk with done,
 * done_reason, token counts and durations (nanoseconds, from our own timing and `usage`), so the
 * generation service consumes either kind unchanged; embeddings and model lists too.
 *
 * No I/O: time comes in as arguments.
 */
import type { OllamaChatChunk, OllamaEmbedResponse, OllamaGenerateChunk, OllamaTag } from './ollama.types';
import type { OpenAiChatChunk, OpenAiChatCompletion, OpenAiEmbeddingResponse, OpenAiModel, OpenAiUsage } from './openai.types';

/** OpenAI finish_reason → Ollama done_reason. */
export function doneReason(finish: string | null | undefined): string {
  if (finish === 'length') return 'length';
  // 'stop', 'tool_calls' (Ollama reports 'stop' with tool calls), 'content_filter', null
  return 'stop';
}

const msToNs = (ms: number): number => Math.max(0, Math.round(ms * 1e6));
const isoAt = (ms: number): string => new Date(ms).toISOString();

function parseArguments(args: string): unknown {
  if (!args) return {};
  try {
    return JSON.parse(args);
  } catch {
    return args;
  }
}

/** Timing of one answer (ms on the caller's clock). */
export interface AnswerTiming {
  sentAt: number;
  firstTokenAt?: number;
  lastTokenAt?: number;
  endedAt: number;
}

/** Ollama's metrics from OpenAI usage and our own timing (no load time is known: 0). */
export function metricsFrom(usage: OpenAiUsage | null | undefined, t: AnswerTiming, countedChunks: number) {
  const first = t.firstTokenAt ?? t.endedAt;
  const last = t.lastTokenAt ?? first;
  return {
    total_duration: msToNs(t.endedAt - t.sentAt),
    load_duration: 0,
    prompt_eval_count: usage?.prompt_tokens ?? 0,
    prompt_eval_duration: msToNs(first - t.sentAt),
    // Without usage (a server that ignores stream_options) each content chunk counts as one token.
    eval_count: usage?.completion_tokens ?? countedChunks,
    eval_duration: msToNs(last - first),
  };
}

/**
 * One streamed chat answer, chunk by chunk. `push` maps an SSE chunk to zero or more
 * OllamaChatChunks (text and thinking as they come; tool calls, which OpenAI streams in fragments,
 * whole once the choice finishes); `finish` gives the final `done` chunk.
 */
export class ChatStreamMapper {
  private readonly timing: AnswerTiming;
  private finishReason: string | null | undefined;
  private usage: OpenAiUsage | null | undefined;
  private chunks = 0;
  private model: string;
  private readonly calls = new Map<number, { id?: string; name: string; args: string }>();
  private callsFlushed = false;

  /** A choice reported its finish_reason (the answer is complete even without `[DONE]`). */
  get finished(): boolean {
    return Boolean(this.finishReason);
  }

  constructor(model: string, sentAt: number) {
    this.model = model;
    this.timing = { sentAt, endedAt: sentAt };
  }

  push(c: OpenAiChatChunk, at: number): OllamaChatChunk[] {
    const out: OllamaChatChunk[] = [];
    if (c.usage) this.usage = c.usage;
    for (const choice of c.choices ?? []) {
      if ((choice.index ?? 0) !== 0) continue; // n > 1 is never requested
      const d = choice.delta ?? {};
      const content = d.content ?? choice.text ?? '';
      const thinking = d.reasoning_content ?? d.reasoning ?? '';
      for (const tc of d.tool_calls ?? []) {
        const i = tc.index ?? 0;
        const acc = this.calls.get(i) ?? { name: '', args: '' };
        if (tc.id) acc.id = tc.id;
        if (tc.function?.name) acc.name += tc.function.name;
        if (tc.function?.arguments) acc.args += tc.function.arguments;
        this.calls.set(i, acc);
      }
      if (content || thinking || d.tool_calls?.length) {
        this.timing.firstTokenAt ??= at;
        this.timing.lastTokenAt = at;
      }
      if (content || thinking) {
        this.chunks++;
        out.push({ model: this.model, created_at: isoAt(at), message: { role: 'assistant', content, ...(thinking ? { thinking } : {}) }, done: false });
      }
      if (choice.finish_reason) {
        this.finishReason = choice.finish_reason;
        const calls = this.flushCalls(at);
        if (calls) out.push(calls);
      }
    }
    return out;
  }

  /** The closing chunk, once the stream has ended (`data: [DONE]` or end of body). */
  finish(at: number): OllamaChatChunk[] {
    this.timing.endedAt = at;
    const out: OllamaChatChunk[] = [];
    const calls = this.flushCalls(at);
    if (calls) out.push(calls);
    out.push({
      model: this.model,
      created_at: isoAt(at),
      message: { role: 'assistant', content: '' },
      done: true,
      done_reason: doneReason(this.finishReason),
      ...metricsFrom(this.usage, this.timing, this.chunks),
    });
    return out;
  }

  private flushCalls(at: number): OllamaChatChunk | undefined {
    if (this.callsFlushed || this.calls.size === 0) return undefined;
    this.callsFlushed = true;
    const tool_calls = [...this.calls.entries()]
      .sort(([a], [b]) => a - b)
      .map(([, c]) => ({ ...(c.id ? { id: c.id } : {}), function: { name: c.name, arguments: parseArguments(c.args) } }));
    return { model: this.model, created_at: isoAt(at), message: { role: 'assistant', content: '', tool_calls }, done: false };
  }
}

/** A whole (stream:false) chat completion → the chunks a streamed one would have given. */
export function chatCompletionToChunks(r: OpenAiChatCompletion, model: string, t: AnswerTiming): OllamaChatChunk[] {
  const choice = r.choices?.[0];
  const msg = choice?.message ?? {};
  const out: OllamaChatChunk[] = [];
  const content = msg.content ?? choice?.text ?? '';
  const thinking = msg.reasoning_content ?? msg.reasoning ?? '';
  const at = t.endedAt;
  if (content || thinking) out.push({ model, created_at: isoAt(at), message: { role: 'assistant', content, ...(thinking ? { thinking } : {}) }, done: false });
  if (msg.tool_calls?.length) {
    const tool_calls = msg.tool_calls.map((c) => ({
      ...(c.id ? { id: c.id } : {}),
      function: { name: c.function.name, arguments: parseArguments(c.function.arguments) },
    }));
    out.push({ model, created_at: isoAt(at), message: { role: 'assistant', content: '', tool_calls }, done: false });
  }
  out.push({
    model,
    created_at: isoAt(at),
    message: { role: 'assistant', content: '' },
    done: true,
    done_reason: doneReason(choice?.finish_reason),
    ...metricsFrom(r.usage, { sentAt: t.sentAt, firstTokenAt: t.firstTokenAt ?? at, lastTokenAt: t.lastTokenAt ?? at, endedAt: at }, content ? 1 : 0),
  });
  return out;
}

/** A chat chunk as the generate surface's chunk (response = the message text). */
export function chatChunkToGenerate(c: OllamaChatChunk): OllamaGenerateChunk {
  const { message, ...rest } = c;
  return { ...rest, response: message?.content ?? '', ...(message?.thinking ? { thinking: message.thinking } : {}) };
}

export function embeddingsToOllama(r: OpenAiEmbeddingResponse, model: string, tookMs: number): OllamaEmbedResponse {
  const data = [...(r.data ?? [])].sort((a, b) => (a.index ?? 0) - (b.index ?? 0));
  return {
    model,
    embeddings: data.map((d) => d.embedding ?? []),
    total_duration: msToNs(tookMs),
    load_duration: 0,
    prompt_eval_count: r.usage?.prompt_tokens ?? 0,
  };
}

/** /v1/models → the catalog's tag shape (no size, digest or quantization are known). */
export function modelsToTags(models: OpenAiModel[]): OllamaTag[] {
  return models.map((m) => ({
    name: m.id,
    model: m.id,
    modified_at: new Date((m.created ?? 0) * 1000).toISOString(),
    size: 0,
    digest: '',
    details: {},
  }));
}
