/** Ollama's wire types (see docs/ollama-contract.md). Only the fields the gateway reads. */
import type { Readable } from 'node:stream';

export interface OllamaModelDetails {
  parent_model?: string;
  format?: string;
  family?: string;
  families?: string[] | null;
  parameter_size?: string;
  quantization_level?: string;
}

export interface OllamaTag {
  name: string;
  model: string;
  modified_at: string;
  size: number;
  digest: string;
  details: OllamaModelDetails;
  capabilities?: string[];
}

export interface OllamaRunningModel {
  name: string;
  model: string;
  size: number;
  digest: string;
  details: OllamaModelDetails;
  expires_at: string;
  size_vram: number;
  context_length?: number;
}

export interface OllamaMetrics {
  total_duration?: number;
  load_duration?: number;
  prompt_eval_count?: number;
  prompt_eval_duration?: number;
  eval_count?: number;
  eval_duration?: number;
}

export interface OllamaMessage {
  role: 'system' | 'user' | 'assistant' | 'tool';
  content: string;
  images?: string[];
  thinking?: string;
  tool_calls?: unknown[];
  tool_name?: string;
}

export interface OllamaGenerateRequest {
  model: string;
  prompt: string;
  system?: string;
  images?: string[];
  format?: 'json' | Record<string, unknown>;
  options?: Record<string, unknown>;
  keep_alive?: string | number;
  think?: boolean | string;
  raw?: boolean;
}

export interface OllamaChatRequest {
  model: string;
  messages: OllamaMessage[];
  format?: 'json' | Record<string, unknown>;
  options?: Record<string, unknown>;
  keep_alive?: string | number;
  tools?: unknown[];
  think?: boolean | string;
}

export interface OllamaGenerateChunk extends OllamaMetrics {
  model: string;
  created_at: string;
  response: string;
  thinking?: string;
  done: boolean;
  done_reason?: string;
}

export interface OllamaChatChunk extends OllamaMetrics {
  model: string;
  created_at: string;
  message: OllamaMessage;
  done: boolean;
  done_reason?: string;
}

export interface OllamaEmbedRequest {
  model: string;
  input: string | string[];
  truncate?: boolean;
  keep_alive?: string | number;
  options?: Record<string, unknown>;
}

export interface OllamaEmbedResponse {
  model: string;
  embeddings: number[][];
  total_duration?: number;
  load_duration?: number;
  prompt_eval_count?: number;
}

export interface OllamaPullProgress {
  status: string;
  digest?: string;
  total?: number;
  completed?: number;
}

export interface OllamaShowResponse {
  details?: OllamaModelDetails;
  capabilities?: string[];
  model_info?: Record<string, unknown>;
  parameters?: string;
  template?: string;
  modelfile?: string;
}

/** Per-call options: timeouts are on the wait for the next chunk, not on the whole generation. */
export interface StreamCallOptions {
  signal?: AbortSignal;
  /** Wait allowed for the first byte (includes a cold model load). */
  firstChunkTimeoutMs: number;
  /** Wait allowed between two chunks once streaming started. */
  idleTimeoutMs: number;
  /**
   * Called once the upstream has taken the request: for Ollama when the socket is connected (it
   * sends no header while it loads a model), for an OpenAI-compatible server when its status is a
   * success. A route commits its stream headers then, so "nobody reachable" is still a real status.
   */
  onAccepted?: () => void;
}

/** A raw call for the pass-through surfaces (/ollama, /openai/v1): no status mapping, body streamed. */
export interface ProxyRequest {
  method: 'GET' | 'HEAD' | 'POST' | 'DELETE';
  /** Ollama path with query, e.g. `/api/chat` or `/v1/models`. */
  path: string;
  /** A JSON value (sent as JSON) or a raw byte stream (sent as is, never retried). */
  body?: unknown;
  /** Only these headers reach Ollama (plus Content-Type for a JSON body): never the caller's. */
  headers?: Record<string, string>;
  /** For error messages (timeouts name the model). */
  model?: string;
  signal?: AbortSignal;
  /** Wait allowed for the response headers (includes a cold model load). */
  firstByteTimeoutMs: number;
  /** Wait allowed between two body chunks. */
  idleTimeoutMs: number;
  /** As StreamCallOptions.onAccepted. */
  onAccepted?: () => void;
}

export interface ProxyResponse {
  status: number;
  /** Response headers, lower-case names. */
  headers: Record<string, string>;
  /**
   * The body as it arrives. It fails with an AppError (UPSTREAM_TIMEOUT when Ollama goes silent,
   * CLIENT_CLOSED_REQUEST when the caller's signal fired, UPSTREAM_ERROR on a cut connection).
   * Destroying it aborts the upstream request.
   */
  body: Readable;
}

export interface OllamaClient {
  readonly baseUrl: string;
  /**
   * Raw pass-through call. Transport failures throw the same AppErrors as every other call
   * (OLLAMA_UNAVAILABLE at once on a refused connection, UPSTREAM_TIMEOUT past firstByteTimeoutMs);
   * any HTTP status, 4xx/5xx included, is returned as is.
   */
  proxy(req: ProxyRequest): Promise<ProxyResponse>;
  version(signal?: AbortSignal): Promise<string>;
  tags(signal?: AbortSignal): Promise<OllamaTag[]>;
  ps(signal?: AbortSignal): Promise<OllamaRunningModel[]>;
  show(model: string, signal?: AbortSignal): Promise<OllamaShowResponse>;
  generate(req: OllamaGenerateRequest, opts: StreamCallOptions): AsyncIterable<OllamaGenerateChunk>;
  chat(req: OllamaChatRequest, opts: StreamCallOptions): AsyncIterable<OllamaChatChunk>;
  embed(req: OllamaEmbedRequest, opts: StreamCallOptions): Promise<OllamaEmbedResponse>;
  pull(model: string, opts: StreamCallOptions): AsyncIterable<OllamaPullProgress>;
  deleteModel(model: string, signal?: AbortSignal): Promise<void>;
  /**
   * Load (keepAlive > 0 or -1) or unload (keepAlive 0) a model with an empty generate. Pass the same
   * runner options (num_ctx) as real calls, or the next real call reloads the model.
   */
  setLoaded(model: string, keepAlive: string | number, opts: StreamCallOptions, options?: Record<string, unknown>): Promise<void>;
}
