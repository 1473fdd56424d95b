/** Streaming NDJSON responses: headers at once, one line per chunk, flushed, never buffered. */
import type { Response } from 'express';
import { errorBody, toAppError } from './error-handler';

export function startNdjson(res: Response): void {
  res.status(200);
  res.setHeader('Content-Type', 'application/x-ndjson; charset=utf-8');
  res.setHeader('Cache-Control', 'no-cache, no-transform');
  res.setHeader('X-Accel-Buffering', 'no');
  res.flushHeaders();
  res.socket?.setNoDelay(true);
}

export function writeLine(res: Response, obj: unknown): void {
  if (!res.writableEnded && !res.destroyed) res.write(`${JSON.stringify(obj)}\n`);
}

/** After headers were sent, an error becomes the stream's last line. */
export function endWithError(res: Response, err: unknown, requestId: string): void {
  const appErr = toAppError(err);
  writeLine(res, errorBody(appErr, requestId));
  res.locals.log = { ...res.locals.log, streamError: appErr.code };
  res.end();
}

/**
 * Runs the body of a response whose headers are already out. A caller that left just gets the
 * connection ended; any other failure is handed to `onError`, which writes the stream's last line.
 */
export async function guardStream(res: Response, signal: AbortSignal, run: () => Promise<void>, onError: (err: unknown) => void): Promise<void> {
  try {
    await run();
    if (!res.writableEnded) res.end();
  } catch (err) {
    if (signal.aborted) {
      res.end();
      return;
    }
    onError(err);
  }
}
