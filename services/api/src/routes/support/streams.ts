/**
 * Writing streamed answers: headers once an upstream took the request (nginx and Cloudflare must
 * not buffer them: `X-Accel-Buffering: no`), every chunk written as it comes, with back-pressure,
 * and an error after the headers written as the stream's last frame in the surface's own framing.
 */
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import type { Response } from 'express';
import type { ProxyResponse } from '../../clients/ollama.types';
import { errorBody, toAppError } from '../../middleware/error-handler';
import { ndjsonFrame } from '../../wire/ndjson';

export const NDJSON = 'application/x-ndjson; charset=utf-8';
export const SSE = 'text/event-stream; charset=utf-8';

function startStream(res: Response, contentType: string): void {
  res.status(200);
  res.setHeader('Content-Type', contentType);
  res.setHeader('Cache-Control', 'no-cache, no-transform');
  res.setHeader('X-Accel-Buffering', 'no');
  res.flushHeaders();
  res.socket?.setNoDelay(true);
}

export function writeLine(res: Response, obj: unknown): void {
  if (!res.writableEnded && !res.destroyed) res.write(ndjsonFrame(obj));
}

/** Ends a started stream with an error frame; the access line gets `streamError: code`. */
export function endWithError(res: Response, code: string, frame: string): void {
  if (!res.writableEnded && !res.destroyed) res.write(frame);
  res.locals.log = { ...res.locals.log, streamError: code };
  res.end();
}

/** Our own NDJSON streams (/v1, /admin) end with the common error body as their last line. */
export function endWithErrorLine(res: Response, err: unknown, requestId: string): void {
  const appErr = toAppError(err);
  endWithError(res, appErr.code, ndjsonFrame(errorBody(appErr, requestId)));
}

/**
 * How long a stream's headers wait for an upstream to take the request. Until then a failure is a
 * real status (503 + Retry-After when nobody is reachable); after it the headers go out anyway, so
 * a caller behind Cloudflare, which gives up after 100 s without a byte, keeps waiting in the queue.
 */
export const HOLD_HEADERS_MS = 30_000;

/**
 * Runs a stream whose headers go out when `run` calls `start()` (an upstream took the request),
 * after HOLD_HEADERS_MS, or when `run` returns. A failure before the headers is thrown (the error
 * handler answers it with its status); after them `onError` writes the stream's last frame,
 * starting on a fresh line after whatever `run` wrote. A caller that left just gets the end.
 */
export async function runLazyStream(
  res: Response,
  contentType: string,
  signal: AbortSignal,
  run: (start: () => void, progress: Pumped) => Promise<void>,
  onError: (err: unknown, lastByte: number | undefined) => void,
): Promise<void> {
  const progress: Pumped = { tail: '' };
  const start = () => {
    if (!res.headersSent) startStream(res, contentType);
  };
  const hold = setTimeout(start, HOLD_HEADERS_MS);
  try {
    await run(start, progress);
    start();
    if (!res.writableEnded) res.end();
  } catch (err) {
    if (signal.aborted) {
      res.end();
      return;
    }
    if (!res.headersSent) throw err;
    onError(err, progress.lastByte);
  } finally {
    clearTimeout(hold);
  }
}

/** A stream whose headers go out now (admin progress streams). */
export function runStream(
  res: Response,
  contentType: string,
  signal: AbortSignal,
  run: (progress: Pumped) => Promise<void>,
  onError: (err: unknown, lastByte: number | undefined) => void,
): Promise<void> {
  return runLazyStream(
    res,
    contentType,
    signal,
    (start, progress) => {
      start();
      return run(progress);
    },
    onError,
  );
}

export interface Pumped {
  /** The last byte written (so an error frame can start on a fresh line). */
  lastByte?: number;
  /** The last few KB of the stream as text (where the final NDJSON line / usage event is). */
  tail: string;
}

const TAIL_BYTES = 4096;

/**
 * Copies `src` into `res` chunk by chunk (no buffering). Rejects with the source's error. Stops
 * early, destroying the source (which frees the upstream request), when the caller went away.
 * `progress.lastByte` and `progress.tail` are kept up to date as chunks pass.
 */
export async function pump(src: Readable, res: Response, progress: Pumped = { tail: '' }): Promise<Pumped> {
  const gone = () => src.destroy();
  res.once('close', gone);
  try {
    for await (const chunk of src) {
      if (res.destroyed || res.writableEnded) break;
      const buf: Buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
      if (buf.length === 0) continue;
      progress.lastByte = buf[buf.length - 1];
      progress.tail = (progress.tail + buf.toString('utf8')).slice(-TAIL_BYTES);
      if (!res.write(buf)) await Promise.race([once(res, 'drain'), once(res, 'close')]);
    }
  } catch (err) {
    // The caller left: nobody to tell, and not a failure of ours (the upstream is already aborted).
    if (res.destroyed) return progress;
    throw err;
  } finally {
    res.off('close', gone);
    if (res.destroyed && !src.destroyed) src.destroy();
  }
  return progress;
}

/** A non-streamed upstream answer (or an upstream error) with its status and content type. */
export async function sendUpstream(res: Response, up: ProxyResponse): Promise<void> {
  res.status(up.status);
  if (up.headers['content-type']) res.setHeader('Content-Type', up.headers['content-type']);
  if (up.headers.allow) res.setHeader('Allow', up.headers.allow);
  await pump(up.body, res);
  res.end();
}
