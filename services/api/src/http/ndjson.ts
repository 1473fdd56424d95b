/** Streaming NDJSON responses: headers at once, one line per chunk, flushed, never buffered. */
import type { Response } from 'express';
import { errorBody, toAppError } from './error-handler';
import { startStream } from './passthrough';

export function startNdjson(res: Response): void {
  startStream(res, 'application/x-ndjson; charset=utf-8');
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
