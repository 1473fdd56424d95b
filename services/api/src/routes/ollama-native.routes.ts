/**
 * /ollama → Ollama's native /api, for the official clients (`new Ollama({ host: '<base>/ollama',
 * headers: { Authorization: 'Basic …' } })`). Ollama's JSON and NDJSON pass through unchanged;
 * what differs from talking to Ollama directly:
 * - generate, chat, embed and embeddings go through the GPU queue like /v1 (refused at once with
 *   503 when it is full), with alias resolution, the installed-model check, pinned runner options
 *   (num_ctx = NUM_CTX; others dropped) and OLLAMA_KEEP_ALIVE (an admin's own keep_alive is kept);
 * - a streamed answer starts (200, headers) as soon as it is admitted, so a caller behind
 *   Cloudflare sees bytes while it waits for the GPU or a cold load; an error after that is the
 *   stream's last line `{"error":"..."}`, as Ollama itself does mid-stream (ollama-js throws it);
 * - stream:false answers are collected from a streamed upstream call (bounded per token gap, not
 *   by the whole generation) and upstream errors keep Ollama's status and body;
 * - pull, push, create, copy, delete and blobs are for ADMIN_USERS only;
 * - nothing from the caller's headers reaches Ollama (no Origin → no CORS 403, no credentials).
 */
import { Router, type Request, type RequestHandler, type Response } from 'express';
import type { Config } from '../config';
import { isAdmin, requireAdmin } from '../middleware/auth';
import { laneOf, refuseWhenModelFull, runOptions } from '../middleware/lanes';
import { clientGone } from '../middleware/request-context';
import { ollamaErrorBody, surfaceError } from '../middleware/surface-errors';
import { validate } from '../middleware/validate';
import { nativeLane, type NativeInference, type PassthroughService } from '../services/passthrough.service';
import { upstreamErrorText } from '../wire/lines';
import { collectNdjson, ndjsonFrame } from '../wire/ndjson';
import type { UpstreamPool } from '../services/upstream-pool';
import { relayStream, sendCollected } from './support/relay';
import { modelTarget } from './support/upstream-target';
import { inferenceBody, manageBody, passthrough, progressBody, showBody } from './support/schemas';
import { endWithError, NDJSON, pump, runStream, sendUpstream } from './support/streams';

/** Ends a started NDJSON stream with an `{"error"}` line, as Ollama does (on a fresh line). */
function endWithErrorLine(res: Response, err: unknown, lastByte: number | undefined): void {
  const e = surfaceError(err);
  endWithError(res, e.code, ndjsonFrame(ollamaErrorBody(e), lastByte));
}

type Body = Record<string, unknown>;

/** The model management target, for the access log: `model`, `name` or `source` (validated as strings). */
function target(b: Body): string | undefined {
  return (b.model || b.name || b.source || undefined) as string | undefined;
}

export function ollamaNativeRoutes(svc: PassthroughService, auth: Config['auth'], pool: UpstreamPool): Router {
  const router = Router();
  const admin = requireAdmin(auth);

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
  router.post('/api/show', validate({ body: showBody }, passthrough), async (req, res) => {
    const b = req.body as Body;
    const name = (b.model || b.name || undefined) as string | undefined;
    res.locals.log = { model: name };
    await metadata(req, res, '/api/show', name ? { ...b, model: svc.resolve(name), name: undefined } : b);
  });

  async function infer(req: Request, res: Response, kind: NativeInference) {
    const b = req.body as Body;
    const streamable = kind === 'generate' || kind === 'chat';
    const stream = streamable && b.stream !== false; // Ollama streams unless told not to
    const signal = clientGone(res);
    const admission = await svc.admit((b.model || undefined) as string | undefined, nativeLane(kind, b), signal, laneOf(res), 'ollama');
    const { body, overridden } = svc.nativeBody(kind, b, admission.model, isAdmin(auth, req));
    res.locals.log = {
      model: admission.model,
      queuePosition: admission.ticket.position,
      stream,
      ...(overridden.length ? { overriddenOptions: overridden } : {}),
    };
    const call = { method: 'POST' as const, path: `/api/${kind}`, body };
    const hooks = runOptions(res).hooks;

    if (!stream) {
      const up = await svc.inference(admission, call, signal, hooks);
      if (up.status >= 400 || !streamable) {
        await sendUpstream(res, up);
        return;
      }
      sendCollected(res, svc, admission.model, await collectNdjson(kind, up.body));
      return;
    }

    // Admitted: headers once an upstream took it (a cold load still gets them at once).
    await relayStream(
      res,
      NDJSON,
      { svc, admission, call, signal },
      {
        upstreamError: (text, status) => endWithError(res, 'UPSTREAM', ndjsonFrame({ error: upstreamErrorText(text, status) })),
        failed: (err, lastByte) => endWithErrorLine(res, err, lastByte),
      },
    );
  }

  const validated = validate({ body: inferenceBody }, passthrough);
  /** Refused early (503 QUEUE_FULL) when the queue of its model on the ollama upstreams is full. */
  const full = (kind: NativeInference): RequestHandler => refuseWhenModelFull(svc, (b) => nativeLane(kind, b), ['ollama']);
  router.post('/api/generate', full('generate'), validated, (req, res) => infer(req, res, 'generate'));
  router.post('/api/chat', full('chat'), validated, (req, res) => infer(req, res, 'chat'));
  router.post('/api/embed', full('embed'), validated, (req, res) => infer(req, res, 'embed'));
  router.post('/api/embeddings', full('embeddings'), validated, (req, res) => infer(req, res, 'embeddings'));

  // --- model management: admin only -------------------------------------------------------------

  /** pull, push, create: NDJSON progress, streamed unless stream:false (then the last line). */
  async function progress(req: Request, res: Response, op: 'pull' | 'push' | 'create') {
    const b = req.body as Body;
    const stream = b.stream !== false;
    const signal = clientGone(res);
    res.locals.log = { action: `model.${op}`, target: target(b), stream };
    const up = await svc.manage({ method: 'POST', path: `/api/${op}`, body: { ...b, stream: true } }, signal, modelTarget(pool, req));
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
    await runStream(
      res,
      NDJSON,
      signal,
      async (progressed) => {
        await pump(up.body, res, progressed);
      },
      (err, lastByte) => endWithErrorLine(res, err, lastByte),
    );
  }

  async function manageJson(req: Request, res: Response, method: 'POST' | 'DELETE', path: string) {
    const b = req.body as Body;
    res.locals.log = { action: `model.${path.slice('/api/'.length)}`, target: target(b) };
    await sendUpstream(res, await svc.manage({ method, path, body: b }, clientGone(res), modelTarget(pool, req)));
  }

  const progressChecked = validate({ body: progressBody }, passthrough);
  const manageChecked = validate({ body: manageBody }, passthrough);
  router.post('/api/pull', admin, progressChecked, (req, res) => progress(req, res, 'pull'));
  router.post('/api/push', admin, progressChecked, (req, res) => progress(req, res, 'push'));
  router.post('/api/create', admin, progressChecked, (req, res) => progress(req, res, 'create'));
  router.post('/api/copy', admin, manageChecked, (req, res) => manageJson(req, res, 'POST', '/api/copy'));
  router.delete('/api/delete', admin, manageChecked, (req, res) => manageJson(req, res, 'DELETE', '/api/delete'));

  // Blobs (for create from local files): the body is raw bytes, streamed through as they come.
  router.head('/api/blobs/:digest', admin, async (req, res) => {
    await sendUpstream(
      res,
      await svc.manage({ method: 'HEAD', path: `/api/blobs/${encodeURIComponent(String(req.params.digest))}` }, clientGone(res), modelTarget(pool, req)),
    );
  });
  router.post('/api/blobs/:digest', admin, async (req, res) => {
    const headers: Record<string, string> = { 'Content-Type': 'application/octet-stream' };
    const length = req.get('content-length');
    if (length) headers['Content-Length'] = length;
    res.locals.log = { action: 'model.blob', target: String(req.params.digest) };
    const up = await svc.manage(
      { method: 'POST', path: `/api/blobs/${encodeURIComponent(String(req.params.digest))}`, body: req, headers },
      clientGone(res),
      modelTarget(pool, req),
    );
    await sendUpstream(res, up);
  });

  return router;
}
