/**
 * GPU telemetry from the GPU exporter sidecar (GPU_EXPORTER_URL, clients/gpu-exporter.client.ts):
 * the API needs no GPU access and no Docker exec. Unset (CPU mode, the Mac's native Ollama.app) or
 * failing, the answer is `{"gpu": null, "reason": ...}`, never an error. Energy since start is an
 * estimate: the power readings sampled here, integrated over time (trapezoids).
 */
import type { GpuExporterClient, GpuReading } from '../clients/gpu-exporter.client';
import { AppError } from '../errors';

export type { GpuReading } from '../clients/gpu-exporter.client';

export interface GpuReport {
  gpu: (GpuReading & { memoryUsedPct: number })[] | null;
  reason?: string;
  energy?: { whSinceStart: number; since: string; samples: number };
  sampledAt: string;
}

export const NO_EXPORTER_REASON =
  'GPU_EXPORTER_URL is not set: no GPU telemetry (CPU mode, or the Mac, where the native Ollama.app uses Metal; the GPU overlay docker-compose.gpu.yml sets it)';

export class GpuService {
  private energyWh = 0;
  private last?: { at: number; watts: number };
  private samples = 0;
  private readonly startedAt: number;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly exporter: GpuExporterClient | undefined,
    private readonly now: () => number = Date.now,
  ) {
    this.startedAt = now();
  }

  async read(): Promise<GpuReport> {
    const sampledAt = new Date(this.now()).toISOString();
    if (!this.exporter) return { gpu: null, reason: NO_EXPORTER_REASON, sampledAt };
    let readings: GpuReading[];
    try {
      readings = await this.exporter.read();
    } catch (err) {
      const e = err instanceof AppError ? err : undefined;
      return { gpu: null, reason: `${e?.code ?? 'GPU_EXPORTER_UNAVAILABLE'}: ${e?.message ?? 'unknown error'}`, sampledAt };
    }
    this.integrate(readings.reduce((w, r) => w + (r.powerDrawW ?? 0), 0));
    return {
      gpu: readings.map((r) => ({ ...r, memoryUsedPct: r.memoryTotalMiB ? Math.round((r.memoryUsedMiB / r.memoryTotalMiB) * 1000) / 10 : 0 })),
      energy: this.energy(),
      sampledAt,
    };
  }

  /** Energy integrated so far (for /metrics, without a new sample). */
  energy(): { whSinceStart: number; since: string; samples: number } {
    return { whSinceStart: Math.round(this.energyWh * 100) / 100, since: new Date(this.startedAt).toISOString(), samples: this.samples };
  }

  /** Samples periodically so the energy estimate covers the whole uptime, not just page views. */
  start(intervalS: number): void {
    if (intervalS <= 0 || !this.exporter) return;
    this.timer = setInterval(() => void this.read().catch(() => undefined), intervalS * 1000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private integrate(watts: number): void {
    const at = this.now();
    if (this.last) this.energyWh += ((this.last.watts + watts) / 2) * ((at - this.last.at) / 3_600_000);
    this.last = { at, watts };
    this.samples++;
  }
}
