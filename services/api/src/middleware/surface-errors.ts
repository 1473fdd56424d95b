/**
 * Error shapes of the standard client surfaces. Our errors keep their status and code; only the
 * body changes, so the official SDKs raise their own error types with our message:
 * - /ollama:     `{"error":"<message>"}` (ollama-js `ResponseError` reads `.error` when the
 *                content type is JSON); an unknown model reads `model 'x' not found`, as in Ollama.
 * - /openai/v1:  `{"error":{"message","type","param":null,"code":"<OUR_CODE>"}}` (openai-node picks
 *                the class from the status: 400 BadRequestError, 404 NotFoundError, 429
 *                RateLimitError, 5xx InternalServerError; `err.code` is our code).
 *
 * `errorShape(format)` is mounted on the surface's prefix before auth, so every error written there
 * with the common `{error:{code,message}}` body — by auth (401), the rate limit (429), the body
 * parser and the global error handler (everything our routes throw) — goes out in that shape.
 * The global handler stays the one place that logs and sets status and Retry-After.
 */
import type { RequestHandler } from 'express';
import { toAppError } from './error-handler';

export interface SurfaceError {
  status: number;
  code: string;
  message: string;
  model?: string;
}

export type ErrorFormat = (e: SurfaceError) => unknown;

export function ollamaErrorBody(e: SurfaceError): { error: string } {
  if (e.code === 'MODEL_NOT_FOUND' && e.model) return { error: `model '${e.model}' not found` };
  return { error: e.message };
}

function openaiType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 429) return 'rate_limit_error';
  if (status >= 400 && status < 500) return 'invalid_request_error';
  return 'api_error';
}

export function openaiErrorBody(e: SurfaceError): { error: { message: string; type: string; param: null; code: string } } {
  return { error: { message: e.message, type: openaiType(e.status), param: null, code: e.code } };
}

/** The surface's error body for anything thrown (for errors written inside a started stream). */
export function surfaceError(err: unknown): SurfaceError {
  const e = toAppError(err);
  const model = typeof e.details?.model === 'string' ? e.details.model : undefined;
  return { status: e.status, code: e.code, message: e.message, ...(model ? { model } : {}) };
}

function isCommonErrorBody(body: unknown): body is { error: { code: string; message: string; model?: unknown } } {
  if (!body || typeof body !== 'object') return false;
  const err = (body as { error?: unknown }).error;
  return Boolean(
    err && typeof err === 'object' && typeof (err as { code?: unknown }).code === 'string' && typeof (err as { message?: unknown }).message === 'string',
  );
}

export function errorShape(format: ErrorFormat): RequestHandler {
  return (_req, res, next) => {
    const json = res.json.bind(res);
    res.json = ((body: unknown) => {
      if (res.statusCode < 400 || !isCommonErrorBody(body)) return json(body);
      const { code, message, model } = body.error;
      return json(format({ status: res.statusCode, code, message, ...(typeof model === 'string' ? { model } : {}) }));
    }) as typeof res.json;
    next();
  };
}
