/**
 * The owner's view: GET /admin/gpu (telemetry), GET /admin/status.json (everything the page shows)
 * and GET /admin/ (a small HTML page polling it). Mounted behind requireAdmin.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Router } from 'express';
import type { UpstreamPool } from '../services/upstream-pool';
import type { GpuService } from '../services/gpu.service';
import type { HealthService } from '../services/health.service';
import { loadedModel } from '../services/loaded-model';
import type { Metrics } from '../services/metrics';
import type { ModelCatalog } from '../services/model-catalog';
import type { MonitoringGauges } from '../services/monitoring-gauges';
import type { PrometheusView } from '../services/prometheus-view';

const STATIC = path.join(__dirname, 'static');
const page = readFileSync(path.join(STATIC, 'status.html'), 'utf8');
const script = readFileSync(path.join(STATIC, 'status.js'), 'utf8');

export interface DashboardDeps {
  gpu: GpuService;
  health: HealthService;
  catalog: ModelCatalog;
  pool: UpstreamPool;
  metrics: Metrics;
  prometheus: PrometheusView;
  gauges: MonitoringGauges;
}

export function dashboardRoutes(d: DashboardDeps): Router {
  const router = Router();

  router.get('/gpu', async (_req, res) => {
    res.json(await d.gpu.read());
  });

  router.get('/status.json', async (_req, res) => {
    const [ready, running, gpu, energy, alerts] = await Promise.all([
      d.health.readiness(),
      d.catalog.running().catch(() => []),
      d.gpu.read(),
      d.prometheus.energy(),
      d.prometheus.alerts(),
    ]);
    const snap = await d.gauges.current();
    const known = (v: number) => (Number.isFinite(v) ? v : null);
    res.setHeader('Cache-Control', 'no-store');
    res.json({
      ready,
      // The page's own shape of the one loaded-model view.
      loadedModels: running
        .map(loadedModel)
        .map((m) => ({ name: m.name, sizeBytes: m.size, vramBytes: m.sizeVram, vramShare: m.vramShare, expiresAt: m.expiresAt })),
      gpu,
      queue: d.pool.stats(),
      // Per upstream: state, breaker, models, queue, served (never the apiKey or URL credentials).
      upstreams: d.pool.status(),
      requestRatePerS: d.metrics.requestRate(),
      recentErrors: d.metrics.errorsRecent(),
      energy,
      alerts,
      host: {
        memoryTotalBytes: known(snap.memTotalBytes),
        memoryAvailableBytes: known(snap.memAvailableBytes),
        modelsVolumeFreeBytes: known(snap.volumeFreeBytes),
        models: Object.fromEntries([...snap.present].map(([m, v]) => [m, Number.isNaN(v) ? null : v === 1])),
      },
      at: new Date().toISOString(),
    });
  });

  // The status page's charts: the last 24 h of allowlisted series (?series=requests,gpu_power)
  router.get('/history', async (req, res) => {
    const raw = typeof req.query.series === 'string' ? req.query.series : '';
    res.setHeader('Cache-Control', 'no-store');
    res.json(
      await d.prometheus.history(
        raw
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean),
      ),
    );
  });

  router.get('/status.js', (_req, res) => {
    res.type('application/javascript').setHeader('Cache-Control', 'no-cache');
    res.send(script);
  });

  router.get('/', (req, res, next) => {
    // Relative URLs in the page need the trailing slash (/admin/, not /admin).
    if (!req.originalUrl.split('?')[0].endsWith('/')) return next();
    res.type('html').setHeader('Cache-Control', 'no-cache');
    res.send(page);
  });

  return router;
}
