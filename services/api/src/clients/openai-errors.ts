/**
 * An OpenAI-compatible upstream's failures in our error model: its error answers (status + an
 * OpenAI-style error body) and transport failures (no usable HTTP answer). Used by the OpenAI
 * client only.
 */
import type { AxiosError } from 'axios';
import { AppError, ClientClosedError, ModelNotFoundError, OllamaUnavailableError, QueueFullError, UpstreamError } from '../errors';

const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNECTTIMEOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ERR_NETWORK']);

/** `{"error":{"message","type","param","code"}}` (OpenAI, vLLM), `{"error":"text"}`, `{"message"}` or text. */
export function openAiErrorText(body: string): { message: string; code?: string; type?: string } {
  try {
    const p = JSON.parse(body) as { error?: unknown; message?: unknown; object?: unknown; code?: unknown; type?: unknown };
    if (typeof p.error === 'string') return { message: p.error };
    if (p.error && typeof p.error === 'object') {
      const e = p.error as { message?: unknown; code?: unknown; type?: unknown };
      return {
        message: textOf(e.message) ?? '',
        code: textOf(e.code),
        type: typeof e.type === 'string' ? e.type : undefined,
      };
    }
    if (typeof p.message === 'string') return { message: p.message, code: textOf(p.code), type: typeof p.type === 'string' ? p.type : undefined };
  } catch {
    /* not JSON: use the text */
  }
  return { message: body.trim().slice(0, 500) };
}

/** Maps one OpenAI-style error answer to our error model. Exported for tests. */
export function mapOpenAiError(status: number, body: string, upstream: string, model?: string, retryAfterHeader?: string): AppError {
  const e = openAiErrorText(body);
  const msg = e.message || `HTTP ${status}`;
  const details = { upstream, upstreamStatus: status };
  const retryAfter = Number(retryAfterHeader);
  const retryAfterS = Number.isFinite(retryAfter) && retryAfter > 0 ? Math.ceil(retryAfter) : undefined;
  if (status === 404 && model && (e.code === 'model_not_found' || /model/i.test(msg))) {
    return new ModelNotFoundError(model, {
      details,
      hint: `The upstream '${upstream}' does not serve it: check its model list (GET /v1/models there) or UPSTREAMS[].models.`,
    });
  }
  if (status === 401 || status === 403) {
    return new UpstreamError(`The upstream '${upstream}' refused our credentials (${status})`, {
      details,
      hint: `Check the apiKey of '${upstream}' in UPSTREAMS.`,
    });
  }
  if (status === 404)
    return new UpstreamError(`The upstream '${upstream}' answered 404: ${msg}`, {
      details,
      hint: `Check the url of '${upstream}' in UPSTREAMS (without /v1).`,
    });
  if (status === 429) return new QueueFullError(`The upstream '${upstream}' is busy (429)`, retryAfterS ?? 5, { details });
  if (status === 408 || status === 504)
    return new AppError('UPSTREAM_TIMEOUT', 504, `The upstream '${upstream}' timed out (${status})${model ? ` for '${model}'` : ''}`, { details });
  if (status === 499) return new ClientClosedError();
  if (status >= 400 && status < 500) return new AppError('UPSTREAM_REJECTED', 400, `The upstream '${upstream}' rejected the request: ${msg}`, { details });
  if (status === 503)
    return new OllamaUnavailableError(`The upstream '${upstream}' is unavailable (503): ${msg}`, { details, ...(retryAfterS ? { retryAfterS } : {}) });
  return new UpstreamError(`The upstream '${upstream}' failed (${status}): ${msg}`, { details, hint: `See the logs of '${upstream}'.` });
}

export function upstreamTimeout(upstream: string, model: string | undefined, timeoutS: number, cause?: unknown): AppError {
  return new AppError('UPSTREAM_TIMEOUT', 504, `The upstream '${upstream}' did not answer${model ? ` for '${model}'` : ''} within ${timeoutS} s`, {
    hint: `The model may be loading or '${upstream}' overloaded. Raise its timeouts in UPSTREAMS, or retry with "async": true.`,
    details: { upstream },
    cause,
  });
}

export function mapTransportError(err: unknown, upstream: string, model: string | undefined, timeoutS: number): AppError {
  if (err instanceof AppError) return err;
  const code = (err as AxiosError)?.code ?? (err as NodeJS.ErrnoException)?.code;
  if (code === 'ECONNABORTED' || code === 'ETIMEDOUT') return upstreamTimeout(upstream, model, timeoutS, err);
  if (code && CONNECTION_CODES.has(code)) {
    return new OllamaUnavailableError(`The upstream '${upstream}' is not reachable (${code})`, {
      cause: err,
      details: { upstream },
      hint: `Check that '${upstream}' is running and reachable from the api container. Callers should fall back to another provider now.`,
    });
  }
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'ERR_STREAM_PREMATURE_CLOSE') {
    return new UpstreamError(`The upstream '${upstream}' closed the connection unexpectedly`, { cause: err, details: { upstream } });
  }
  return new UpstreamError(`Unexpected failure talking to the upstream '${upstream}'`, { cause: err, details: { upstream } });
}

/** A field of an upstream error body as text: strings as they are, numbers and objects as JSON. */
function textOf(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  return typeof v === 'string' ? v : JSON.stringify(v);
}
