/**
 * /admin (mounted behind requireAdmin): restart and inspect the Ollama container, manage models.
 * Thin: validate → AdminService → JSON or NDJSON. Model names may contain slashes
 * (`hf.co/user/repo:Q4_K_M`): the `*name` wildcard takes them as they are, or URL-encoded.
 */
import { Router, type Request } from 'express';
import Joi from 'joi';
import type { Actor, AdminService, PullLine } from '../services/admin.service';
import { endWithError, startNdjson, writeLine, guardStream } from './ndjson';
import { userOf } from './auth';
import { clientGone } from './request-context';
import { modelName } from './schemas';
import { joinWildcard, validate } from './validate';

const pullBody = Joi.object({
  model: modelName,
  /** Legacy alias (ollama-js sends `name`). */
  name: modelName,
  stream: Joi.boolean().default(true),
  insecure: Joi.boolean().valid(false).messages({ 'any.only': '{{#label}}: insecure registries are not allowed through the API' }),
})
  .or('model', 'name')
  .custom((v: { model?: string; name?: string }, helpers) => {
    if (v.model && v.name && v.model !== v.name) return helpers.message({ custom: '"model" and "name" name different models: send one' });
    return v;
  })
  .required();

const nameParams = Joi.object({ name: modelName.required() });

function actorOf(req: Request): Actor {
  const user = userOf(req) ?? 'unknown';
  return { user, requestId: req.id };
}

const joinModelParam = joinWildcard('name');

export function adminRoutes(admin: AdminService): Router {
  const router = Router();

  router.post('/ollama/restart', async (req, res) => {
    const r = await admin.restart(actorOf(req));
    res.locals.log = { container: r.container.name, downtimeMs: r.downtimeMs };
    res.json(r);
  });

  router.get('/ollama', async (req, res) => {
    res.json(await admin.status(actorOf(req)));
  });

  router.post('/models/pull', validate({ body: pullBody }), async (req, res) => {
    const model: string = req.body.model ?? req.body.name;
    const signal = clientGone(res);
    const progress = admin.pull(actorOf(req), model, signal); // throws OLLAMA_RESTARTING before any byte
    res.locals.log = { model };

    if (!req.body.stream) {
      let last: PullLine | undefined;
      for await (const p of progress) last = p;
      res.json({ model, status: last?.status ?? 'success' });
      return;
    }

    // Headers at once: a pull of a big model is silent for a while before its first progress.
    startNdjson(res);
    await guardStream(
      res,
      signal,
      async () => {
        for await (const p of progress) writeLine(res, p);
      },
      (err) => endWithError(res, err, req.id),
    );
  });

  router.delete('/models/*name', joinModelParam, validate({ params: nameParams }), async (req, res) => {
    res.json(await admin.deleteModel(actorOf(req), req.params.name as string));
  });

  router.post('/models/*name/load', joinModelParam, validate({ params: nameParams }), async (req, res) => {
    res.json(await admin.load(actorOf(req), req.params.name as string, clientGone(res)));
  });

  router.post('/models/*name/unload', joinModelParam, validate({ params: nameParams }), async (req, res) => {
    res.json(await admin.unload(actorOf(req), req.params.name as string, clientGone(res)));
  });

  return router;
}
