/**
 * Pure request mapping from Ollama's wire shapes (what the gateway's services speak) to the OpenAI
 * API (what vLLM, llama.cpp's server, LM Studio and llm-d/KServe gateways speak): Ollama
 * chat/generate/embed → OpenAI chat completions / completions / embeddings; options → sampling
 * fields (top_k, min_p and repetition_penalty are vLLM extensions that llama.cpp's server accepts
 * too); runner-only options (num_ctx, keep_alive, ...) are dropped and listed. No I/O.
 */
import type { OllamaChatRequest, OllamaEmbedRequest, OllamaGenerateRequest, OllamaMessage } from './ollama.types';
import type {
  Mapped,
  OpenAiChatRequest,
  OpenAiCompletionRequest,
  OpenAiContentPart,
  OpenAiEmbeddingRequest,
  OpenAiMessage,
  OpenAiToolCall,
} from './openai.types';

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
