/**
 * createApp(deps): the Express app and nothing else — no listen, no process.*, no env reads.
 * Services are built here from the injected clients, so tests can pass fakes for every edge.
 */
import express, { type Express } from 'express';
import helmet from 'helmet';
import { ipKeyGenerator, rateLimit } from 'express-rate-limit';
import type { Config } from './config';
import type { Logger } from './logger';
import type { OllamaClient } from './clients/ollama.types';
import type { DockerClient } from './clients/docker.types';
import { AppError } from './errors';
import { authenticate, requireAdmin, userOf } from './http/auth';
import { adminRoutes } from './http/admin.routes';
import { errorBody, errorHandler, notFoundHandler } from './http/error-handler';
import { generationRoutes } from './http/generation.routes';
import { inferenceRoutes } from './http/inference.routes';
import { rememberMount, requestContext } from './http/request-context';
import { healthRoutes, modelRoutes } from './http/status.routes';
import { ollamaNativeRoutes } from './http/ollama-native.routes';
import { openaiRoutes } from './http/openai.routes';
import { errorShape, ollamaErrorBody, openaiErrorBody } from './http/surface-errors';
import { PassthroughService } from './services/passthrough.service';
import { jobRoutes } from './http/async-jobs';
import { waldusRoutes } from './http/waldus.routes';
import { createImageFetcher, type ImageFetcher } from './clients/image-fetcher';
import { WaldusService } from './services/waldus.service';
import { Metrics } from './services/metrics';
import { WarmKeeper } from './services/warm-keeper.service';
import { ResponseCache } from './services/response-cache';
import { metricsRoutes } from './http/metrics.routes';
import { dashboardRoutes } from './http/dashboard.routes';
import { GpuService } from './services/gpu.service';
import { JobStore } from './services/jobs.service';
import { AdminService } from './services/admin.service';
import { EmbeddingService } from './services/embedding.service';
import { GenerationService } from './services/generation.service';
import { GpuQueue } from './services/gpu-queue';
import { HealthService } from './services/health.service';
import { ModelCatalog } from './services/model-catalog.service';
import { OllamaState } from './services/ollama-state';
import { StructuredService } from './services/structured.service';

export interface AppDeps {
  config: Config;
  logger: Logger;
  ollama: OllamaClient;
  /** Built by main.ts so it can drain it on shutdown; made here when absent. */
  queue?: GpuQueue;
  jobs?: JobStore;
  /** Fetches caller-given image URLs (SSRF-guarded); tests inject a resolver/classifier. */
  images?: ImageFetcher;
  state?: OllamaState;
  metrics?: Metrics;
  /** Keeps the default model loaded; main.ts starts its timer. */
  warm?: WarmKeeper;
  /** The Docker API (admin restart/status); absent → those admin routes answer 503 DOCKER_UNAVAILABLE. */
  docker?: DockerClient;
}

export function createApp(deps: AppDeps): Express {
  const { config, logger, ollama } = deps;
  const queue =
    deps.queue ??
    new GpuQueue({ maxConcurrent: config.queue.maxConcurrent, maxQueue: config.queue.maxQueue, timeoutMs: config.queue.timeoutS * 1000 });
  const state = deps.state ?? new OllamaState();
  const metrics = deps.metrics ?? new Metrics(queue);
  queue.onSlot = (model, waitedMs) => metrics.waited(model, waitedMs / 1000);
  const cache = new ResponseCache(config.cache);
  const catalog = new ModelCatalog(ollama, config.models);
  const generation = new GenerationService({ config, ollama, catalog, queue, state, metrics, onActivity: () => warm.touch() });
  const structured = new StructuredService(generation, config.structured.maxAttempts);
  const embeddings = new EmbeddingService(generation, ollama, config);
  const jobs = deps.jobs ?? new JobStore(config.jobs);
  const images = deps.images ?? createImageFetcher(config.images);
  const waldus = new WaldusService(generation, structured, catalog, images);
  const warm = deps.warm ?? new WarmKeeper({ config, ollama, catalog, state, logger });
  const health = new HealthService(ollama, catalog, state, config.models.default, config.health.cacheTtlS, logger, warm);
  const admin = new AdminService({ config, ollama, docker: deps.docker, state, catalog, health, logger });
  const gpu = new GpuService(() => admin.ollamaContainer());
  const passthrough = new PassthroughService({ config, ollama, generation, catalog, state, metrics, onActivity: () => warm.touch() });

  const app = express();
  app.locals.warm = warm;
  app.locals.gpu = gpu;
  app.disable('x-powered-by');
  app.set('trust proxy', config.trustProxy);
  app.set('etag', false);
  app.use(requestContext(logger, metrics));
  app.use(helmet());

  // Liveness and readiness: no auth on /health; /ready follows the auth rule like everything else.
  const status = healthRoutes(health);
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

  if (config.rateLimitPerMin > 0) {
    app.use(
      ['/v1', '/ollama', '/openai/v1'],
      rateLimit({
        windowMs: 60_000,
        limit: config.rateLimitPerMin,
        standardHeaders: 'draft-8',
        legacyHeaders: false,
        keyGenerator: (req) => userOf(req) ?? ipKeyGenerator(req.ip ?? 'unknown'),
        handler: (req, res) => {
          const err = new AppError('RATE_LIMITED', 429, 'Too many requests', { retryAfterS: 60, hint: `At most ${config.rateLimitPerMin} requests a minute.` });
          res.setHeader('Retry-After', '60');
          res.status(429).json(errorBody(err, req.id));
        },
      }),
    );
  }

  app.use(express.json({ limit: config.bodyLimit, type: ['application/json', 'application/*+json'] }));
  app.use(['/v1', '/admin', '/ollama', '/openai/v1'], rememberMount);
  app.use('/v1', modelRoutes(catalog, config.models));
  app.use(metricsRoutes(metrics, config));
  app.use('/v1', generationRoutes(generation, jobs, cache, metrics));
  app.use('/v1', inferenceRoutes(structured, embeddings, jobs, cache, metrics));
  app.use('/v1', jobRoutes(jobs, config.auth));
  app.use('/v1', waldusRoutes(waldus, jobs));
  app.use('/admin', requireAdmin(config.auth), adminRoutes(admin));
  app.use('/admin', requireAdmin(config.auth), dashboardRoutes({ gpu, health, catalog, queue, metrics }));
  app.use('/ollama', ollamaNativeRoutes(passthrough, config));
  app.use('/openai/v1', openaiRoutes(passthrough));

  app.use(notFoundHandler);
  app.use(errorHandler);
  return app;
}
