/** GET /metrics: Prometheus text, for admins and the users in METRICS_USERS. */
import { Router } from 'express';
import type { Config } from '../config';
import { requireMetricsReader } from '../middleware/auth';
import type { Metrics } from '../services/metrics';

export function metricsRoutes(metrics: Metrics, config: Config): Router {
  const router = Router();
  router.get('/metrics', requireMetricsReader(config), async (_req, res) => {
    res.setHeader('Content-Type', metrics.contentType);
    res.setHeader('Cache-Control', 'no-store');
    res.send(await metrics.text());
  });
  return router;
}
