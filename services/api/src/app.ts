/**
 * createApp(deps): the Express app and nothing else — middleware and routes over services built by
 * the composition root. No listen, no process.*, no env reads.
 */
import express, { type Express } from 'express';
import helmet from 'helmet';
import type { Services } from './composition';
import type { Config } from './config';
import type { Logger } from './logger';
import { authenticate, requireAdmin } from './middleware/auth';
import { verifyJsonBody } from './middleware/body-guard';
import { errorHandler, notFoundHandler } from './middleware/error-handler';
import { assignPriority } from './middleware/lanes';
import { rateLimiter } from './middleware/rate-limit';
import { rememberMount, requestContext } from './middleware/request-context';
import { errorShape, ollamaErrorBody, openaiErrorBody } from './middleware/surface-errors';
import { adminRoutes } from './routes/admin.routes';
import { dashboardRoutes } from './routes/dashboard.routes';
import { generationRoutes } from './routes/generation.routes';
import { healthRoutes } from './routes/health.routes';
import { inferenceRoutes } from './routes/inference.routes';
import { jobRoutes } from './routes/jobs.routes';
import { metricsRoutes } from './routes/metrics.routes';
import { modelRoutes } from './routes/models.routes';
import { ollamaNativeRoutes } from './routes/ollama-native.routes';
import { openaiRoutes } from './routes/openai.routes';
import { waldusRoutes } from './routes/waldus.routes';

export interface AppDeps {
  config: Config;
  logger: Logger;
  services: Services;
}

export function createApp({ config, logger, services: s }: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', config.trustProxy);
  app.set('etag', false);
  app.use(requestContext(logger, s.metrics));
  app.use(helmet());

  // Liveness and readiness: no auth on /health; /ready follows the auth rule like everything else.
  const status = healthRoutes(s.health);
  app.get('/health', status);
  // Browsers ask for it when the owner opens /admin/; not worth an error line.
  app.get('/favicon.ico', (_req, res) => {
    res.status(204).end();
  });

  // The standard client surfaces answer every error (auth, rate limit, ours) in their SDKs' shape.
  app.use('/ollama', errorShape(ollamaErrorBody));
  app.use('/openai/v1', errorShape(openaiErrorBody));

  app.use(authenticate(config.auth));
  app.use(status);

  if (config.rateLimitPerMin > 0) app.use(['/v1', '/ollama', '/openai/v1'], rateLimiter(config.rateLimitPerMin));
  // The lane (X-Priority / USER_PRIORITY): a bad header is refused before the body is read.
  app.use(['/v1', '/ollama', '/openai/v1'], assignPriority(config.upstreams.userPriority));

  app.use(express.json({ limit: config.bodyLimit, type: ['application/json', 'application/*+json'], verify: verifyJsonBody }));
  app.use(['/v1', '/admin', '/ollama', '/openai/v1'], rememberMount);
  // The generation routes first: every request walks the routers mounted before its own.
  app.use('/v1', generationRoutes(s.generation, s.jobs, s.cache, s.metrics));
  app.use('/v1', inferenceRoutes(s.structured, s.embeddings, s.generation, s.jobs, s.cache, s.metrics));
  app.use('/v1', modelRoutes(s.catalog, config.models));
  app.use(metricsRoutes(s.metrics, config));
  app.use('/v1', jobRoutes(s.jobs, config.auth));
  app.use('/v1', waldusRoutes(s.waldus, s.generation, s.jobs));
  app.use('/admin', requireAdmin(config.auth), adminRoutes(s.containers, s.models, s.pool));
  app.use('/admin', requireAdmin(config.auth), dashboardRoutes(s));
  app.use('/ollama', ollamaNativeRoutes(s.passthrough, config.auth, s.pool));
  app.use('/openai/v1', openaiRoutes(s.passthrough));

  app.use(notFoundHandler);
  app.use(errorHandler);
  return app;
}
