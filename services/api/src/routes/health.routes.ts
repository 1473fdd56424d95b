/** GET /health (liveness, never calls Ollama) and /ready (readiness). */
import { Router } from 'express';
import type { HealthService } from '../services/health.service';
import { validate } from '../middleware/validate';
import { forceQuery } from './support/schemas';

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
