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
 * MODEL_TIMEOUTS for the whole answer), unless it asks for logprobs or n > 1. Our own errors use
 * OpenAI's error shape with our code (see middleware/surface-errors.ts); Ollama's own errors pass
 * through with their status and body.
 * Ollama's /v1 takes no runner options: its context size is OLLAMA_CONTEXT_LENGTH, which the
 * compose file sets to NUM_CTX so both surfaces share one loaded runner.
 */
import { Router, type Request, type RequestHandler, type Response } from 'express';
import { laneOf, refuseWhenModelFull, runOptions } from '../middleware/lanes';
import { clientGone } from '../middleware/request-context';
import { openaiErrorBody, surfaceError } from '../middleware/surface-errors';
import { joinWildcard, validate } from '../middleware/validate';
import { collectable, openaiLane, type OpenaiInference, type PassthroughService } from '../services/passthrough.service';
import { collectChatCompletion, openaiUpstreamError, sseFrame } from '../wire/openai-sse';
import { relayStream, sendCollected } from './support/relay';
import { inferenceBody, passthrough } from './support/schemas';
import { endWithError, sendUpstream, SSE } from './support/streams';

/** Ends a started SSE stream with a final `data: {"error":…}` event (on a fresh line). */
function endWithErrorEvent(res: Response, err: unknown, lastByte: number | undefined): void {
  const e = surfaceError(err);
  endWithError(res, e.code, sseFrame(openaiErrorBody(e), lastByte));
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

  async function infer(req: Request, res: Response, kind: OpenaiInference) {
    const b = req.body as Record<string, unknown>;
    const stream = kind !== 'embeddings' && b.stream === true; // OpenAI's default: not streamed
    const signal = clientGone(res);
    const admission = await svc.admit((b.model || undefined) as string | undefined, openaiLane(kind, b), signal, laneOf(res), 'openai');
    res.locals.log = { model: admission.model, queuePosition: admission.ticket.position, stream };
    const call = { method: 'POST' as const, path: `/v1/${kind}`, body: { ...b, model: admission.model } };
    const hooks = runOptions(res).hooks;

    if (!stream && kind === 'chat/completions' && collectable(b)) {
      // Streamed upstream and collected here: the wait is bounded per token, not per answer.
      const up = await svc.inference(admission, { ...call, body: { ...call.body, stream: true, stream_options: { include_usage: true } } }, signal, hooks);
      if (up.status >= 400) {
        await sendUpstream(res, up);
        return;
      }
      sendCollected(res, svc, admission.model, await collectChatCompletion(up.body));
      return;
    }
    if (!stream) {
      await sendUpstream(res, await svc.inference(admission, call, signal, hooks));
      return;
    }

    // Admitted: headers once an upstream took it (a cold load still gets them at once).
    await relayStream(
      res,
      SSE,
      { svc, admission, call, signal },
      {
        upstreamError: (text, status) => res.write(sseFrame(openaiUpstreamError(text, status))),
        failed: (err, lastByte) => endWithErrorEvent(res, err, lastByte),
      },
    );
  }

  const validated = validate({ body: inferenceBody }, passthrough);
  /** Refused early (503 QUEUE_FULL) when the queue of its model is full. */
  const full = (kind: OpenaiInference): RequestHandler => refuseWhenModelFull(svc, (b) => openaiLane(kind, b));
  router.post('/chat/completions', full('chat/completions'), validated, (req, res) => infer(req, res, 'chat/completions'));
  router.post('/completions', full('completions'), validated, (req, res) => infer(req, res, 'completions'));
  router.post('/embeddings', full('embeddings'), validated, (req, res) => infer(req, res, 'embeddings'));

  return router;
}
