/**
 * The OpenAI wire format (Ollama's /v1 and the OpenAI-compatible upstreams): server-sent events
 * `data: {json}`, a blank line after each, `data: [DONE]` at the end; an error after the status line
 * is an event `data: {"error":…}`.
 */
import type { Readable } from 'node:stream';
import { UpstreamError } from '../errors';
import { errorFrame, scanLines, upstreamErrorText } from './lines';
import type { CollectedStream } from './ndjson';

/** One object as an SSE event; after a partial event (`lastByte` not a newline) on a fresh line. */
export function sseFrame(obj: unknown, lastByte?: number): string {
  return errorFrame(`data: ${JSON.stringify(obj)}\n\n`, lastByte, '\n\n');
}

/** Ollama's own /v1 error body when it is one, else its text in OpenAI's error shape. */
export function openaiUpstreamError(text: string, status: number): unknown {
  try {
    const parsed = JSON.parse(text) as { error?: unknown };
    if (parsed.error && typeof parsed.error === 'object') return parsed;
  } catch {
    /* not JSON */
  }
  const type = status === 404 ? 'not_found_error' : status === 400 ? 'invalid_request_error' : 'api_error';
  return { error: { message: upstreamErrorText(text, status), type, param: null, code: null } };
}

/**
 * Collects a streamed OpenAI chat completion (SSE `chat.completion.chunk` events, with
 * `stream_options.include_usage`) into the `chat.completion` object a stream:false caller expects.
 * Same reason as collectNdjson: the upstream wait is then bounded per token, not per answer.
 * An `{"error":…}` event is returned as is (OpenAI shape).
 */
export async function collectChatCompletion(body: Readable): Promise<CollectedStream> {
  let head: Record<string, unknown> | undefined;
  let content = '';
  let reasoning = '';
  let finishReason: unknown = null;
  let usage: unknown;
  let done = false;
  const toolCalls: Array<Record<string, unknown>> = [];
  const failed = await scanLines(body, (raw): CollectedStream | undefined => {
    const line = raw.trim();
    if (!line.startsWith('data:')) return undefined; // blank lines, comments, event names
    const data = line.slice(5).trim();
    if (data === '[DONE]') {
      done = true;
      return undefined;
    }
    let obj: Record<string, unknown>;
    try {
      obj = JSON.parse(data) as Record<string, unknown>;
    } catch (err) {
      throw new UpstreamError('Ollama sent a malformed stream event', { cause: err });
    }
    if (obj.error) return { ok: false, error: obj.error };
    head ??= obj;
    if (obj.usage) usage = obj.usage;
    for (const choice of (obj.choices as Array<Record<string, unknown>> | undefined) ?? []) {
      const delta = (choice.delta ?? {}) as Record<string, unknown>;
      if (typeof delta.content === 'string') content += delta.content;
      if (typeof delta.reasoning === 'string') reasoning += delta.reasoning;
      for (const tc of (delta.tool_calls as Array<Record<string, unknown>> | undefined) ?? []) mergeToolCall(toolCalls, tc);
      if (choice.finish_reason) finishReason = choice.finish_reason;
    }
    return undefined;
  });
  if (failed) return failed;
  if (!head || !done) throw new UpstreamError('Ollama ended the answer before it was complete');
  const calls = toolCalls.filter(Boolean).map(({ index: _index, ...tc }) => tc);
  const message = { role: 'assistant', content, ...(reasoning ? { reasoning } : {}), ...(calls.length ? { tool_calls: calls } : {}) };
  return {
    ok: true,
    value: {
      id: head.id,
      object: 'chat.completion',
      created: head.created,
      model: head.model,
      system_fingerprint: head.system_fingerprint,
      choices: [{ index: 0, message, finish_reason: finishReason }],
      ...(usage ? { usage } : {}),
    },
  };
}

/** A piece of a tool call's arguments (a string on the wire). */
function argumentsText(v: unknown): string {
  return v === undefined || v === null ? '' : typeof v === 'string' ? v : JSON.stringify(v);
}

/** A tool call arrives in pieces: the first names it, later ones add to its arguments. */
function mergeToolCall(toolCalls: Array<Record<string, unknown>>, tc: Record<string, unknown>): void {
  const i = typeof tc.index === 'number' ? tc.index : toolCalls.length;
  const prev = toolCalls[i];
  if (!prev) {
    toolCalls[i] = { ...tc };
    return;
  }
  const fn = (prev.function ?? {}) as Record<string, unknown>;
  const more = (tc.function ?? {}) as Record<string, unknown>;
  prev.function = { ...fn, arguments: `${argumentsText(fn.arguments)}${argumentsText(more.arguments)}` };
}

export interface SseEvent {
  event?: string;
  id?: string;
  data: string;
}

/**
 * Server-sent events from a byte stream (the WHATWG rules the OpenAI servers need): lines end in
 * \n, \r\n or \r; `:` lines are comments; `data:` lines of one event are joined with \n; a blank
 * line dispatches; one leading space after the colon is dropped; a last event without its blank
 * line is still dispatched at the end.
 */
export async function* readSse(source: AsyncIterable<Buffer | string>): AsyncGenerator<SseEvent> {
  let buf = '';
  let data: string[] = [];
  let event: string | undefined;
  let id: string | undefined;
  const decoder = new TextDecoder();
  function* line(l: string): Generator<SseEvent> {
    if (l === '') {
      if (data.length) yield { data: data.join('\n'), ...(event ? { event } : {}), ...(id !== undefined ? { id } : {}) };
      data = [];
      event = undefined;
      return;
    }
    if (l.startsWith(':')) return;
    const colon = l.indexOf(':');
    const field = colon < 0 ? l : l.slice(0, colon);
    let value = colon < 0 ? '' : l.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') data.push(value);
    else if (field === 'event') event = value;
    else if (field === 'id') id = value;
  }
  for await (const piece of source) {
    buf += typeof piece === 'string' ? piece : decoder.decode(piece, { stream: true });
    let m: RegExpExecArray | null;
    const eol = /\r\n|\r|\n/g;
    let start = 0;
    while ((m = eol.exec(buf)) !== null) {
      // a \r at the very end may be the first half of \r\n: wait for the next piece
      if (m[0] === '\r' && m.index === buf.length - 1) break;
      yield* line(buf.slice(start, m.index));
      start = m.index + m[0].length;
    }
    buf = buf.slice(start);
  }
  buf += decoder.decode();
  if (buf !== '') yield* line(buf.replace(/\r$/, ''));
  yield* line('');
}
