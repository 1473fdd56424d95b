import { statfsSync } from 'node:fs';
import os from 'node:os';
import request from 'supertest';
import type { ContainerDetails, DockerClient } from '../../src/clients/docker.types';
import { closedPortUrl, startHarness, type Harness } from '../support/harness';

const ADMIN = `Basic ${Buffer.from('owner:Qw7rT2xZp9LmN4vB').toString('base64')}`;
const ENV = { AUTH_USERS: 'owner:Qw7rT2xZp9LmN4vB', ADMIN_USERS: 'owner', MODELS: 'llama3.1:8b, absent-model:1b', MODELS_VOLUME_PATH: os.tmpdir() };

/** The value of one sample line of the Prometheus text (`name{labels} value`); undefined when absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

async function scrape(h: Harness): Promise<string> {
  return (await request(h.app).get('/metrics').set('Authorization', ADMIN).expect(200)).text;
}

function container(over: Partial<ContainerDetails>): ContainerDetails {
  return {
    id: 'c1',
    name: 'ai-local-core-ollama-1',
    image: 'ollama/ollama:0.20.6',
    imageId: 'sha256:1',
    state: 'running',
    running: true,
    health: 'healthy',
    startedAt: '2026-12-03T22:00:00Z',
    finishedAt: null,
    restartCount: 0,
    oomKilled: false,
    exitCode: null,
    labels: {},
    ...over,
  };
}

describe('the gauges the alert rules read', () => {
  test('When Ollama answers, then up = 1, each model of MODELS present or not, disk, RAM, and the error counters at 0', async () => {
    const h = await startHarness(ENV);
    try {
      const text = await scrape(h);
      expect(sample(text, 'ai_local_ollama_up')).toBe(1);
      expect(sample(text, 'ai_local_model_present{model="llama3.1:8b"}')).toBe(1);
      expect(sample(text, 'ai_local_model_present{model="absent-model:1b"}')).toBe(0);
      const fs = statfsSync(os.tmpdir());
      const free = sample(text, 'ai_local_models_volume_free_bytes')!;
      // the same filesystem; other processes (a parallel build, a stack run) write meanwhile, so within
      // 1 GB or 5 % of its size, whichever is larger
      expect(free).toBeLessThanOrEqual(fs.blocks * fs.bsize);
      expect(Math.abs(free - fs.bavail * fs.bsize)).toBeLessThan(Math.max(2 ** 30, 0.05 * fs.blocks * fs.bsize));
      const total = sample(text, 'ai_local_host_memory_total_bytes')!;
      const available = sample(text, 'ai_local_host_memory_available_bytes')!;
      expect(total).toBeGreaterThan(2 ** 28);
      expect(available).toBeGreaterThan(0);
      expect(available).toBeLessThanOrEqual(total);
      for (const code of ['QUEUE_FULL', 'INSUFFICIENT_MEMORY', 'OLLAMA_UNAVAILABLE']) expect(sample(text, `ai_local_errors_total{code="${code}"}`)).toBe(0);
      // no Docker API in this harness: the container's numbers are unknown, not 0
      expect(sample(text, 'ai_local_ollama_container_restart_count')).toBeNaN();
      expect(sample(text, 'ai_local_ollama_container_oom_killed')).toBeNaN();
    } finally {
      await h.close();
    }
  });

  test('When Ollama does not answer, then up = 0 and the models are unknown (NaN: ModelMissing must not fire)', async () => {
    const h = await startHarness({ ...ENV, OLLAMA_BASE_URL: await closedPortUrl(), OLLAMA_RETRIES: '0' });
    try {
      const text = await scrape(h);
      expect(sample(text, 'ai_local_ollama_up')).toBe(0);
      expect(sample(text, 'ai_local_model_present{model="llama3.1:8b"}')).toBeNaN();
    } finally {
      await h.close();
    }
  });

  test('When the models volume path does not exist, then its free bytes are NaN, the rest still scrapes', async () => {
    const h = await startHarness({ ...ENV, MODELS_VOLUME_PATH: '/nonexistent-models-volume' });
    try {
      const text = await scrape(h);
      expect(sample(text, 'ai_local_models_volume_free_bytes')).toBeNaN();
      expect(sample(text, 'ai_local_ollama_up')).toBe(1);
    } finally {
      await h.close();
    }
  });

  test('When Docker reports restarts and an OOM kill, then the gauges carry them, from one inspect for many scrapes', async () => {
    let calls = 0;
    const docker = {
      endpoint: 'tcp://fake:2375',
      findContainer: () => {
        calls++;
        return Promise.resolve(container({ restartCount: 4, oomKilled: true }));
      },
    } as unknown as DockerClient;
    const h = await startHarness(ENV, {}, undefined, { docker });
    try {
      for (let i = 0; i < 5; i++) {
        const text = await scrape(h);
        expect(sample(text, 'ai_local_ollama_container_restart_count')).toBe(4);
        expect(sample(text, 'ai_local_ollama_container_oom_killed')).toBe(1);
      }
      expect(calls).toBe(1);
    } finally {
      await h.close();
    }
  });
});
