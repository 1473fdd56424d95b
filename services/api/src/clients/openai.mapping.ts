/**
 * Pure mapping between Ollama's wire shapes (what the gateway's services speak) and the OpenAI
 * API (what vLLM, llama.cpp's server, LM Studio and llm-d/KServe gateways speak):
 *
 * - requests: Ollama chat/generate/embed → OpenAI chat completions / completions / embeddings;
 *   options → sampling fields (top_k, min_p and repetition_penalty are vLLM extensions that
 *   llama.cpp's server accepts too); runner-only options (num_ctx, keep_alive, ...) are dropped
 *   and listed;
 * - answers: OpenAI stream chunks (SSE `data:` objects) and whole completions → OllamaChatChunk /
 *   OllamaGenerateChunk with done, done_reason, token counts and durations (nanoseconds, from our
 *   own timing and `usage`), so the generation service consumes either kind unchanged.
 *
 * No I/O: time comes in as arguments.
 */
import type {
  OllamaChatChunk,
  OllamaChatRequest,
  OllamaEmbedRequest,
  OllamaEmbedResponse,
  OllamaGenerateChunk,
  OllamaGenerateRequest,
  OllamaMessage,
  OllamaTag,
} from './ollama.types';

// ---------------------------------------------------------------------------------------------
// OpenAI wire types (only the fields read or written here)
// ---------------------------------------------------------------------------------------------

export type OpenAiContentPart = { type: 'text'; text: string } | { type: 'image_url'; image_url: { url: string } };

export interface OpenAiToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export interface OpenAiMessage {
  role: 'system' | 'user' | 'assistant' | 'tool';
  content: string | OpenAiContentPart[] | null;
  tool_calls?: OpenAiToolCall[];
  tool_call_id?: string;
}

export interface OpenAiChatRequest {
  model: string;
  messages: OpenAiMessage[];
  stream: boolean;
  stream_options?: { include_usage: boolean };
  temperature?: number;
  top_p?: number;
  max_tokens?: number;
  stop?: string | string[];
  seed?: number;
  presence_penalty?: number;
  frequency_penalty?: number;
  response_format?: { type: 'json_object' } | { type: 'json_schema'; json_schema: { name: string; schema: Record<string, unknown>; strict?: boolean } };
  tools?: unknown[];
  /** vLLM extensions (also accepted by llama.cpp's server). */
  top_k?: number;
  min_p?: number;
  repetition_penalty?: number;
}

export interface OpenAiCompletionRequest extends Omit<OpenAiChatRequest, 'messages' | 'tools'> {
  prompt: string;
}

export interface OpenAiUsage {
  prompt_tokens?: number;
  completion_tokens?: number;
  total_tokens?: number;
}

interface ToolCallDelta {
  index?: number;
  id?: string;
  type?: string;
  function?: { name?: string; arguments?: string };
}

export interface OpenAiChatChunk {
  id?: string;
  object?: string;
  created?: number;
  model?: string;
  choices?: Array<{
    index?: number;
    delta?: { role?: string; content?: string | null; reasoning_content?: string | null; reasoning?: string | null; tool_calls?: ToolCallDelta[] };
    /** /v1/completions streams `text` instead of a delta. */
    text?: string;
    finish_reason?: string | null;
  }>;
  usage?: OpenAiUsage | null;
}

export interface OpenAiChatCompletion {
  id?: string;
  model?: string;
  created?: number;
  choices?: Array<{
    index?: number;
    message?: { role?: string; content?: string | null; reasoning_content?: string | null; reasoning?: string | null; tool_calls?: OpenAiToolCall[] };
    text?: string;
    finish_reason?: string | null;
  }>;
  usage?: OpenAiUsage | null;
}

export interface OpenAiEmbeddingRequest {
  model: string;
  input: string | string[];
  encoding_format: 'float';
}

export interface OpenAiEmbeddingResponse {
  model?: string;
  data?: Array<{ index?: number; embedding?: number[] }>;
  usage?: OpenAiUsage | null;
}

export interface OpenAiModel {
  id: string;
  object?: string;
  created?: number;
  owned_by?: string;
  /** vLLM: the context window. */
  max_model_len?: number;
}

export interface Mapped<T> {
  body: T;
  /** Ollama fields or options that have no OpenAI equivalent and were left out. */
  dropped: string[];
}

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

type Sampling = Pick<
  OpenAiChatRequest,
  'temperature' | 'top_p' | 'top_k' | 'min_p' | 'max_tokens' | 'stop' | 'seed' | 'presence_penalty' | 'frequency_penalty' | 'repetition_penalty'
>;

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** Ollama `options` → OpenAI sampling fields. */
export function mapOptions(options: Record<string, unknown> = {}): Mapped<Sampling> {
  const body: Sampling = {};
  const dropped: string[] = [];
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined || value === null) continue;
    switch (key) {
      case 'temperature':
      case 'top_p':
      case 'min_p':
      case 'seed':
      case 'presence_penalty':
      case 'frequency_penalty':
        if (num(value) !== undefined) body[key] = num(value);
        else dropped.push(key);
        break;
      case 'top_k':
        // Ollama's 0 and vLLM's -1 both mean "off"; leave it out rather than guess the server's.
        if (num(value) !== undefined && (value as number) > 0) body.top_k = Math.round(value as number);
        break;
      case 'repeat_penalty':
        if (num(value) !== undefined) body.repetition_penalty = value as number;
        break;
      case 'num_predict':
        // Ollama: -1 = unbounded, -2 = fill the context; OpenAI: leave max_tokens out.
        if (num(value) !== undefined && (value as number) > 0) body.max_tokens = Math.round(value as number);
        break;
      case 'stop':
        if (typeof value === 'string' || (Array.isArray(value) && value.every((s) => typeof s === 'string'))) body.stop = value;
        else dropped.push(key);
        break;
      default:
        // runner options (num_ctx, num_gpu, ...) and samplers OpenAI servers lack (mirostat, tfs_z, ...)
        dropped.push(key);
    }
  }
  return { body, dropped };
}

/** Ollama `format` → OpenAI `response_format`. */
export function mapFormat(format: OllamaChatRequest['format']): OpenAiChatRequest['response_format'] | undefined {
  if (format === undefined) return undefined;
  if (format === 'json') return { type: 'json_object' };
  return { type: 'json_schema', json_schema: { name: 'response', schema: format, strict: true } };
}

/** A base64 image's media type from its first bytes (what Ollama accepts: PNG, JPEG, GIF, WebP). */
export function imageDataUrl(b64: string): string {
  if (/^data:/.test(b64)) return b64;
  const mime = b64.startsWith('iVBOR') ? 'image/png' : b64.startsWith('R0lGOD') ? 'image/gif' : b64.startsWith('UklGR') ? 'image/webp' : 'image/jpeg';
  return `data:${mime};base64,${b64}`;
}

function toolArguments(args: unknown): string {
  return typeof args === 'string' ? args : JSON.stringify(args ?? {});
}

/**
 * Ollama messages → OpenAI messages. Ollama's tool results carry the tool's name, OpenAI's the call
 * id: each assistant tool call gets an id `call_<n>`, and a tool message takes the id of the
 * earliest unanswered call of that name (else of the earliest unanswered call).
 */
export function mapMessages(messages: OllamaMessage[]): OpenAiMessage[] {
  const out: OpenAiMessage[] = [];
  const open: Array<{ id: string; name: string }> = [];
  let n = 0;
  for (const m of messages) {
    if (m.role === 'assistant' && m.tool_calls?.length) {
      const tool_calls = m.tool_calls.map((raw) => {
        const fn = (raw as { function?: { name?: string; arguments?: unknown } }).function ?? {};
        const id = (raw as { id?: unknown }).id;
        const call: OpenAiToolCall = {
          id: typeof id === 'string' && id ? id : `call_${n++}`,
          type: 'function',
          function: { name: String(fn.name ?? ''), arguments: toolArguments(fn.arguments) },
        };
        open.push({ id: call.id, name: call.function.name });
        return call;
      });
      out.push({ role: 'assistant', content: m.content || null, tool_calls });
      continue;
    }
    if (m.role === 'tool') {
      let i = open.findIndex((c) => c.name === m.tool_name);
      if (i < 0) i = 0;
      const call = open.splice(i, 1)[0];
      out.push({ role: 'tool', content: m.content, tool_call_id: call?.id ?? `call_${n++}` });
      continue;
    }
    if (m.images?.length) {
      const parts: OpenAiContentPart[] = [];
      if (m.content) parts.push({ type: 'text', text: m.content });
      for (const img of m.images) parts.push({ type: 'image_url', image_url: { url: imageDataUrl(img) } });
      out.push({ role: m.role, content: parts });
      continue;
    }
    out.push({ role: m.role, content: m.content });
  }
  return out;
}

function droppedFields(req: { keep_alive?: unknown; think?: unknown }): string[] {
  const d: string[] = [];
  if (req.keep_alive !== undefined) d.push('keep_alive');
  if (req.think !== undefined) d.push('think');
  return d;
}

export function toOpenAiChatRequest(req: OllamaChatRequest, stream: boolean): Mapped<OpenAiChatRequest> {
  const opts = mapOptions(req.options);
  const body: OpenAiChatRequest = {
    model: req.model,
    messages: mapMessages(req.messages),
    stream,
    ...(stream ? { stream_options: { include_usage: true } } : {}),
    ...opts.body,
  };
  const response_format = mapFormat(req.format);
  if (response_format) body.response_format = response_format;
  if (req.tools?.length) body.tools = req.tools;
  return { body, dropped: [...opts.dropped, ...droppedFields(req)] };
}

/** Ollama generate (templated) → a chat: the system prompt, then the prompt as the user's message. */
export function generateToChat(req: OllamaGenerateRequest): OllamaChatRequest {
  const messages: OllamaMessage[] = [];
  if (req.system) messages.push({ role: 'system', content: req.system });
  messages.push({ role: 'user', content: req.prompt, ...(req.images?.length ? { images: req.images } : {}) });
  return { model: req.model, messages, format: req.format, options: req.options, keep_alive: req.keep_alive, think: req.think };
}

/** Ollama generate with `raw: true` (no template) → /v1/completions. */
export function toOpenAiCompletionRequest(req: OllamaGenerateRequest, stream: boolean): Mapped<OpenAiCompletionRequest> {
  const opts = mapOptions(req.options);
  const body: OpenAiCompletionRequest = {
    model: req.model,
    prompt: req.prompt,
    stream,
    ...(stream ? { stream_options: { include_usage: true } } : {}),
    ...opts.body,
  };
  const response_format = mapFormat(req.format);
  if (response_format) body.response_format = response_format;
  const dropped = [...opts.dropped, ...droppedFields(req)];
  if (req.images?.length) dropped.push('images');
  return { body, dropped };
}

export function toOpenAiEmbeddingRequest(req: OllamaEmbedRequest): Mapped<OpenAiEmbeddingRequest> {
  const dropped = droppedFields(req);
  if (req.truncate !== undefined) dropped.push('truncate');
  if (req.options) dropped.push(...Object.keys(req.options));
  return { body: { model: req.model, input: req.input, encoding_format: 'float' }, dropped };
}

// ---------------------------------------------------------------------------------------------
// Answers
// ---------------------------------------------------------------------------------------------

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
