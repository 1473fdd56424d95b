/**
 * The GPU exporter sidecar (utkuozdemir/nvidia_gpu_exporter, GPU overlay only): GET GPU_EXPORTER_URL
 * returns Prometheus text with one series per GPU (label `uuid`). The only file that knows its HTTP
 * and its metric names; failures become GPU_EXPORTER_UNAVAILABLE. No Docker exec: the API never
 * runs anything in another container.
 *
 * The text format is parsed here (~30 lines: `name{labels} value [timestamp]`, `#` lines skipped)
 * rather than with an npm parser: the few on npm are unmaintained, and only a handful of gauges are read.
 */
import axios from 'axios';
import { AppError } from '../errors';

export interface GpuReading {
  index: number;
  uuid: string;
  name: string;
  driverVersion: string | null;
  memoryUsedMiB: number;
  memoryTotalMiB: number;
  utilizationPct: number | null;
  temperatureC: number | null;
  fanSpeedPct: number | null;
  powerDrawW: number | null;
  powerLimitW: number | null;
}

export interface GpuExporterClient {
  readonly url: string;
  read(): Promise<GpuReading[]>;
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?\s*/g;

function unescapeLabel(v: string): string {
  return v.replace(/\\(["\\n])/g, (_m, c: string) => (c === 'n' ? '\n' : c));
}

/** Samples of a Prometheus text exposition (comments and malformed lines skipped; NaN/±Inf kept as numbers). */
export function parsePrometheusText(text: string): Sample[] {
  const out: Sample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1]] = unescapeLabel(l[2]);
    const value = m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : Number(m[3]);
    out.push({ name: m[1], labels, value });
  }
  return out;
}

const MIB = 1024 * 1024;
const round1 = (n: number) => Math.round(n * 10) / 10;

/** One GpuReading per `uuid`, from the exporter's gauges (a gauge it lacks, e.g. no fan, reads null). */
export function gpuReadings(samples: Sample[]): GpuReading[] {
  const byUuid = new Map<string, Map<string, Sample>>();
  for (const s of samples) {
    if (!s.name.startsWith('nvidia_smi_') || !s.labels.uuid) continue;
    const gauges = byUuid.get(s.labels.uuid) ?? new Map<string, Sample>();
    gauges.set(s.name, s);
    byUuid.set(s.labels.uuid, gauges);
  }
  const readings = [...byUuid].map(([uuid, g], i): GpuReading => {
    const val = (name: string) => {
      const v = g.get(name)?.value;
      return v === undefined || !Number.isFinite(v) ? null : v;
    };
    const info = g.get('nvidia_smi_gpu_info')?.labels ?? {};
    const ratioPct = (name: string) => {
      const v = val(name);
      return v === null ? null : round1(v * 100);
    };
    return {
      index: val('nvidia_smi_index') ?? i,
      uuid,
      name: info.name ?? g.get('nvidia_smi_name')?.labels.name ?? 'unknown GPU',
      driverVersion: info.driver_version ?? null,
      memoryUsedMiB: Math.round((val('nvidia_smi_memory_used_bytes') ?? 0) / MIB),
      memoryTotalMiB: Math.round((val('nvidia_smi_memory_total_bytes') ?? 0) / MIB),
      utilizationPct: ratioPct('nvidia_smi_utilization_gpu_ratio'),
      temperatureC: val('nvidia_smi_temperature_gpu'),
      fanSpeedPct: ratioPct('nvidia_smi_fan_speed_ratio'),
      powerDrawW: val('nvidia_smi_power_draw_watts'),
      powerLimitW: val('nvidia_smi_power_limit_watts') ?? val('nvidia_smi_enforced_power_limit_watts'),
    };
  });
  return readings.sort((a, b) => a.index - b.index);
}

export function createGpuExporterClient(opts: { url: string; timeoutMs?: number }): GpuExporterClient {
  const http = axios.create({ timeout: opts.timeoutMs ?? 5000, responseType: 'text', maxContentLength: 1024 * 1024, maxRedirects: 0 });
  return {
    url: opts.url,
    async read() {
      let text: string;
      try {
        const res = await http.get<string>(opts.url, { validateStatus: (s) => s === 200 });
        text = String(res.data);
      } catch (err) {
        const status = axios.isAxiosError(err) ? err.response?.status : undefined;
        const why = status ? `HTTP ${status}` : axios.isAxiosError(err) ? (err.code ?? err.message) : String(err);
        throw new AppError('GPU_EXPORTER_UNAVAILABLE', 503, `The GPU exporter at GPU_EXPORTER_URL did not answer (${why})`, {
          hint: 'Is the gpu-exporter service running (docker-compose.gpu.yml)? Its logs say why nvidia-smi fails.',
          cause: err,
        });
      }
      const readings = gpuReadings(parsePrometheusText(text));
      if (!readings.length) {
        throw new AppError('GPU_EXPORTER_UNAVAILABLE', 503, 'The GPU exporter answered without any nvidia_smi_* series: it sees no GPU', {
          hint: 'Check the gpu-exporter logs: the NVIDIA runtime or driver is missing.',
        });
      }
      return readings;
    },
  };
}
