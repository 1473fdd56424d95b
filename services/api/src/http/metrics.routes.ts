/** GET /metrics: Prometheus text, for admins and the users in METRICS_USERS. */
import { Router } from 'express';
import type { Config } from '../config';
import { ForbiddenError } from '../errors';
import type { Metrics } from '../services/metrics';
import { userOf } from './async-jobs';

export function metricsRoutes(metrics: Metrics, config: Config): Router {
  const router = Router();
  router.get('/metrics', async (req, res) => {
    const user = userOf(req);
    const allowed = config.auth.users.length > 0 && user !== null && (config.auth.adminUsers.includes(user) || config.metricsUsers.includes(user));
    if (!allowed) throw new ForbiddenError('/metrics is for admins and METRICS_USERS');
    res.setHeader('Content-Type', metrics.contentType);
    res.setHeader('Cache-Control', 'no-store');
    res.send(await metrics.text());
  });
  return router;
}
