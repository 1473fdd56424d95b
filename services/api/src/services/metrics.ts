/**
 * Prometheus metrics (prom-client: the standard Node client, with correct histogram and text
 * exposition handling that is not worth rewriting). One registry per Metrics (one per createServices), so tests stay isolated.
 * Also keeps the short in-memory history the status page shows (recent errors, request rate).
 */
import client from 'prom-client';
import type { LaneStats } from './lane-queue';
import type { GpuReading, GpuReport } from './gpu.service';

/** What the queue gauges read at each scrape. */
export interface QueueView {
  stats(): LaneStats[];
}

const LATENCY_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
const TTFT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 40, 80];

export interface RecentError {
  at: string;
  code: string;
  status: number;
  route: string;
}

export class Metrics {
  readonly registry = new client.Registry();
  private readonly requests: client.Counter<'route' | 'method' | 'status'>;
  private readonly duration: client.Histogram<'route' | 'method'>;
  private readonly ttft: client.Histogram<'model'>;
  private readonly tokens: client.Counter<'model'>;
  private readonly tps: client.Histogram<'model'>;
  private readonly queueWait: client.Histogram<'model'>;
  private readonly errors: client.Counter<'code'>;
  private readonly cache: client.Counter<'kind' | 'result'>;
  private readonly recentErrors: RecentError[] = [];
  /** Request counts per second for the last minute, for the status page. */
  private readonly perSecond = new Map<number, number>();

  constructor(private readonly now: () => number = Date.now) {
    const r = [this.registry];
    client.collectDefaultMetrics({ register: this.registry, prefix: 'ai_local_api_' });
    this.requests = new client.Counter({
      name: 'ai_local_http_requests_total',
      help: 'HTTP requests by route, method and status',
      labelNames: ['route', 'method', 'status'],
      registers: r,
    });
    this.duration = new client.Histogram({
      name: 'ai_local_http_request_duration_seconds',
      help: 'Time to the end of the response',
      labelNames: ['route', 'method'],
      buckets: LATENCY_BUCKETS,
      registers: r,
    });
    this.ttft = new client.Histogram({
      name: 'ai_local_time_to_first_token_seconds',
      help: 'From sending to Ollama to the first token',
      labelNames: ['model'],
      buckets: TTFT_BUCKETS,
      registers: r,
    });
    this.tokens = new client.Counter({ name: 'ai_local_tokens_generated_total', help: 'Completion tokens generated', labelNames: ['model'], registers: r });
    this.tps = new client.Histogram({
      name: 'ai_local_tokens_per_second',
      help: 'Decode speed per generation (eval_count / eval_duration)',
      labelNames: ['model'],
      buckets: [1, 5, 10, 20, 30, 40, 50, 60, 80, 100, 150, 200],
      registers: r,
    });
    this.queueWait = new client.Histogram({
      name: 'ai_local_queue_wait_seconds',
      help: 'Wait for a GPU slot',
      labelNames: ['model'],
      buckets: LATENCY_BUCKETS,
      registers: r,
    });
    this.errors = new client.Counter({
      name: 'ai_local_errors_total',
      help: 'Errors answered, by code (upstream ones included)',
      labelNames: ['code'],
      registers: r,
    });
    // Present from the start: increase() cannot see the step from "no series" to 1, so the first
    // refusal after a start would otherwise go unnoticed by the alert rules (docs/monitoring.md).
    for (const code of ['QUEUE_FULL', 'INSUFFICIENT_MEMORY', 'OLLAMA_UNAVAILABLE']) this.errors.inc({ code }, 0);
    this.cache = new client.Counter({ name: 'ai_local_cache_requests_total', help: 'Response cache lookups', labelNames: ['kind', 'result'], registers: r });
  }

  /** Gauges of the queue's depth and running requests per model, read at each scrape. */
  observeQueue(queue: QueueView): void {
    const r = [this.registry];
    const gauges = [
      ['ai_local_queue_depth', 'Requests waiting for a GPU slot, per model', 'queued'],
      ['ai_local_queue_running', 'Requests holding a GPU slot, per model', 'active'],
    ] as const;
    for (const [name, help, field] of gauges) {
      new client.Gauge({
        name,
        help,
        labelNames: ['model'],
        registers: r,
        collect() {
          this.reset();
          for (const s of queue.stats()) this.set({ model: s.model }, s[field]);
        },
      });
    }
  }

  /**
   * GPU gauges from the GPU exporter (through GpuService), read once per scrape: every gauge of one
   * scrape shares the same reading. ai_local_gpu_up is 0 (and the others absent) without telemetry.
   */
  observeGpu(read: () => Promise<GpuReport>): void {
    const r = [this.registry];
    let pending: { at: number; report: Promise<GpuReport> } | undefined;
    const sample = () => {
      if (!pending || this.now() - pending.at > 1000) pending = { at: this.now(), report: read() };
      return pending.report;
    };
    new client.Gauge({
      name: 'ai_local_gpu_up',
      help: '1 when the GPU exporter answered with at least one GPU, else 0 (see /admin/gpu for the reason)',
      registers: r,
      async collect() {
        this.set((await sample()).gpu ? 1 : 0);
      },
    });
    new client.Gauge({
      name: 'ai_local_gpu_energy_watt_hours',
      help: 'Energy drawn by the GPUs since the API started, integrated from the sampled power readings (estimate)',
      registers: r,
      async collect() {
        const rep = await sample();
        this.reset();
        if (rep.energy) this.set(rep.energy.whSinceStart);
      },
    });
    const perGpu = [
      ['ai_local_gpu_power_watts', 'GPU power draw', (g: GpuReading) => g.powerDrawW],
      ['ai_local_gpu_temperature_celsius', 'GPU core temperature', (g: GpuReading) => g.temperatureC],
      ['ai_local_gpu_utilization_ratio', 'GPU utilization (0-1)', (g: GpuReading) => (g.utilizationPct === null ? null : g.utilizationPct / 100)],
      ['ai_local_gpu_memory_used_bytes', 'VRAM in use', (g: GpuReading) => g.memoryUsedMiB * 1024 * 1024],
      ['ai_local_gpu_memory_total_bytes', 'VRAM size', (g: GpuReading) => g.memoryTotalMiB * 1024 * 1024],
    ] as const;
    for (const [name, help, pick] of perGpu) {
      new client.Gauge({
        name,
        help,
        labelNames: ['gpu', 'name'],
        registers: r,
        async collect() {
          const rep = await sample();
          this.reset();
          for (const g of rep.gpu ?? []) {
            const v = pick(g);
            if (v !== null) this.set({ gpu: String(g.index), name: g.name }, v);
          }
        },
      });
    }
  }

  request(route: string, method: string, status: number, seconds: number): void {
    this.requests.inc({ route, method, status: String(status) });
    this.duration.observe({ route, method }, seconds);
    const sec = Math.floor(this.now() / 1000);
    this.perSecond.set(sec, (this.perSecond.get(sec) ?? 0) + 1);
    for (const k of this.perSecond.keys()) if (k < sec - 60) this.perSecond.delete(k);
  }

  error(code: string, status: number, route: string): void {
    this.errors.inc({ code });
    this.recentErrors.unshift({ at: new Date(this.now()).toISOString(), code, status, route });
    this.recentErrors.length = Math.min(this.recentErrors.length, 20);
  }

  firstToken(model: string, seconds: number): void {
    this.ttft.observe({ model }, seconds);
  }

  generated(model: string, completionTokens: number, tokensPerSecond: number | null): void {
    this.tokens.inc({ model }, completionTokens);
    if (tokensPerSecond) this.tps.observe({ model }, tokensPerSecond);
  }

  waited(model: string, seconds: number): void {
    this.queueWait.observe({ model }, seconds);
  }

  cacheLookup(kind: string, hit: boolean): void {
    this.cache.inc({ kind, result: hit ? 'hit' : 'miss' });
  }

  /** Requests per second over the last minute. */
  requestRate(): number {
    const sec = Math.floor(this.now() / 1000);
    let n = 0;
    for (const [k, v] of this.perSecond) if (k >= sec - 60 && k < sec) n += v;
    return Math.round((n / 60) * 100) / 100;
  }

  errorsRecent(): RecentError[] {
    return [...this.recentErrors];
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/** A label-less gauge whose value is read at each scrape (cached state only: never I/O per scrape). */
export function readGauge(registry: client.Registry, name: string, help: string, read: () => number): void {
  new client.Gauge({
    name,
    help,
    registers: [registry],
    collect() {
      this.set(read());
    },
  });
}
