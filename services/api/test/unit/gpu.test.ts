import { createGpuExporterClient, gpuReadings, parsePrometheusText } from '../../src/clients/gpu-exporter.client';
import { GpuService } from '../../src/services/gpu.service';
import { closedPortUrl } from '../support/harness';
import { BUSY, FakeGpuExporter, GPU_UUID, IDLE, NO_GPU, exporterText } from '../fakes/fake-gpu-exporter';

describe('GPU telemetry from the exporter sidecar', () => {
  let exporter: FakeGpuExporter;
  beforeAll(async () => {
    exporter = await FakeGpuExporter.start();
  });
  afterAll(() => exporter.close());
  beforeEach(() => {
    exporter.text = IDLE;
    exporter.status = 200;
  });

  test('When the exporter text is parsed, then every gauge comes out in the /admin/gpu units', () => {
    expect(gpuReadings(parsePrometheusText(BUSY))).toEqual([
      {
        index: 0,
        uuid: GPU_UUID,
        name: 'NVIDIA GeForce RTX 3060',
        driverVersion: '550.54.14',
        memoryUsedMiB: 6418,
        memoryTotalMiB: 12288,
        utilizationPct: 97,
        temperatureC: 63,
        fanSpeedPct: 30,
        powerDrawW: 162.35,
        powerLimitW: 170,
      },
    ]);
  });

  test('When a board reports no power or fan (NaN), then those read null', () => {
    const [r] = gpuReadings(parsePrometheusText(exporterText({ powerW: 'NaN', tempC: 48, usedMiB: 512, util: 0.03, fan: 'NaN' })));
    expect(r).toMatchObject({ powerDrawW: null, fanSpeedPct: null, temperatureC: 48, utilizationPct: 3 });
  });

  test('When the text has label values with escapes, comments, timestamps and junk lines, then the parser keeps the samples', () => {
    const s = parsePrometheusText('# HELP x y\nbad line here\nm{a="q\\"uote",b="back\\\\slash"} 1.5e+3 1700000000000\nn 2\n');
    expect(s).toEqual([
      { name: 'm', labels: { a: 'q"uote', b: 'back\\slash' }, value: 1500 },
      { name: 'n', labels: {}, value: 2 },
    ]);
  });

  test('When sampled over time over HTTP, then VRAM share is computed and energy is integrated', async () => {
    let now = 0;
    const gpu = new GpuService(createGpuExporterClient({ url: exporter.url }), () => now);
    const first = await gpu.read();
    expect(first.gpu?.[0]).toMatchObject({ memoryUsedPct: 50.7, temperatureC: 41, name: 'NVIDIA GeForce RTX 3060' });
    exporter.text = BUSY;
    now += 3_600_000; // one hour later
    const second = await gpu.read();
    // trapezoid: (17.82 + 162.35) / 2 W for 1 h
    expect(second.energy).toMatchObject({ whSinceStart: 90.09, samples: 2 });
  });

  test('When GPU_EXPORTER_URL is unset (CPU mode, Mac), then gpu is null with the reason', async () => {
    const r = await new GpuService(undefined).read();
    expect(r).toMatchObject({ gpu: null, reason: expect.stringContaining('GPU_EXPORTER_URL is not set') });
  });

  test('When the exporter fails (HTTP 500), answers without a GPU, or is not there, then gpu is null with the reason', async () => {
    const gpu = new GpuService(createGpuExporterClient({ url: exporter.url }));
    exporter.status = 500;
    expect(await gpu.read()).toMatchObject({ gpu: null, reason: expect.stringContaining('HTTP 500') });
    exporter.status = 200;
    exporter.text = NO_GPU;
    expect(await gpu.read()).toMatchObject({ gpu: null, reason: expect.stringContaining('without any nvidia_smi_* series') });
    const gone = new GpuService(createGpuExporterClient({ url: `${await closedPortUrl()}/metrics`, timeoutMs: 2000 }));
    expect(await gone.read()).toMatchObject({ gpu: null, reason: expect.stringContaining('GPU_EXPORTER_UNAVAILABLE') });
  });

  test('When the periodic sampler runs, then it reads the exporter without a page view', async () => {
    const gpu = new GpuService(createGpuExporterClient({ url: exporter.url }));
    const before = exporter.hits;
    gpu.start(0.05);
    await new Promise((r) => setTimeout(r, 300));
    gpu.stop();
    expect(exporter.hits).toBeGreaterThan(before);
    expect(gpu.energy().samples).toBeGreaterThan(0);
  });
});
