/**
 * The gauges the alert rules read (docs/monitoring.md, "Series the api provides"): is Ollama up,
 * the ollama container's restart count and OOM kill, each model of MODELS installed or not, the
 * free space of the models volume, host RAM. Every scrape reads one snapshot, rebuilt at most every
 * few seconds from sources that cache themselves (readiness, the model list, the container's inspect
 * data), so a scrape never costs more than a look at those caches, a statfs and /proc/meminfo.
 * A value the api cannot know (no Docker, Ollama not answering for the model list) is NaN:
 * comparisons with NaN are false, so an unknown never fires an alert.
 */
import { readFile, statfs } from 'node:fs/promises';
import os from 'node:os';
import client from 'prom-client';
import type { ContainerDetails } from '../clients/docker.types';
import type { HealthService } from './health.service';
import { normalizeModelName, type ModelCatalog } from './model-catalog';
import type { OllamaContainerService } from './ollama-container.service';

export interface MonitoringGaugeDeps {
  health: Pick<HealthService, 'readiness'>;
  catalog: Pick<ModelCatalog, 'tags'>;
  containers: Pick<OllamaContainerService, 'recentDetails'>;
  /** The models of MODELS. */
  models: readonly string[];
  /** A path on the models volume. */
  modelsVolumePath: string;
  /** /proc/meminfo's text (a test passes its own). */
  meminfo?: () => Promise<string>;
  now?: () => number;
}

export interface Snapshot {
  ollamaUp: number;
  restartCount: number;
  oomKilled: number;
  present: Map<string, number>;
  volumeFreeBytes: number;
  memTotalBytes: number;
  memAvailableBytes: number;
}

const SNAPSHOT_MAX_AGE_MS = 5_000;

/** MemTotal / MemAvailable of /proc/meminfo in bytes; os.totalmem/os.freemem where it is missing (macOS). */
export function parseMeminfo(text: string): { totalBytes: number; availableBytes: number } {
  const kb = (key: string) => {
    const m = new RegExp(`^${key}:\\s+(\\d+)\\s*kB`, 'm').exec(text);
    return m ? Number(m[1]) * 1024 : NaN;
  };
  const total = kb('MemTotal');
  const available = kb('MemAvailable');
  return { totalBytes: Number.isNaN(total) ? os.totalmem() : total, availableBytes: Number.isNaN(available) ? os.freemem() : available };
}

export class MonitoringGauges {
  private snapshot?: { at: number; value: Promise<Snapshot> };
  private readonly now: () => number;

  constructor(private readonly deps: MonitoringGaugeDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** Registers the gauges; each one's collect() reads the shared snapshot. */
  register(registry: client.Registry): void {
    const r = [registry];
    const read = () => this.current();
    const plain = [
      ['ai_local_ollama_up', "1 when the api's last check of Ollama got an answer, else 0", (s: Snapshot) => s.ollamaUp],
      ['ai_local_ollama_container_restart_count', "Docker's RestartCount of the ollama container (NaN without Docker)", (s: Snapshot) => s.restartCount],
      ['ai_local_ollama_container_oom_killed', "Docker's State.OOMKilled of the ollama container, 1/0 (NaN without Docker)", (s: Snapshot) => s.oomKilled],
      ['ai_local_models_volume_free_bytes', 'Free bytes of the filesystem holding the models volume (MODELS_VOLUME_PATH)', (s: Snapshot) => s.volumeFreeBytes],
      ['ai_local_host_memory_total_bytes', 'Host RAM (MemTotal)', (s: Snapshot) => s.memTotalBytes],
      ['ai_local_host_memory_available_bytes', 'Host RAM available (MemAvailable)', (s: Snapshot) => s.memAvailableBytes],
    ] as const;
    for (const [name, help, pick] of plain) {
      new client.Gauge({
        name,
        help,
        registers: r,
        async collect() {
          this.set(pick(await read()));
        },
      });
    }
    new client.Gauge({
      name: 'ai_local_model_present',
      help: 'Each model of MODELS: 1 installed in Ollama, 0 missing (NaN while Ollama does not answer)',
      labelNames: ['model'],
      registers: r,
      async collect() {
        const s = await read();
        this.reset();
        for (const [model, v] of s.present) this.set({ model }, v);
      },
    });
  }

  /** The snapshot of the last few seconds, or a new one (one build at a time). */
  current(): Promise<Snapshot> {
    const at = this.now();
    if (!this.snapshot || at - this.snapshot.at >= SNAPSHOT_MAX_AGE_MS) this.snapshot = { at, value: this.build() };
    return this.snapshot.value;
  }

  private async build(): Promise<Snapshot> {
    const d = this.deps;
    const [ready, tags, container, volumeFreeBytes, mem] = await Promise.all([
      d.health.readiness().catch(() => null),
      d.catalog.tags().catch(() => null),
      d.containers.recentDetails().catch((): ContainerDetails | null => null),
      statfs(d.modelsVolumePath).then(
        (s) => s.bavail * s.bsize,
        () => NaN,
      ),
      (d.meminfo ?? (() => readFile('/proc/meminfo', 'utf8')))().then(parseMeminfo, () => parseMeminfo('')),
    ]);
    const installed = tags ? new Set(tags.map((t) => normalizeModelName(t.name))) : null;
    const present = new Map<string, number>();
    for (const model of d.models) present.set(model, installed ? Number(installed.has(normalizeModelName(model))) : NaN);
    return {
      ollamaUp: ready?.ollama.reachable ? 1 : 0,
      restartCount: container ? container.restartCount : NaN,
      oomKilled: container ? Number(container.oomKilled) : NaN,
      present,
      volumeFreeBytes,
      memTotalBytes: mem.totalBytes,
      memAvailableBytes: mem.availableBytes,
    };
  }
}
