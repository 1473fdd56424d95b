/**
 * GPU telemetry: `nvidia-smi` run inside the ollama container through the Docker API (exec), so
 * the API needs no GPU access itself. On the Mac (native Ollama, no container) or without the
 * NVIDIA runtime the answer is `{"gpu": null, "reason": ...}`. Energy since start is an estimate:
 * the power readings sampled here, integrated over time (trapezoids).
 */
import { AppError } from '../errors';
import type { DockerClient } from '../clients/docker.types';

export interface GpuReading {
  index: number;
  name: string;
  memoryUsedMiB: number;
  memoryTotalMiB: number;
  utilizationPct: number | null;
  temperatureC: number | null;
  powerDrawW: number | null;
  powerLimitW: number | null;
}

export interface GpuReport {
  gpu: (GpuReading & { memoryUsedPct: number })[] | null;
  reason?: string;
  energy?: { whSinceStart: number; since: string; samples: number };
  sampledAt: string;
}

export const NVIDIA_SMI_QUERY = [
  'nvidia-smi',
  '--query-gpu=index,name,memory.used,memory.total,utilization.gpu,temperature.gpu,power.draw,power.limit',
  '--format=csv,noheader,nounits',
];

function num(v: string | undefined): number | null {
  if (v === undefined) return null;
  const t = v.trim();
  if (!t || /N\/A|Not Supported|\[/i.test(t)) return null;
  const n = Number(t);
  return Number.isFinite(n) ? n : null;
}

/** Parses `nvidia-smi --format=csv,noheader,nounits` lines (exported for tests with recorded output). */
export function parseNvidiaSmi(stdout: string): GpuReading[] {
  return stdout
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map((line) => {
      const f = line.split(',').map((x) => x.trim());
      if (f.length < 8) throw new Error(`unexpected nvidia-smi line: ${line.slice(0, 120)}`);
      return {
        index: num(f[0]) ?? 0,
        name: f[1],
        memoryUsedMiB: num(f[2]) ?? 0,
        memoryTotalMiB: num(f[3]) ?? 0,
        utilizationPct: num(f[4]),
        temperatureC: num(f[5]),
        powerDrawW: num(f[6]),
        powerLimitW: num(f[7]),
      };
    });
}

export type ContainerLocator = () => Promise<{ id: string; docker: DockerClient }>;

export class GpuService {
  private energyWh = 0;
  private last?: { at: number; watts: number };
  private samples = 0;
  private readonly startedAt: number;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly locate: ContainerLocator,
    private readonly now: () => number = Date.now,
  ) {
    this.startedAt = now();
  }

  async read(): Promise<GpuReport> {
    const sampledAt = new Date(this.now()).toISOString();
    let target: { id: string; docker: DockerClient };
    try {
      target = await this.locate();
    } catch (err) {
      const e = err instanceof AppError ? err : undefined;
      return {
        gpu: null,
        reason: `No ollama container to ask (${e?.code ?? 'error'}: ${e?.message ?? 'unknown'}); on the Mac the native Ollama.app uses Metal and has no NVIDIA GPU`,
        sampledAt,
      };
    }
    let out: { exitCode: number | null; stdout: string; stderr: string };
    try {
      out = await target.docker.exec(target.id, NVIDIA_SMI_QUERY, { timeoutMs: 10_000, maxOutputBytes: 64 * 1024 });
    } catch (err) {
      const e = err instanceof AppError ? err : undefined;
      const missing = /executable file not found|no such file|not found in \$PATH/i.test(e?.message ?? String(err));
      return {
        gpu: null,
        reason: missing
          ? 'nvidia-smi is not available in the ollama container: no NVIDIA runtime (CPU mode, or docker-compose.gpu.yml not used)'
          : `nvidia-smi could not run: ${e?.message ?? 'unknown error'}`,
        sampledAt,
      };
    }
    if (out.exitCode !== 0) {
      const text = `${out.stderr} ${out.stdout}`.trim().slice(0, 300);
      const missing = out.exitCode === 127 || out.exitCode === 126 || /not found/i.test(text);
      return {
        gpu: null,
        reason: missing
          ? 'nvidia-smi is not available in the ollama container: no NVIDIA runtime (CPU mode, or docker-compose.gpu.yml not used)'
          : `nvidia-smi failed (exit ${out.exitCode}): ${text}`,
        sampledAt,
      };
    }
    const readings = parseNvidiaSmi(out.stdout);
    this.integrate(readings.reduce((w, r) => w + (r.powerDrawW ?? 0), 0));
    return {
      gpu: readings.map((r) => ({ ...r, memoryUsedPct: r.memoryTotalMiB ? Math.round((r.memoryUsedMiB / r.memoryTotalMiB) * 1000) / 10 : 0 })),
      energy: { whSinceStart: Math.round(this.energyWh * 100) / 100, since: new Date(this.startedAt).toISOString(), samples: this.samples },
      sampledAt,
    };
  }

  /** Samples periodically so the energy estimate covers the whole uptime, not just page views. */
  start(intervalS: number): void {
    if (intervalS <= 0) return;
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
