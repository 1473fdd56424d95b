/**
 * Ollama's failures in our error model: its error answers (status + `error` text) and transport
 * failures (no usable HTTP answer). Used by the Ollama client only.
 */
import axios, { type AxiosError } from 'axios';
import {
  AppError,
  ClientClosedError,
  InsufficientMemoryError,
  ModelNotFoundError,
  OllamaUnavailableError,
  QueueFullError,
  UpstreamError,
  UpstreamRejectedError,
  UpstreamTimeoutError,
} from '../errors';

const OOM_PATTERN =
  /out[ -]of[ -]memory|requires more system memory|unable to load full model|too large for system memory|cudaMalloc failed|failed to allocate|insufficient memory/i;
const LOAD_TIMEOUT_PATTERN = /timed out waiting for llama/i;
const QUEUE_FULL_PATTERN = /server busy|maximum pending requests/i;
const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNECTTIMEOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ERR_NETWORK']);

/** Maps one Ollama error (status + its `error` text) to our error model. Exported for tests. */
export function mapOllamaError(status: number, upstreamMessage: string, model?: string): AppError {
  const msg = upstreamMessage || `HTTP ${status}`;
  const details = { upstreamStatus: status };
  if (status === 404 && /not found/i.test(msg) && model) return new ModelNotFoundError(model, { details });
  if (status === 404) return new UpstreamError(`Ollama answered 404: ${msg}`, { details });
  if (QUEUE_FULL_PATTERN.test(msg) || status === 503) {
    return new QueueFullError("Ollama's own queue is full", 5, { details });
  }
  if (OOM_PATTERN.test(msg)) return new InsufficientMemoryError(msg, { details });
  if (LOAD_TIMEOUT_PATTERN.test(msg)) {
    return new UpstreamTimeoutError(model, 0, {
      details,
      hint: 'Ollama gave up loading the model (OLLAMA_LOAD_TIMEOUT). Check disk speed and free VRAM, or use a smaller model.',
    });
  }
  if (status === 499) return new ClientClosedError();
  if (status === 403) {
    return new UpstreamError('Ollama refused the request (403): its Host/Origin check', {
      details,
      hint: 'Set OLLAMA_ORIGINS on the Ollama side, or make sure no Origin header reaches it.',
    });
  }
  if (status >= 400 && status < 500) return new UpstreamRejectedError(msg, { details });
  return new UpstreamError(`Ollama failed: ${msg}`, {
    details,
    hint: /unexpectedly stopped|terminated/i.test(msg)
      ? 'The model runner crashed, often from lack of VRAM/RAM. Try a smaller model or NUM_CTX, or restart Ollama (POST /admin/ollama/restart).'
      : 'See the ollama logs (`make logs`) for details.',
  });
}

export function isAbort(err: unknown): boolean {
  return axios.isCancel(err) || (err instanceof Error && (err.name === 'AbortError' || err.name === 'CanceledError'));
}

/** Translates a transport failure (no usable HTTP answer) into our error model. */
export function mapTransportError(err: unknown, baseUrl: string, model: string | undefined, timeoutS: number): AppError {
  if (err instanceof AppError) return err;
  const code = (err as AxiosError)?.code ?? (err as NodeJS.ErrnoException)?.code;
  if (code === 'ECONNABORTED' || code === 'ETIMEDOUT') return new UpstreamTimeoutError(model, timeoutS, { cause: err });
  if (code && CONNECTION_CODES.has(code)) {
    return new OllamaUnavailableError(`Ollama is not reachable at ${baseUrl} (${code})`, { cause: err });
  }
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'ERR_STREAM_PREMATURE_CLOSE') {
    return new UpstreamError('Ollama closed the connection unexpectedly', { cause: err });
  }
  return new UpstreamError('Unexpected failure talking to Ollama', { cause: err });
}
