import request from 'supertest';
import { BUSY, FakeGpuExporter, IDLE } from '../fakes/fake-gpu-exporter';
import { startHarness, type Harness } from '../support/harness';

const ADMIN = `Basic ${Buffer.from('owner:Do4-tG7hJ1zR5cW2').toString('base64')}`;
const USER = `Basic ${Buffer.from('waldus:Dw8-kP3xN6vB2qM9').toString('base64')}`;

describe('the owner’s status page', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ AUTH_USERS: 'waldus:Dw8-kP3xN6vB2qM9,owner:Do4-tG7hJ1zR5cW2', ADMIN_USERS: 'owner' });
  });
  afterAll(() => h.close());

  test('When an admin opens /admin/, then the HTML page and its script are served', async () => {
    const page = await request(h.app).get('/admin/').set('Authorization', ADMIN).expect(200);
    expect(page.headers['content-type']).toContain('text/html');
    expect(page.text).toContain('<script src="status.js"></script>');
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
    const js = await request(h.app).get('/admin/status.js').set('Authorization', ADMIN).expect(200);
    expect(js.headers['content-type']).toContain('javascript');
    expect(js.text).toContain("'status.json'");
    // the 24 h charts come through the api (history), drawn as inline SVG: no script from elsewhere
    expect(js.text).toContain("'history?series='");
    expect(page.text).not.toMatch(/<script[^>]+src="(https?:)?\/\//);
    expect(page.text).toContain('id="charts"');
    expect(page.text).toContain('id="alerts"');
  });

  test('When the page polls status.json, then health, models, queue, rate and recent errors are there', async () => {
    await request(h.app).post('/v1/generate').set('Authorization', USER).send({ prompt: 'hi' }).expect(200);
    await request(h.app).post('/v1/generate').set('Authorization', USER).send({ prompt: 'hi', model: 'absent:1b' }).expect(404);
    const res = await request(h.app).get('/admin/status.json').set('Authorization', ADMIN).expect(200);
    expect(res.body.ready).toMatchObject({ status: 'ready', ollama: { reachable: true } });
    expect(res.body.loadedModels).toEqual([expect.objectContaining({ name: 'llama3.1:8b', vramShare: expect.any(Number) })]);
    expect(res.body.queue).toEqual(expect.arrayContaining([expect.objectContaining({ model: 'llama3.1:8b', active: 0, queued: 0 })]));
    expect(res.body.recentErrors[0]).toMatchObject({ code: 'MODEL_NOT_FOUND', status: 404, route: '/v1/generate' });
    expect(typeof res.body.requestRatePerS).toBe('number');
    expect(res.body.host.memoryTotalBytes).toBeGreaterThan(res.body.host.memoryAvailableBytes);
    expect(res.body.host.models).toMatchObject({ 'llama3.1:8b': true });
    // No GPU_EXPORTER_URL in this test: the GPU card says why instead of failing the page.
    expect(res.body.gpu).toMatchObject({ gpu: null, reason: expect.stringContaining('GPU_EXPORTER_URL is not set') });
  });

  test('When a regular user asks for the page or the GPU, then 403', async () => {
    await request(h.app).get('/admin/').set('Authorization', USER).expect(403);
    await request(h.app).get('/admin/gpu').set('Authorization', USER).expect(403);
  });

  test('When /admin/gpu is read without GPU_EXPORTER_URL, then 200 with gpu null and the reason; /metrics says gpu_up 0', async () => {
    const res = await request(h.app).get('/admin/gpu').set('Authorization', ADMIN).expect(200);
    expect(res.body).toMatchObject({ gpu: null, reason: expect.stringContaining('GPU_EXPORTER_URL') });
    const m = await request(h.app).get('/metrics').set('Authorization', ADMIN).expect(200);
    expect(m.text).toMatch(/^ai_local_gpu_up 0$/m);
    expect(m.text).not.toMatch(/^ai_local_gpu_power_watts\{/m);
  });
});

describe('GPU telemetry from the exporter sidecar (GPU_EXPORTER_URL)', () => {
  let h: Harness;
  let exporter: FakeGpuExporter;
  beforeAll(async () => {
    exporter = await FakeGpuExporter.start();
    h = await startHarness({ AUTH_USERS: 'waldus:Dw8-kP3xN6vB2qM9,owner:Do4-tG7hJ1zR5cW2', ADMIN_USERS: 'owner', GPU_EXPORTER_URL: exporter.url });
  });
  afterAll(async () => {
    await h.close();
    await exporter.close();
  });
  beforeEach(() => {
    exporter.text = IDLE;
    exporter.status = 200;
  });

  test('When /admin/gpu is read, then each GPU with VRAM, utilization, temperature, power and the energy estimate', async () => {
    const res = await request(h.app).get('/admin/gpu').set('Authorization', ADMIN).expect(200);
    expect(res.body.gpu).toEqual([
      expect.objectContaining({
        index: 0,
        name: 'NVIDIA GeForce RTX 3060',
        memoryUsedMiB: 6230,
        memoryTotalMiB: 12288,
        memoryUsedPct: 50.7,
        utilizationPct: 0,
        temperatureC: 41,
        powerDrawW: 17.82,
        powerLimitW: 170,
      }),
    ]);
    expect(res.body.energy).toMatchObject({ whSinceStart: expect.any(Number), samples: expect.any(Number) });
    const status = await request(h.app).get('/admin/status.json').set('Authorization', ADMIN).expect(200);
    expect(status.body.gpu.gpu[0]).toMatchObject({ name: 'NVIDIA GeForce RTX 3060' });
  });

  test('When /metrics is scraped, then the GPU gauges carry the exporter readings', async () => {
    exporter.text = BUSY;
    const m = await request(h.app).get('/metrics').set('Authorization', ADMIN).expect(200);
    expect(m.text).toMatch(/^ai_local_gpu_up 1$/m);
    expect(m.text).toMatch(/^ai_local_gpu_power_watts\{gpu="0",name="NVIDIA GeForce RTX 3060"\} 162.35$/m);
    expect(m.text).toMatch(/^ai_local_gpu_temperature_celsius\{gpu="0",name="NVIDIA GeForce RTX 3060"\} 63$/m);
    expect(m.text).toMatch(/^ai_local_gpu_utilization_ratio\{gpu="0",name="NVIDIA GeForce RTX 3060"\} 0.97$/m);
    expect(m.text).toMatch(/^ai_local_gpu_memory_total_bytes\{gpu="0",name="NVIDIA GeForce RTX 3060"\} 12884901888$/m);
    expect(m.text).toMatch(/^ai_local_gpu_energy_watt_hours \d/m);
  });

  test('When the exporter fails, then /admin/gpu, the status page and /metrics still answer 200, with the reason', async () => {
    exporter.status = 500;
    const res = await request(h.app).get('/admin/gpu').set('Authorization', ADMIN).expect(200);
    expect(res.body).toMatchObject({ gpu: null, reason: expect.stringContaining('GPU_EXPORTER_UNAVAILABLE') });
    await request(h.app).get('/admin/status.json').set('Authorization', ADMIN).expect(200);
    await new Promise((r) => setTimeout(r, 1100)); // past the per-scrape memo
    const m = await request(h.app).get('/metrics').set('Authorization', ADMIN).expect(200);
    expect(m.text).toMatch(/^ai_local_gpu_up 0$/m);
  });
});
