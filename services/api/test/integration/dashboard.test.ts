import request from 'supertest';
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
    // No Docker API in this test: the GPU card says why instead of failing the page.
    expect(res.body.gpu).toMatchObject({ gpu: null, reason: expect.stringContaining('DOCKER_UNAVAILABLE') });
  });

  test('When a regular user asks for the page or the GPU, then 403', async () => {
    await request(h.app).get('/admin/').set('Authorization', USER).expect(403);
    await request(h.app).get('/admin/gpu').set('Authorization', USER).expect(403);
  });

  test('When /admin/gpu is read without a Docker API, then 200 with gpu null and the reason', async () => {
    const res = await request(h.app).get('/admin/gpu').set('Authorization', ADMIN).expect(200);
    expect(res.body.gpu).toBeNull();
  });
});
