/**
 * /admin (mounted behind requireAdmin): restart and inspect the Ollama container, manage models.
 * Thin: validate → OllamaContainerService / ModelAdminService → JSON or NDJSON. Model names may contain slashes
 * (`hf.co/user/repo:Q4_K_M`): the `*name` wildcard takes them as they are, or URL-encoded.
 */
import { Router, type Request } from 'express';
import Joi from 'joi';
import { userOf } from '../middleware/auth';
import { clientGone } from '../middleware/request-context';
import { joinWildcard, validate } from '../middleware/validate';
import type { Actor } from '../services/audit-log';
import type { ModelAdminService, PullLine } from '../services/model-admin.service';
import type { OllamaContainerService } from '../services/ollama-container.service';
import { modelName } from './support/schemas';
import type { UpstreamPool } from '../services/upstream-pool';
import { modelTarget } from './support/upstream-target';
import { endWithErrorLine, NDJSON, runStream, writeLine } from './support/streams';

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

export function adminRoutes(containers: OllamaContainerService, models: ModelAdminService, pool: UpstreamPool): Router {
  const router = Router();

  router.post('/ollama/restart', async (req, res) => {
    const r = await containers.restart(actorOf(req));
    res.locals.log = { container: r.container.name, downtimeMs: r.downtimeMs };
    res.json(r);
  });

  router.get('/ollama', async (req, res) => {
    res.json(await containers.status(actorOf(req)));
  });

  router.post('/models/pull', validate({ body: pullBody }), async (req, res) => {
    const b = req.body as { model?: string; name?: string; stream: boolean };
    const model = (b.model ?? b.name) as string; // joi: one of them is given
    const signal = clientGone(res);
    const progress = models.pull(actorOf(req), model, signal, modelTarget(pool, req)); // throws OLLAMA_RESTARTING before any byte
    res.locals.log = { model };

    if (!b.stream) {
      let last: PullLine | undefined;
      for await (const p of progress) last = p;
      res.json({ model, status: last?.status ?? 'success' });
      return;
    }

    // Headers at once: a pull of a big model is silent for a while before its first progress.
    await runStream(
      res,
      NDJSON,
      signal,
      async () => {
        for await (const p of progress) writeLine(res, p);
      },
      (err) => endWithErrorLine(res, err, req.id),
    );
  });

  router.delete('/models/*name', joinModelParam, validate({ params: nameParams }), async (req, res) => {
    res.json(await models.deleteModel(actorOf(req), req.params.name as string, modelTarget(pool, req)));
  });

  router.post('/models/*name/load', joinModelParam, validate({ params: nameParams }), async (req, res) => {
    res.json(await models.load(actorOf(req), req.params.name as string, clientGone(res), modelTarget(pool, req)));
  });

  router.post('/models/*name/unload', joinModelParam, validate({ params: nameParams }), async (req, res) => {
    res.json(await models.unload(actorOf(req), req.params.name as string, clientGone(res), modelTarget(pool, req)));
  });

  return router;
}
