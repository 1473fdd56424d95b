/**
 * Ollama's native wire format: newline-delimited JSON, one object per line, the last one
 * `{"done": true, ...}` (or `{"status":"success"}` for model management); an error after the
 * status line is a line `{"error":"..."}`.
 */
import type { Readable } from 'node:stream';
import { UpstreamError } from '../errors';
import { errorFrame, scanLines } from './lines';

/** A collected stream: the object a stream:false caller gets, or the error line it ended with. */
export type CollectedStream<E = unknown> = { ok: true; value: Record<string, unknown> } | { ok: false; error: E };

/** One NDJSON line as an object; a line that is not JSON is Ollama's fault (502). */
export function parseNdjsonLine(line: string): Record<string, unknown> {
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch (err) {
    throw new UpstreamError('Ollama sent a malformed stream line', { cause: err });
  }
}

/** One object as an NDJSON line; after a partial line (`lastByte` not a newline) on a fresh one. */
export function ndjsonFrame(obj: unknown, lastByte?: number): string {
  return errorFrame(`${JSON.stringify(obj)}\n`, lastByte, '\n');
}

/**
 * Collects a streamed NDJSON answer into the object Ollama sends for stream:false: the last line
 * (done / success) with the text fields concatenated. The upstream call always streams, so a long
 * non-streamed generation is bounded by the gap between tokens, not by its whole length.
 */
export async function collectNdjson(kind: 'generate' | 'chat' | 'progress', body: Readable): Promise<CollectedStream<string>> {
  let response = '';
  let thinking = '';
  let content = '';
  const toolCalls: unknown[] = [];
  let last: Record<string, unknown> | undefined;
  const failed = await scanLines(body, (line): CollectedStream<string> | undefined => {
    if (!line.trim()) return undefined;
    const obj = parseNdjsonLine(line);
    if (typeof obj.error === 'string') return { ok: false, error: obj.error };
    if (kind === 'generate') {
      response += typeof obj.response === 'string' ? obj.response : '';
      thinking += typeof obj.thinking === 'string' ? obj.thinking : '';
    } else if (kind === 'chat') {
      const m = (obj.message ?? {}) as Record<string, unknown>;
      content += typeof m.content === 'string' ? m.content : '';
      thinking += typeof m.thinking === 'string' ? m.thinking : '';
      if (Array.isArray(m.tool_calls)) toolCalls.push(...(m.tool_calls as unknown[]));
    }
    last = obj;
    return undefined;
  });
  if (failed) return failed;
  const complete = kind === 'progress' ? last?.status === 'success' : last?.done === true;
  if (!last || !complete) throw new UpstreamError('Ollama ended the answer before it was complete');
  if (kind === 'generate') return { ok: true, value: { ...last, response, ...(thinking ? { thinking } : {}) } };
  if (kind === 'chat') {
    const message = {
      ...((last.message ?? {}) as Record<string, unknown>),
      role: 'assistant',
      content,
      ...(thinking ? { thinking } : {}),
      ...(toolCalls.length ? { tool_calls: toolCalls } : {}),
    };
    return { ok: true, value: { ...last, message } };
  }
  return { ok: true, value: last };
}

/** The final chunk (NDJSON) or usage event (SSE) at the tail of a streamed answer (best effort). */
export function lastObjectWithUsage(tail: string): Record<string, unknown> | undefined {
  const lines = tail
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .reverse();
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
