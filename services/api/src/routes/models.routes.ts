/** GET /v1/models: the installed models (loaded or not), the defaults and the aliases. */
import { Router } from 'express';
import type { Config } from '../config';
import { validate } from '../middleware/validate';
import type { ModelCatalog } from '../services/model-catalog';
import { forceQuery } from './support/schemas';

export function modelRoutes(catalog: ModelCatalog, defaults: Config['models']): Router {
  const router = Router();
  router.get('/models', validate({ query: forceQuery }), async (req, res) => {
    const models = await catalog.list(Boolean(req.query.force));
    res.json({ models, defaults: { chat: defaults.default, embed: defaults.embed, vision: defaults.vision }, aliases: defaults.aliases });
  });
  return router;
}
