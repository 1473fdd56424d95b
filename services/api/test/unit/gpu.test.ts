import type { DockerClient, ExecResult } from '../../src/clients/docker.types';
import { ContainerNotFoundError } from '../../src/errors';
import { GpuService, NVIDIA_SMI_QUERY, parseNvidiaSmi } from '../../src/services/gpu.service';

// Recorded on an RTX 3060 12 GB (driver 550) with llama3.1:8b loaded, idle and generating.
const IDLE = '0, NVIDIA GeForce RTX 3060, 6230, 12288, 0, 41, 17.82, 170.00\n';
const BUSY = '0, NVIDIA GeForce RTX 3060, 6418, 12288, 97, 63, 162.35, 170.00\n';
// Some boards report no power reading.
const NO_POWER = '0, NVIDIA GeForce RTX 3060 Laptop GPU, 512, 6144, 3, 48, [N/A], [N/A]\n';

function fakeDocker(results: Array<ExecResult | Error>): DockerClient & { calls: string[][] } {
  const calls: string[][] = [];
  return {
    calls,
    endpoint: 'fake',
    ping: async () => undefined,
    findContainer: async () => {
      throw new Error('unused');
    },
    inspect: async () => {
      throw new Error('unused');
    },
    restart: async () => undefined,
    exec: async (_id, cmd) => {
      calls.push(cmd);
      const next = results.shift();
      if (next instanceof Error) throw next;
      return next!;
    },
  };
}

describe('nvidia-smi telemetry', () => {
  test('When nvidia-smi output is parsed, then every field comes out as a number (N/A as null)', () => {
    expect(parseNvidiaSmi(BUSY)).toEqual([
      {
        index: 0,
        name: 'NVIDIA GeForce RTX 3060',
        memoryUsedMiB: 6418,
        memoryTotalMiB: 12288,
        utilizationPct: 97,
        temperatureC: 63,
        powerDrawW: 162.35,
        powerLimitW: 170,
      },
    ]);
    expect(parseNvidiaSmi(NO_POWER)[0]).toMatchObject({ powerDrawW: null, powerLimitW: null, memoryTotalMiB: 6144 });
    expect(() => parseNvidiaSmi('garbage')).toThrow(/unexpected nvidia-smi line/);
  });

  test('When sampled over time, then VRAM share is computed and energy is integrated', async () => {
    let now = 0;
    const docker = fakeDocker([
      { exitCode: 0, stdout: IDLE, stderr: '' },
      { exitCode: 0, stdout: BUSY, stderr: '' },
    ]);
    const gpu = new GpuService(
      async () => ({ id: 'c1', docker }),
      () => now,
    );
    const first = await gpu.read();
    expect(first.gpu?.[0]).toMatchObject({ memoryUsedPct: 50.7, temperatureC: 41 });
    now += 3_600_000; // one hour later
    const second = await gpu.read();
    // trapezoid: (17.82 + 162.35) / 2 W for 1 h
    expect(second.energy).toMatchObject({ whSinceStart: 90.09, samples: 2 });
    expect(docker.calls[0]).toEqual(NVIDIA_SMI_QUERY);
  });

  test('When the container has no nvidia-smi (CPU or Mac), then gpu is null with the reason', async () => {
    const gpu = new GpuService(async () => ({
      id: 'c1',
      docker: fakeDocker([{ exitCode: 127, stdout: '', stderr: 'exec: "nvidia-smi": executable file not found in $PATH' }]),
    }));
    const r = await gpu.read();
    expect(r.gpu).toBeNull();
    expect(r.reason).toContain('no NVIDIA runtime');
  });

  test('When there is no ollama container (native Ollama.app), then gpu is null saying so', async () => {
    const gpu = new GpuService(async () => {
      throw new ContainerNotFoundError('the ollama service');
    });
    const r = await gpu.read();
    expect(r).toMatchObject({ gpu: null, reason: expect.stringContaining('CONTAINER_NOT_FOUND') });
  });

  test('When nvidia-smi fails for another reason, then the reason carries its output', async () => {
    const gpu = new GpuService(async () => ({
      id: 'c',
      docker: fakeDocker([{ exitCode: 9, stdout: '', stderr: 'NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver.' }]),
    }));
    expect((await gpu.read()).reason).toContain('could not communicate with the NVIDIA driver');
  });
});
