/**
 * /ollama → Ollama's native /api, for the official clients (`new Ollama({ host: '<base>/ollama',
 * headers: { Authorization: 'Basic …' } })`). Ollama's JSON and NDJSON pass through unchanged;
 * what differs from talking to Ollama directly:
 * - generate, chat, embed and embeddings go through the GPU queue like /v1 (refused at once with
 *   503 when it is full), with alias resolution, the installed-model check, pinned runner options
 *   (num_ctx = NUM_CTX; others dropped) and OLLAMA_KEEP_ALIVE when the caller sent no keep_alive;
 * - a streamed answer starts (200, headers) as soon as it is admitted, so a caller behind
 *   Cloudflare sees bytes while it waits for the GPU or a cold load; an error after that is the
 *   stream's last line `{"error":"..."}`, as Ollama itself does mid-stream (ollama-js throws it);
 * - stream:false answers are collected from a streamed upstream call (bounded per token gap, not
 *   by the whole generation) and upstream errors keep Ollama's status and body;
 * - pull, push, create, copy, delete and blobs are for ADMIN_USERS only;
 * - nothing from the caller's headers reaches Ollama (no Origin → no CORS 403, no credentials).
 */
import { isAdmin as isAdminOf } from './auth';
import { guardStream } from './ndjson';
import { Router, type Request, type Response } from 'express';
import type { Config } from '../config';
import { ValidationError } from '../errors';
import { collectNdjson, upstreamErrorText, type PassthroughService } from '../services/passthrough.service';
import { requireAdmin } from './auth';
import { NEWLINE, pump, relay, sendCollected, sendUpstream, startStream, type Pumped } from './passthrough';
import { clientGone, logQueueWait } from './request-context';
import { ollamaErrorBody, surfaceError } from './surface-errors';

const NDJSON = 'application/x-ndjson';

type Inference = 'generate' | 'chat' | 'embed' | 'embeddings';

function jsonBody(req: Request): Record<string, unknown> {
  const b: unknown = req.body;
  if (!b || typeof b !== 'object' || Array.isArray(b)) {
    throw new ValidationError('The request body must be a JSON object', [{ field: 'body', message: 'must be a JSON object' }]);
  }
  return b as Record<string, unknown>;
}

function optionalString(b: Record<string, unknown>, field: string): string | undefined {
  const v = b[field];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') throw new ValidationError(`"${field}" must be a string`, [{ field: `body.${field}`, message: 'must be a string' }]);
  return v;
}

function hasImages(kind: Inference, b: Record<string, unknown>): boolean {
  if (kind === 'generate') return Array.isArray(b.images) && b.images.length > 0;
  if (kind === 'chat' && Array.isArray(b.messages)) {
    return b.messages.some((m) => m && typeof m === 'object' && Array.isArray((m as { images?: unknown }).images) && (m as { images: unknown[] }).images.length > 0);
  }
  return false;
}

/** Ends a started NDJSON stream with an `{"error"}` line (on a fresh line). */
function endNdjsonWithError(res: Response, message: string, lastByte: number | undefined, code: string): void {
  if (!res.writableEnded && !res.destroyed) {
    res.write(`${lastByte !== undefined && lastByte !== NEWLINE ? '\n' : ''}${JSON.stringify({ error: message })}\n`);
  }
  res.locals.log = { ...res.locals.log, streamError: code };
  res.end();
}

export function ollamaNativeRoutes(svc: PassthroughService, config: Config): Router {
  const router = Router();
  const admin = requireAdmin(config.auth);
  const isAdmin = (req: Request) => isAdminOf(config.auth, req);

  /** Metadata: no queue. `model`/`name` aliases are resolved for show. */
  async function metadata(req: Request, res: Response, path: string, body?: unknown) {
    const up = await svc.metadata({ method: req.method as 'GET' | 'HEAD' | 'POST', path, body }, clientGone(res));
    await sendUpstream(res, up);
  }

  router.get('/', (req, res) => metadata(req, res, '/'));
  router.head('/', (req, res) => metadata(req, res, '/'));
  router.get('/api/version', (req, res) => metadata(req, res, '/api/version'));
  router.head('/api/version', (req, res) => metadata(req, res, '/api/version'));
  router.get('/api/tags', (req, res) => metadata(req, res, '/api/tags'));
  router.head('/api/tags', (req, res) => metadata(req, res, '/api/tags'));
  router.get('/api/ps', (req, res) => metadata(req, res, '/api/ps'));
  router.post('/api/show', async (req, res) => {
    const b = jsonBody(req);
    const name = optionalString(b, 'model') ?? optionalString(b, 'name');
    res.locals.log = { model: name };
    await metadata(req, res, '/api/show', name ? { ...b, model: svc.resolve(name), name: undefined } : b);
  });

  async function infer(req: Request, res: Response, kind: Inference) {
    const b = jsonBody(req);
    const streamable = kind === 'generate' || kind === 'chat';
    const stream = streamable && b.stream !== false; // Ollama streams unless told not to
    const signal = clientGone(res);
    const admission = await svc.admit(optionalString(b, 'model'), kind === 'embed' || kind === 'embeddings' ? 'embed' : hasImages(kind, b) ? 'vision' : 'chat', signal);
    const pinned = svc.pinOptions(b.options);
    if (b.keep_alive !== undefined && !isAdmin(req)) pinned.overridden.push('keep_alive');
    res.locals.log = {
      model: admission.model,
      queuePosition: admission.ticket.position,
      stream,
      ...(pinned.overridden.length ? { overriddenOptions: pinned.overridden } : {}),
    };
    const body = {
      ...b,
      model: admission.model,
      options: pinned.options,
      // keep_alive decides when the GPU is freed for everyone: only admins may choose it.
      keep_alive: isAdmin(req) ? (b.keep_alive ?? svc.keepAlive) : svc.keepAlive,
      ...(streamable ? { stream: true } : {}),
    };
    const call = { method: 'POST' as const, path: `/api/${kind}`, body };
    const onSlot = logQueueWait(res);

    if (!stream) {
      const up = await svc.inference(admission, call, signal, onSlot);
      if (up.status >= 400 || !streamable) {
        await sendUpstream(res, up);
        return;
      }
      sendCollected(res, svc, admission.model, await collectNdjson(kind as 'generate' | 'chat', up.body));
      return;
    }

    // Admitted: headers now, the wait for the slot and the model load happen inside the stream.
    startStream(res, NDJSON);
    const progress: Pumped = { tail: '' };
    await guardStream(
      res,
      signal,
      () => relay(res, svc, admission, call, signal, onSlot, progress, (text, status) => endNdjsonWithError(res, upstreamErrorText(text, status), undefined, 'UPSTREAM')),
      (err) => {
        const e = surfaceError(err);
        endNdjsonWithError(res, ollamaErrorBody(e).error, progress.lastByte, e.code);
      },
    );
  }

  router.post('/api/generate', (req, res) => infer(req, res, 'generate'));
  router.post('/api/chat', (req, res) => infer(req, res, 'chat'));
  router.post('/api/embed', (req, res) => infer(req, res, 'embed'));
  router.post('/api/embeddings', (req, res) => infer(req, res, 'embeddings'));

  // --- model management: admin only -------------------------------------------------------------

  function target(b: Record<string, unknown>): string | undefined {
    return optionalString(b, 'model') ?? optionalString(b, 'name') ?? optionalString(b, 'source');
  }

  /** pull, push, create: NDJSON progress, streamed unless stream:false (then the last line). */
  async function progress(req: Request, res: Response, op: 'pull' | 'push' | 'create') {
    const b = jsonBody(req);
    if (b.insecure === true) {
      throw new ValidationError('insecure registries are not allowed through the API', [{ field: 'body.insecure', message: 'must be false' }]);
    }
    const stream = b.stream !== false;
    const signal = clientGone(res);
    res.locals.log = { action: `model.${op}`, target: target(b), stream };
    const up = await svc.manage({ method: 'POST', path: `/api/${op}`, body: { ...b, stream: true } }, signal);
    if (up.status >= 400) {
      await sendUpstream(res, up);
      return;
    }
    if (!stream) {
      const r = await collectNdjson('progress', up.body);
      if (!r.ok) res.status(500).json({ error: r.error });
      else res.json(r.value);
      return;
    }
    startStream(res, NDJSON);
    const progressed: Pumped = { tail: '' };
    await guardStream(
      res,
      signal,
      async () => {
        await pump(up.body, res, progressed);
      },
      (err) => {
        const e = surfaceError(err);
        endNdjsonWithError(res, ollamaErrorBody(e).error, progressed.lastByte, e.code);
      },
    );
  }

  async function manageJson(req: Request, res: Response, method: 'POST' | 'DELETE', path: string) {
    const b = jsonBody(req);
    res.locals.log = { action: `model.${path.slice('/api/'.length)}`, target: target(b) };
    await sendUpstream(res, await svc.manage({ method, path, body: b }, clientGone(res)));
  }

  router.post('/api/pull', admin, (req, res) => progress(req, res, 'pull'));
  router.post('/api/push', admin, (req, res) => progress(req, res, 'push'));
  router.post('/api/create', admin, (req, res) => progress(req, res, 'create'));
  router.post('/api/copy', admin, (req, res) => manageJson(req, res, 'POST', '/api/copy'));
  router.delete('/api/delete', admin, (req, res) => manageJson(req, res, 'DELETE', '/api/delete'));

  // Blobs (for create from local files): the body is raw bytes, streamed through as they come.
  router.head('/api/blobs/:digest', admin, async (req, res) => {
    await sendUpstream(res, await svc.manage({ method: 'HEAD', path: `/api/blobs/${encodeURIComponent(String(req.params.digest))}` }, clientGone(res)));
  });
  router.post('/api/blobs/:digest', admin, async (req, res) => {
    const headers: Record<string, string> = { 'Content-Type': 'application/octet-stream' };
    const length = req.get('content-length');
    if (length) headers['Content-Length'] = length;
    res.locals.log = { action: 'model.blob', target: String(req.params.digest) };
    const up = await svc.manage({ method: 'POST', path: `/api/blobs/${encodeURIComponent(String(req.params.digest))}`, body: req, headers }, clientGone(res));
    await sendUpstream(res, up);
  });

  return router;
}
