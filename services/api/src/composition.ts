/**
 * The composition root: every client and service is built here, once, in dependency order.
 * main.ts and the tests' harness both build through it, so the tests run the real wiring.
 */
import { createDockerClient } from './clients/docker.client';
import type { DockerClient } from './clients/docker.types';
import { createImageFetcher, type ImageFetcher } from './clients/image-fetcher';
import { createGpuExporterClient, type GpuExporterClient } from './clients/gpu-exporter.client';
import { createOllamaClient } from './clients/ollama.client';
import { createOpenAiClient } from './clients/openai.client';
import { createPrometheusClient, type PrometheusClient } from './clients/prometheus.client';
import type { OllamaClient } from './clients/ollama.types';
import type { Config } from './config';
import { ConfigError } from './errors';
import type { Logger } from './logger';
import { EmbeddingService } from './services/embedding.service';
import { GenerationService } from './services/generation.service';
import { GpuService } from './services/gpu.service';
import { HealthService } from './services/health.service';
import { JobStore } from './services/job-store';
import { Metrics } from './services/metrics';
import { ModelAdminService } from './services/model-admin.service';
import { ModelCatalog } from './services/model-catalog';
import { MonitoringGauges } from './services/monitoring-gauges';
import { OllamaContainerService } from './services/ollama-container.service';
import { OllamaState } from './services/ollama-state';
import { PassthroughService } from './services/passthrough.service';
import { PrometheusView } from './services/prometheus-view';
import { ResponseCache } from './services/response-cache';
import { StructuredService } from './services/structured.service';
import { WaldusService } from './services/waldus.service';
import { UpstreamPool, type UpstreamClient } from './services/upstream-pool';
import { WarmKeeper } from './services/warm-keeper';

export interface Clients {
  /** The first `ollama` upstream (OLLAMA_BASE_URL without UPSTREAMS): models, warm keeper, admin. */
  ollama: OllamaClient;
  /** Every upstream's client by name (the pool); `ollama`'s entry is the same object. */
  upstreams: ReadonlyMap<string, UpstreamClient>;
  /** The Docker API (admin restart/status); absent → those routes answer 503 DOCKER_UNAVAILABLE. */
  docker?: DockerClient;
  /** Fetches caller-given image URLs (SSRF-guarded). */
  images: ImageFetcher;
  /** Prometheus (energy, history, alerts on the status page); absent without PROMETHEUS_URL. */
  prometheus?: PrometheusClient;
  /** The GPU exporter sidecar; absent (GPU_EXPORTER_URL unset) → no GPU telemetry. */
  gpuExporter?: GpuExporterClient;
}

/** The clients from the configuration; a test passes its own for any of them (`docker: undefined` = none). */
export function createClients(config: Config, logger: Logger, given: Partial<Clients> = {}): Clients {
  const pool = config.upstreams;
  const firstOllama = pool.upstreams.find((u) => u.kind === 'ollama');
  const ollama =
    given.ollama ??
    createOllamaClient({
      baseUrl: firstOllama?.url ?? config.ollama.baseUrl,
      requestTimeoutMs: Math.max(config.ollama.connectTimeoutMs, 10_000),
      retries: config.ollama.retries,
      connectTimeoutMs: firstOllama?.timeouts.connectMs ?? config.ollama.connectTimeoutMs,
    });
  const url = config.monitoring.prometheusUrl;
  return {
    ollama,
    upstreams: given.upstreams ?? upstreamClients(config, ollama, firstOllama?.name),
    docker: 'docker' in given ? given.docker : dockerOrNone(config, logger),
    images: given.images ?? createImageFetcher(config.images),
    prometheus: 'prometheus' in given ? given.prometheus : url ? createPrometheusClient({ baseUrl: url }) : undefined,
    gpuExporter: 'gpuExporter' in given ? given.gpuExporter : config.gpuExporterUrl ? createGpuExporterClient({ url: config.gpuExporterUrl }) : undefined,
  };
}

/** One client per upstream; the first Ollama's is `ollama` itself (one keep-alive pool, one fake in tests). */
function upstreamClients(config: Config, ollama: OllamaClient, firstOllama: string | undefined): Map<string, UpstreamClient> {
  const out = new Map<string, UpstreamClient>();
  for (const u of config.upstreams.upstreams) {
    const common = { requestTimeoutMs: Math.max(u.timeouts.connectMs, 10_000), retries: config.ollama.retries, connectTimeoutMs: u.timeouts.connectMs };
    if (u.name === firstOllama) out.set(u.name, ollama);
    else if (u.kind === 'ollama') out.set(u.name, createOllamaClient({ baseUrl: u.url, ...common }));
    else out.set(u.name, createOpenAiClient({ name: u.name, baseUrl: u.url, apiKey: u.apiKey, ...common }));
  }
  return out;
}

/** A bad DOCKER_HOST must not take generation down: the admin docker routes answer 503 instead. */
function dockerOrNone(config: Config, logger: Logger): DockerClient | undefined {
  try {
    return createDockerClient({ host: config.docker.host });
  } catch (err) {
    logger.error('admin docker routes disabled: DOCKER_HOST is unusable', { problems: err instanceof ConfigError ? err.problems : String(err) });
    return undefined;
  }
}

export interface Services {
  metrics: Metrics;
  /** The upstreams, their queues (one lane queue per upstream) and breakers. */
  pool: UpstreamPool;
  state: OllamaState;
  cache: ResponseCache;
  catalog: ModelCatalog;
  warm: WarmKeeper;
  health: HealthService;
  generation: GenerationService;
  structured: StructuredService;
  embeddings: EmbeddingService;
  jobs: JobStore;
  waldus: WaldusService;
  passthrough: PassthroughService;
  containers: OllamaContainerService;
  models: ModelAdminService;
  gpu: GpuService;
  prometheus: PrometheusView;
  gauges: MonitoringGauges;
}

export function createServices(config: Config, clients: Clients, logger: Logger): Services {
  const { ollama, docker, images } = clients;
  const metrics = new Metrics();
  const pool = new UpstreamPool({
    config: config.upstreams,
    clients: clients.upstreams,
    queue: { maxQueue: config.queue.maxQueue, timeoutMs: config.queue.timeoutS * 1000 },
    logger,
  });
  pool.onSlot = (model, waitedMs) => metrics.waited(model, waitedMs / 1000);
  metrics.observeQueue(pool);
  pool.register(metrics.registry);
  const state = new OllamaState();
  const cache = new ResponseCache(config.cache);
  // One upstream: the catalog asks it directly, as always. A pool: the union of what they serve.
  const catalog = new ModelCatalog(config.upstreams.implicit ? ollama : pool.catalogSource(pool.ollamaMember() ? ollama : undefined), config.models);
  const warm = new WarmKeeper({ config, ollama, catalog, state, logger });
  const health = new HealthService(ollama, catalog, state, config.models.default, config.health.cacheTtlS, logger, warm, pool);
  const onActivity = () => warm.touch();
  const generation = new GenerationService({ config, catalog, pool, state, metrics, onActivity });
  const structured = new StructuredService(generation, config.structured.maxAttempts);
  const embeddings = new EmbeddingService(generation, pool, config);
  const jobs = new JobStore(config.jobs);
  const waldus = new WaldusService(generation, structured, catalog, images);
  const passthrough = new PassthroughService({ config, ollama, pool, generation, catalog, state, metrics, onActivity });
  const containers = new OllamaContainerService({ config, ollama, docker, state, catalog, health, logger });
  const models = new ModelAdminService({ config, ollama, state, catalog, health, logger });
  const gpu = new GpuService(clients.gpuExporter);
  metrics.observeGpu(() => gpu.read());
  const gauges = new MonitoringGauges({ health, catalog, containers, models: config.monitoring.models, modelsVolumePath: config.monitoring.modelsVolumePath });
  gauges.register(metrics.registry);
  const prometheus = new PrometheusView(clients.prometheus);
  prometheus.register(metrics.registry);
  return {
    metrics,
    pool,
    state,
    cache,
    catalog,
    warm,
    health,
    generation,
    structured,
    embeddings,
    jobs,
    waldus,
    passthrough,
    containers,
    models,
    gpu,
    prometheus,
    gauges,
  };
}
