/** GET /metrics: Prometheus text, for admins and the users in METRICS_USERS. */
import { Router } from 'express';
import type { Config } from '../config';
import { ForbiddenError } from '../errors';
import type { Metrics } from '../services/metrics';
import { isAdmin, userOf } from './auth';

export function metricsRoutes(metrics: Metrics, config: Config): Router {
  const router = Router();
  router.get('/metrics', async (req, res) => {
    const user = userOf(req);
    const allowed = isAdmin(config.auth, req) || (config.auth.users.length > 0 && user !== null && config.metricsUsers.includes(user));
    if (!allowed) throw new ForbiddenError('/metrics is for admins and METRICS_USERS');
    res.setHeader('Content-Type', metrics.contentType);
    res.setHeader('Cache-Control', 'no-store');
    res.send(await metrics.text());
  });
  return router;
}
