/** GET /health (liveness, never calls Ollama), /ready (readiness) and /v1/models. */
import { Router } from 'express';
import Joi from 'joi';
import type { HealthService } from '../services/health.service';
import type { ModelCatalog } from '../services/model-catalog.service';
import { validate } from './validate';

const forceQuery = Joi.object({ force: Joi.boolean().default(false) });

export function healthRoutes(health: HealthService): Router {
  const router = Router();
  router.get('/health', (_req, res) => {
    res.json({ status: 'ok' });
  });
  router.get('/ready', validate({ query: forceQuery }), async (req, res) => {
    const r = await health.readiness(Boolean(req.query.force));
    if (r.status !== 'ready') res.setHeader('Retry-After', r.status === 'warming' ? '5' : '10');
    res.status(r.status === 'ready' ? 200 : 503).json(r);
  });
  return router;
}

export function modelRoutes(catalog: ModelCatalog, defaults: { default: string; embed: string; vision: string; aliases: Record<string, string> }): Router {
  const router = Router();
  router.get('/models', validate({ query: forceQuery }), async (req, res) => {
    const models = await catalog.list(Boolean(req.query.force));
    res.json({ models, defaults: { chat: defaults.default, embed: defaults.embed, vision: defaults.vision }, aliases: defaults.aliases });
  });
  return router;
}
