/**
 * Writing Ollama's answers through unchanged: headers at once for streams (nginx and Cloudflare
 * must not buffer them: `X-Accel-Buffering: no`), every chunk written as it arrives, with
 * back-pressure, and the framing (NDJSON lines, SSE events) kept intact when an error ends a stream.
 */
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import type { Response } from 'express';
import type { ProxyResponse } from '../clients/ollama.types';
import type { Admission } from '../services/generation.service';
import type { Slot } from '../services/gpu-queue';
import { readText, type PassthroughService, type UpstreamCall } from '../services/passthrough.service';

export function startStream(res: Response, contentType: string): void {
  res.status(200);
  res.setHeader('Content-Type', contentType);
  res.setHeader('Cache-Control', 'no-cache, no-transform');
  res.setHeader('X-Accel-Buffering', 'no');
  res.flushHeaders();
  res.socket?.setNoDelay(true);
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
      const buf: Buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
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

/** The final chunk (NDJSON) or usage event (SSE) at the tail of a streamed answer (best effort). */
export function lastObjectWithUsage(tail: string): Record<string, unknown> | undefined {
  const lines = tail.split('\n').map((l) => l.trim()).filter(Boolean).reverse();
  for (const line of lines) {
    const json = line.startsWith('data:') ? line.slice(5).trim() : line;
    if (!json.startsWith('{')) continue;
    try {
      const o = JSON.parse(json) as Record<string, unknown>;
      if (typeof o.eval_count === 'number' || (o.usage && typeof o.usage === 'object')) return o;
    } catch {
      /* a partial line at the start of the tail */
    }
  }
  return undefined;
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

/**
 * The body of an admitted, started stream: waits for the GPU slot inside it, pipes Ollama's answer
 * through, logs its usage; an upstream error status is handed to `onUpstreamError` in the
 * surface's own framing.
 */
export async function relay(
  res: Response,
  svc: PassthroughService,
  admission: Admission,
  call: UpstreamCall,
  signal: AbortSignal,
  onSlot: (slot: Slot) => void,
  progress: Pumped,
  onUpstreamError: (text: string, status: number) => void,
): Promise<void> {
  const up = await svc.inference(admission, call, signal, onSlot);
  if (up.status >= 400) {
    const text = await readText(up.body);
    res.locals.log = { ...res.locals.log, upstreamStatus: up.status };
    onUpstreamError(text, up.status);
    return;
  }
  await pump(up.body, res, progress);
  res.locals.log = { ...res.locals.log, ...svc.account(admission.model, lastObjectWithUsage(progress.tail)) };
}

/**
 * Answers a non-streamed call whose upstream stream was collected here: the collected body with
 * its usage logged, or the error the stream ended with (500, in the surface's `error` field).
 */
export function sendCollected(
  res: Response,
  svc: PassthroughService,
  model: string,
  r: { ok: true; value: Record<string, unknown> } | { ok: false; error: unknown },
): void {
  if (!r.ok) {
    res.locals.log = { ...res.locals.log, upstreamError: true };
    res.status(500).json({ error: r.error });
    return;
  }
  res.locals.log = { ...res.locals.log, ...svc.account(model, r.value) };
  res.json(r.value);
}
