/**
 * Writing Ollama's answers through unchanged: headers at once for streams (nginx and Cloudflare
 * must not buffer them: `X-Accel-Buffering: no`), every chunk written as it arrives, with
 * back-pressure, and the framing (NDJSON lines, SSE events) kept intact when an error ends a stream.
 */
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import type { Response } from 'express';
import type { ProxyResponse } from '../clients/ollama.types';

export function startStream(res: Response, contentType: string): void {
  res.status(200);
  res.setHeader('Content-Type', contentType);
  res.setHeader('Cache-Control', 'no-cache, no-transform');
  res.setHeader('X-Accel-Buffering', 'no');
  res.flushHeaders();
  res.socket?.setNoDelay(true);
}

/**
 * Copies `src` into `res` chunk by chunk (no buffering). Resolves with the last byte written
 * (so an error frame can start on a fresh line); rejects with the source's error. Stops early,
 * destroying the source (which frees the upstream request), when the caller went away.
 */
export async function pump(src: Readable, res: Response): Promise<number | undefined> {
  let lastByte: number | undefined;
  const gone = () => src.destroy();
  res.once('close', gone);
  try {
    for await (const chunk of src) {
      if (res.destroyed || res.writableEnded) break;
      const buf: Buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
      if (buf.length === 0) continue;
      lastByte = buf[buf.length - 1];
      if (!res.write(buf)) await Promise.race([once(res, 'drain'), once(res, 'close')]);
    }
  } catch (err) {
    // The caller left: nobody to tell, and not a failure of ours (the upstream is already aborted).
    if (res.destroyed) return lastByte;
    throw err;
  } finally {
    res.off('close', gone);
    if (res.destroyed && !src.destroyed) src.destroy();
  }
  return lastByte;
}

/** A non-streamed upstream answer (or an upstream error) with its status and content type. */
export async function sendUpstream(res: Response, up: ProxyResponse): Promise<void> {
  res.status(up.status);
  if (up.headers['content-type']) res.setHeader('Content-Type', up.headers['content-type']);
  if (up.headers.allow) res.setHeader('Allow', up.headers.allow);
  await pump(up.body, res);
  res.end();
}

export const NEWLINE = 0x0a;
