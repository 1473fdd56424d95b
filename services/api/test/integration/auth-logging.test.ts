import request from 'supertest';
import { startHarness, type Harness } from '../support/harness';

const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;

describe('basic auth and what the logs hold', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ AUTH_USERS: 'waldus:Wq7-pLz3Rk9vXt2mNa,owner:Ow5-hYc8Tj1dGs6eKb', ADMIN_USERS: 'owner', CAPTURE_LOGS: '1' });
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
    await request(h.app).get('/v1/models').set('Authorization', basic('waldus', 'Wq7-pLz3Rk9vXt2mNa')).expect(200);
  });

  test('When a generation is logged, then the line has id, route, status, model and tokens but no prompt, output or password', async () => {
    h.logs.length = 0;
    const res = await request(h.app)
      .post('/v1/generate')
      .set('Authorization', basic('waldus', 'Wq7-pLz3Rk9vXt2mNa'))
      .set('X-Request-Id', 'log-check-1')
      .send({ prompt: 'TOP-SECRET-PROMPT' })
      .expect(200);
    const all = h.logs.join('\n');
    expect(all).not.toContain('TOP-SECRET-PROMPT');
    expect(all).not.toContain(res.body.response);
    expect(all).not.toContain('Wq7-pLz3Rk9vXt2mNa');
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
    const h = await startHarness({ AUTH_USERS: 'a:Pa4-vN8qW2zL7xR1,b:Pb9-kM3tY6cH0jS5', RATE_LIMIT_PER_MIN: '2' });
    try {
      await request(h.app).get('/v1/models').set('Authorization', basic('a', 'Pa4-vN8qW2zL7xR1')).expect(200);
      await request(h.app).get('/v1/models').set('Authorization', basic('a', 'Pa4-vN8qW2zL7xR1')).expect(200);
      const res = await request(h.app).get('/v1/models').set('Authorization', basic('a', 'Pa4-vN8qW2zL7xR1')).expect(429);
      expect(res.body.error.code).toBe('RATE_LIMITED');
      expect(res.headers['retry-after']).toBe('60');
      await request(h.app).get('/v1/models').set('Authorization', basic('b', 'Pb9-kM3tY6cH0jS5')).expect(200);
    } finally {
      await h.close();
    }
  });
});
