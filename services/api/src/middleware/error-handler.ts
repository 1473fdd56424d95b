/**
 * The one error handler. AppErrors go out as `{"error":{"code","message","hint"?,"requestId",...}}`
 * with their status (and Retry-After); body-parser failures become 400/413; anything unknown is
 * logged with its stack and answered 500 INTERNAL without it. A known 5xx gets no line of its own:
 * its access line says it (level warn, errorCode), so a flood of refusals is formatted once each.
 * An NDJSON stream that already started gets a final error line instead; any other started
 * response is ended.
 */
import type { NextFunction, Request, Response } from 'express';
import { AppError, NotFoundError, PayloadTooLargeError, ValidationError } from '../errors';
import { ndjsonFrame } from '../wire/ndjson';

interface BodyParserError extends Error {
  type?: string;
  status?: number;
  limit?: number;
}

function humanBytes(n?: number): string {
  if (!n) return 'the limit';
  return n >= 1024 * 1024 ? `${Math.round(n / 1024 / 1024)} MB` : `${Math.round(n / 1024)} KB`;
}

/** Turns anything thrown into an AppError; unknown errors become INTERNAL (500). */
export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const e = err as BodyParserError;
  switch (e?.type) {
    case 'entity.too.large':
      return new PayloadTooLargeError(humanBytes(e.limit));
    case 'entity.parse.failed':
      return new ValidationError('The request body is not valid JSON', [{ field: 'body', message: 'is not valid JSON' }]);
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new ValidationError('Unsupported body encoding or charset', [{ field: 'body', message: e.message }]);
    case 'request.aborted':
      return new AppError('CLIENT_CLOSED_REQUEST', 499, 'The client closed the request');
    default:
      return new AppError('INTERNAL', 500, 'Internal server error', { cause: err });
  }
}

export function errorBody(err: AppError, requestId: string): { error: Record<string, unknown> } {
  return {
    error: {
      code: err.code,
      message: err.message,
      ...(err.hint ? { hint: err.hint } : {}),
      ...(err.retryAfterS !== undefined ? { retryAfter: err.retryAfterS } : {}),
      ...err.details,
      requestId,
    },
  };
}

export function notFoundHandler(req: Request, _res: Response, next: NextFunction): void {
  next(new NotFoundError(`No route for ${req.method} ${req.path}`, { hint: 'See README.md for the routes.' }));
}

export function errorHandler(err: unknown, req: Request, res: Response, _next: NextFunction): void {
  const appErr = toAppError(err);
  const log = req.log;
  // Other 5xx answers are told once, by their access line (level warn, with errorCode).
  if (appErr.code === 'INTERNAL') log?.error('unhandled error', { err });
  res.locals.log = { ...res.locals.log, errorCode: appErr.code };

  if (res.headersSent) {
    if (String(res.getHeader('Content-Type') ?? '').includes('ndjson') && !res.writableEnded) {
      res.write(ndjsonFrame(errorBody(appErr, req.id)));
    }
    res.end();
    return;
  }
  if (appErr.retryAfterS !== undefined) res.setHeader('Retry-After', String(appErr.retryAfterS));
  if (appErr.status === 499) {
    res.status(499).end();
    return;
  }
  res.status(appErr.status).json(errorBody(appErr, req.id));
}
