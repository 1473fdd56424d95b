/**
 * A loopback stand-in for the GPU exporter sidecar (utkuozdemir/nvidia_gpu_exporter 1.14): serves
 * whatever metrics text (and status) the test sets at GET /metrics.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

const UUID = '5a8c2f37-1e4b-4c9d-8f0a-6b2e7d3c9a14';

/**
 * Exposition in the exporter's format (its metric names, `uuid` label, gpu_info labels, the Go and
 * process metrics it also serves) for one RTX 3060 12 GB with the given live values.
 */
export function exporterText(v: { powerW: number | string; tempC: number; usedMiB: number; util: number; fan?: number | string }): string {
  return [
    '# HELP go_goroutines Number of goroutines that currently exist.',
    '# TYPE go_goroutines gauge',
    'go_goroutines 9',
    "# HELP nvidia_gpu_exporter_build_info A metric with a constant '1' value labeled by version, revision, branch, goversion from which nvidia_gpu_exporter was built, and the goos and goarch for the build.",
    '# TYPE nvidia_gpu_exporter_build_info gauge',
    'nvidia_gpu_exporter_build_info{branch="HEAD",goarch="amd64",goos="linux",goversion="go1.22.5",revision="b51a1c1",tags="",version="1.14.0"} 1',
    '# HELP nvidia_smi_command_exit_code Exit code of the last scrape command',
    '# TYPE nvidia_smi_command_exit_code gauge',
    'nvidia_smi_command_exit_code 0',
    '# HELP nvidia_smi_failed_scrapes_total Number of failed scrapes',
    '# TYPE nvidia_smi_failed_scrapes_total counter',
    'nvidia_smi_failed_scrapes_total 0',
    "# HELP nvidia_smi_gpu_info A metric with a constant '1' value labeled by gpu uuid, name, driver_model_current, driver_model_pending, vbios_version, driver_version.",
    '# TYPE nvidia_smi_gpu_info gauge',
    `nvidia_smi_gpu_info{driver_model_current="",driver_model_pending="",driver_version="550.54.14",name="NVIDIA GeForce RTX 3060",uuid="${UUID}",vbios_version="94.06.2f.00.9e"} 1`,
    '# HELP nvidia_smi_index index',
    '# TYPE nvidia_smi_index gauge',
    `nvidia_smi_index{uuid="${UUID}"} 0`,
    '# HELP nvidia_smi_fan_speed_ratio fan.speed [%]',
    '# TYPE nvidia_smi_fan_speed_ratio gauge',
    `nvidia_smi_fan_speed_ratio{uuid="${UUID}"} ${v.fan ?? 0.3}`,
    '# HELP nvidia_smi_memory_total_bytes memory.total [MiB]',
    '# TYPE nvidia_smi_memory_total_bytes gauge',
    `nvidia_smi_memory_total_bytes{uuid="${UUID}"} 1.2884901888e+10`,
    '# HELP nvidia_smi_memory_used_bytes memory.used [MiB]',
    '# TYPE nvidia_smi_memory_used_bytes gauge',
    `nvidia_smi_memory_used_bytes{uuid="${UUID}"} ${v.usedMiB * 1024 * 1024}`,
    '# HELP nvidia_smi_power_draw_watts power.draw [W]',
    '# TYPE nvidia_smi_power_draw_watts gauge',
    `nvidia_smi_power_draw_watts{uuid="${UUID}"} ${v.powerW}`,
    '# HELP nvidia_smi_power_limit_watts power.limit [W]',
    '# TYPE nvidia_smi_power_limit_watts gauge',
    `nvidia_smi_power_limit_watts{uuid="${UUID}"} 170`,
    '# HELP nvidia_smi_temperature_gpu temperature.gpu',
    '# TYPE nvidia_smi_temperature_gpu gauge',
    `nvidia_smi_temperature_gpu{uuid="${UUID}"} ${v.tempC}`,
    '# HELP nvidia_smi_utilization_gpu_ratio utilization.gpu [%]',
    '# TYPE nvidia_smi_utilization_gpu_ratio gauge',
    `nvidia_smi_utilization_gpu_ratio{uuid="${UUID}"} ${v.util}`,
    '',
  ].join('\n');
}

export const GPU_UUID = UUID;
export const IDLE = exporterText({ powerW: 17.82, tempC: 41, usedMiB: 6230, util: 0 });
export const BUSY = exporterText({ powerW: 162.35, tempC: 63, usedMiB: 6418, util: 0.97 });
/** What the exporter serves when nvidia-smi fails: its own metrics, no nvidia_smi_* series with a uuid. */
export const NO_GPU = IDLE.split('\n')
  .filter((l) => !/uuid=/.test(l))
  .join('\n')
  .replace('nvidia_smi_command_exit_code 0', 'nvidia_smi_command_exit_code 9')
  .replace('nvidia_smi_failed_scrapes_total 0', 'nvidia_smi_failed_scrapes_total 3');

export class FakeGpuExporter {
  text = IDLE;
  status = 200;
  hits = 0;
  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(): Promise<FakeGpuExporter> {
    const ref: { self?: FakeGpuExporter } = {};
    const server = createServer((req, res) => {
      const self = ref.self!;
      self.hits++;
      if (req.url !== '/metrics') {
        res.writeHead(404).end('404 page not found\n');
        return;
      }
      res.writeHead(self.status, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' }).end(self.status === 200 ? self.text : 'error\n');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    ref.self = new FakeGpuExporter(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`);
    return ref.self;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
}
