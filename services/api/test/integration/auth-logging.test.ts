import request from 'supertest';
import { startHarness, type Harness } from '../support/harness';

const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;

describe('basic auth and what the logs hold', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ AUTH_USERS: 'waldus:pw-waldus-123,owner:pw-owner-456', ADMIN_USERS: 'owner', CAPTURE_LOGS: '1' });
  });
  afterAll(() => h.close());

  test('When no credentials are sent, then 401 JSON with a challenge; /health stays open', async () => {
    const res = await request(h.app).get('/v1/models').expect(401);
    expect(res.headers['www-authenticate']).toMatch(/^Basic realm="ai-local-core"/);
    expect(res.body.error).toMatchObject({ code: 'UNAUTHORIZED', message: 'Authentication required' });
    await request(h.app).get('/health').expect(200);
    await request(h.app).get('/ready').expect(401);
  });

  test('When the password is wrong, then 401 Invalid credentials', async () => {
    const res = await request(h.app).get('/v1/models').set('Authorization', basic('waldus', 'nope')).expect(401);
    expect(res.body.error.message).toBe('Invalid credentials');
  });

  test('When credentials are right, then the request is served', async () => {
    await request(h.app).get('/v1/models').set('Authorization', basic('waldus', 'pw-waldus-123')).expect(200);
  });

  test('When a generation is logged, then the line has id, route, status, model and tokens but no prompt, output or password', async () => {
    h.logs.length = 0;
    const res = await request(h.app)
      .post('/v1/generate')
      .set('Authorization', basic('waldus', 'pw-waldus-123'))
      .set('X-Request-Id', 'log-check-1')
      .send({ prompt: 'TOP-SECRET-PROMPT' })
      .expect(200);
    const all = h.logs.join('\n');
    expect(all).not.toContain('TOP-SECRET-PROMPT');
    expect(all).not.toContain(res.body.response);
    expect(all).not.toContain('pw-waldus-123');
    const line = h.logs.map((l) => JSON.parse(l)).find((l) => l.message === 'request' && l.requestId === 'log-check-1');
    expect(line).toMatchObject({
      method: 'POST',
      route: '/v1/generate',
      status: 200,
      user: 'waldus',
      model: 'llama3.1:8b',
      queueWaitMs: expect.any(Number),
      tokens: expect.any(Number),
    });
    expect(line.durationMs).toEqual(expect.any(Number));
  });
});

describe('auth off', () => {
  test('When AUTH_USERS is empty, then the routes are open (main.ts logs a loud warning)', async () => {
    const h = await startHarness({});
    try {
      await request(h.app).get('/v1/models').expect(200);
    } finally {
      await h.close();
    }
  });
});

describe('per-user rate limit', () => {
  test('When a user exceeds RATE_LIMIT_PER_MIN, then 429 RATE_LIMITED with Retry-After; another user is not affected', async () => {
    const h = await startHarness({ AUTH_USERS: 'a:pa,b:pb', RATE_LIMIT_PER_MIN: '2' });
    try {
      await request(h.app).get('/v1/models').set('Authorization', basic('a', 'pa')).expect(200);
      await request(h.app).get('/v1/models').set('Authorization', basic('a', 'pa')).expect(200);
      const res = await request(h.app).get('/v1/models').set('Authorization', basic('a', 'pa')).expect(429);
      expect(res.body.error.code).toBe('RATE_LIMITED');
      expect(res.headers['retry-after']).toBe('60');
      await request(h.app).get('/v1/models').set('Authorization', basic('b', 'pb')).expect(200);
    } finally {
      await h.close();
    }
  });
});
