/**
 * /openai/v1 → Ollama's OpenAI-compatible /v1, for the official `openai` clients:
 *
 *   new OpenAI({ baseURL: '<base>/openai/v1', apiKey: 'unused',
 *                defaultHeaders: { Authorization: 'Basic <base64 user:pass>' } })
 *
 * openai-node sends `Authorization: Bearer <apiKey>`, but it merges `defaultHeaders` after its own
 * auth header, so the Basic header above replaces it (apiKey must still be non-empty: the client
 * refuses to start without one). The Python client behaves the same with `default_headers`.
 *
 * Chat completions, completions and embeddings go through the GPU queue like /v1 (alias
 * resolution, installed-model check, 503 when full); a streamed answer (SSE) starts as soon as it
 * is admitted and passes through unbuffered; an error after that is a final `data: {"error":…}`
 * event, which openai-node raises as an APIError. A non-streamed chat completion is streamed from
 * Ollama and collected here (so a long answer is bounded by the gap between tokens, not by
 * MODEL_TIMEOUTS for the whole answer), unless it asks for logprobs or n > 1. Our own errors use OpenAI's error shape with our
 * code (see surface-errors.ts); Ollama's own errors pass through with their status and body.
 * Ollama's /v1 takes no runner options: its context size is OLLAMA_CONTEXT_LENGTH, which the
 * compose file sets to NUM_CTX so both surfaces share one loaded runner.
 */
import { guardStream } from './ndjson';
import { Router, type Request, type Response } from 'express';
import { ValidationError } from '../errors';
import { collectChatCompletion, upstreamErrorText, type PassthroughService } from '../services/passthrough.service';
import { NEWLINE, relay, sendCollected, sendUpstream, startStream, type Pumped } from './passthrough';
import { clientGone, logQueueWait } from './request-context';
import { openaiErrorBody, surfaceError } from './surface-errors';
import { joinWildcard } from './validate';

type Inference = 'chat/completions' | 'completions' | 'embeddings';

function jsonBody(req: Request): Record<string, unknown> {
  const b: unknown = req.body;
  if (!b || typeof b !== 'object' || Array.isArray(b)) {
    throw new ValidationError('The request body must be a JSON object', [{ field: 'body', message: 'must be a JSON object' }]);
  }
  return b as Record<string, unknown>;
}

function requestedModel(b: Record<string, unknown>): string | undefined {
  const v = b.model;
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') throw new ValidationError('"model" must be a string', [{ field: 'body.model', message: 'must be a string' }]);
  return v;
}

function hasImages(b: Record<string, unknown>): boolean {
  if (!Array.isArray(b.messages)) return false;
  return b.messages.some((m) => {
    const content = m && typeof m === 'object' ? (m as { content?: unknown }).content : undefined;
    return Array.isArray(content) && content.some((p) => p && typeof p === 'object' && (p as { type?: unknown }).type === 'image_url');
  });
}

function sseError(res: Response, err: unknown, lastByte: number | undefined): void {
  const e = surfaceError(err);
  if (!res.writableEnded && !res.destroyed) {
    res.write(`${lastByte !== undefined && lastByte !== NEWLINE ? '\n\n' : ''}data: ${JSON.stringify(openaiErrorBody(e))}\n\n`);
  }
  res.locals.log = { ...res.locals.log, streamError: e.code };
  res.end();
}

/** A non-streamed chat completion that can be collected from a stream without losing anything. */
function collectable(b: Record<string, unknown>): boolean {
  return !b.logprobs && (b.n === undefined || b.n === null || b.n === 1);
}

/** Ollama's own /v1 error body when it is one, else its text in OpenAI's shape. */
function upstreamErrorEvent(text: string, status: number): unknown {
  try {
    const parsed = JSON.parse(text) as { error?: unknown };
    if (parsed.error && typeof parsed.error === 'object') return parsed;
  } catch {
    /* not JSON */
  }
  const type = status === 404 ? 'not_found_error' : status === 400 ? 'invalid_request_error' : 'api_error';
  return { error: { message: upstreamErrorText(text, status), type, param: null, code: null } };
}

const joinId = joinWildcard('id');

export function openaiRoutes(svc: PassthroughService): Router {
  const router = Router();

  router.get('/models', async (_req, res) => {
    await sendUpstream(res, await svc.metadata({ method: 'GET', path: '/v1/models' }, clientGone(res)));
  });

  router.get('/models/*id', joinId, async (req, res) => {
    const id = svc.resolve(String(req.params.id));
    await sendUpstream(res, await svc.metadata({ method: 'GET', path: `/v1/models/${encodeURIComponent(id)}` }, clientGone(res)));
  });

  async function infer(req: Request, res: Response, kind: Inference) {
    const b = jsonBody(req);
    const stream = kind !== 'embeddings' && b.stream === true; // OpenAI's default: not streamed
    const signal = clientGone(res);
    const admission = await svc.admit(requestedModel(b), kind === 'embeddings' ? 'embed' : hasImages(b) ? 'vision' : 'chat', signal);
    res.locals.log = { model: admission.model, queuePosition: admission.ticket.position, stream };
    const call = { method: 'POST' as const, path: `/v1/${kind}`, body: { ...b, model: admission.model } };
    const onSlot = logQueueWait(res);

    if (!stream && kind === 'chat/completions' && collectable(b)) {
      // Streamed upstream and collected here: the wait is bounded per token, not per answer.
      const up = await svc.inference(admission, { ...call, body: { ...call.body, stream: true, stream_options: { include_usage: true } } }, signal, onSlot);
      if (up.status >= 400) {
        await sendUpstream(res, up);
        return;
      }
      sendCollected(res, svc, admission.model, await collectChatCompletion(up.body));
      return;
    }
    if (!stream) {
      await sendUpstream(res, await svc.inference(admission, call, signal, onSlot));
      return;
    }

    // Admitted: headers now; the wait for the slot and a cold load happen inside the stream.
    startStream(res, 'text/event-stream; charset=utf-8');
    const progress: Pumped = { tail: '' };
    await guardStream(
      res,
      signal,
      () => relay(res, svc, admission, call, signal, onSlot, progress, (text, status) => res.write(`data: ${JSON.stringify(upstreamErrorEvent(text, status))}\n\n`)),
      (err) => sseError(res, err, progress.lastByte),
    );
  }

  router.post('/chat/completions', (req, res) => infer(req, res, 'chat/completions'));
  router.post('/completions', (req, res) => infer(req, res, 'completions'));
  router.post('/embeddings', (req, res) => infer(req, res, 'embeddings'));

  return router;
}
