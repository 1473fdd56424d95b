/**
 * OpenAI wire types (only the fields the gateway reads or writes), shared by the request and
 * response mapping (openai-request.mapping.ts, openai-response.mapping.ts) and the OpenAI client.
 */
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
