import request from 'supertest';
import { ResponseCache, canonicalJson } from '../../src/services/response-cache';
import { startHarness, type Harness } from '../support/harness';

const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
const W = basic('waldus', 'Cw5-nB8vR2tK7mX4');
const ADMIN = basic('owner', 'Co3-jH9pL6qW1zF8');
const SCRAPER = basic('prom', 'Cp7-dS4gY1uN5eT2');

describe('response cache', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ AUTH_USERS: 'waldus:Cw5-nB8vR2tK7mX4,owner:Co3-jH9pL6qW1zF8,prom:Cp7-dS4gY1uN5eT2', ADMIN_USERS: 'owner', METRICS_USERS: 'prom' });
  });
  afterAll(() => h.close());
  beforeEach(() => {
    h.fake.requests.length = 0;
  });
  const upstream = (path: string) => h.fake.requests.filter((r) => r.path === path).length;

  test('When the same embeddings are asked twice, then the second is a HIT with no upstream call', async () => {
    const body = { input: ['cache me', 'and me'] };
    const miss = await request(h.app).post('/v1/embeddings').set('Authorization', W).send(body).expect(200);
    expect(miss.headers['x-cache']).toBe('MISS');
    const hit = await request(h.app).post('/v1/embeddings').set('Authorization', W).send(body).expect(200);
    expect(hit.headers['x-cache']).toBe('HIT');
    expect(hit.body).toEqual(miss.body);
    expect(upstream('/api/embed')).toBe(1);
  });

  test('When Cache-Control: no-cache is sent, then the cache is bypassed', async () => {
    const body = { input: 'bypass me' };
    await request(h.app).post('/v1/embeddings').set('Authorization', W).send(body).expect(200);
    const again = await request(h.app).post('/v1/embeddings').set('Authorization', W).set('Cache-Control', 'no-cache').send(body).expect(200);
    expect(again.headers['x-cache']).toBe('MISS');
    expect(upstream('/api/embed')).toBe(2);
  });

  test('When a generation has temperature 0 and a seed, then it is cached; with keys in another order too', async () => {
    const a = { prompt: 'deterministic?', options: { temperature: 0, seed: 7 } };
    const b = { options: { seed: 7, temperature: 0 }, prompt: 'deterministic?' };
    const first = await request(h.app).post('/v1/generate').set('Authorization', W).send(a).expect(200);
    expect(first.headers['x-cache']).toBe('MISS');
    const second = await request(h.app).post('/v1/generate').set('Authorization', W).send(b).expect(200);
    expect(second.headers['x-cache']).toBe('HIT');
    expect(second.body.response).toBe(first.body.response);
    expect(upstream('/api/generate')).toBe(1);
  });

  test('When a generation is not deterministic, then it is never cached', async () => {
    const body = { prompt: 'creative', options: { temperature: 0.8, seed: 7 } };
    const r1 = await request(h.app).post('/v1/generate').set('Authorization', W).send(body).expect(200);
    await request(h.app).post('/v1/generate').set('Authorization', W).send(body).expect(200);
    expect(r1.headers['x-cache']).toBeUndefined();
    expect(upstream('/api/generate')).toBe(2);
  });

  test('When the model differs (alias resolved), then the entries differ', async () => {
    await request(h.app).post('/v1/embeddings').set('Authorization', W).send({ input: 'x', model: 'nomic-embed-text' }).expect(200);
    const other = await request(h.app).post('/v1/embeddings').set('Authorization', W).send({ input: 'x', model: 'llama3.1:8b' }).expect(200);
    expect(other.headers['x-cache']).toBe('MISS');
  });

  test('When /metrics is read by an admin or a scrape user, then it has the request, token, queue and cache series', async () => {
    await request(h.app).post('/v1/generate').set('Authorization', W).send({ prompt: 'count tokens' }).expect(200);
    await request(h.app).post('/v1/generate').set('Authorization', W).send({ prompt: 'x', model: 'missing:1b' }).expect(404);
    const res = await request(h.app).get('/metrics').set('Authorization', SCRAPER).expect(200);
    expect(res.headers['content-type']).toContain('text/plain');
    const text = res.text;
    expect(text).toMatch(/ai_local_http_requests_total\{route="\/v1\/generate",method="POST",status="200"\} \d+/);
    expect(text).toMatch(/ai_local_http_request_duration_seconds_bucket\{le="0.005",route="\/v1\/generate",method="POST"\}/);
    expect(text).toMatch(/ai_local_tokens_generated_total\{model="llama3.1:8b"\} [1-9]\d*/);
    expect(text).toMatch(/ai_local_time_to_first_token_seconds_count\{model="llama3.1:8b"\} [1-9]/);
    expect(text).toMatch(/ai_local_tokens_per_second_count\{model="llama3.1:8b"\} [1-9]/);
    expect(text).toMatch(/ai_local_queue_wait_seconds_count\{model="llama3.1:8b"\} [1-9]/);
    expect(text).toMatch(/ai_local_queue_depth\{model="llama3.1:8b"\} 0/);
    expect(text).toMatch(/ai_local_errors_total\{code="MODEL_NOT_FOUND"\} 1/);
    expect(text).toMatch(/ai_local_cache_requests_total\{kind="embeddings",result="hit"\} [1-9]/);
    expect(text).toMatch(/ai_local_api_process_resident_memory_bytes \d+/);
    await request(h.app).get('/metrics').set('Authorization', ADMIN).expect(200);
  });

  test('When a regular user asks for /metrics, then 403', async () => {
    const res = await request(h.app).get('/metrics').set('Authorization', W).expect(403);
    expect(res.body.error.code).toBe('FORBIDDEN');
  });
});

describe('ResponseCache', () => {
  test('When entries expire or the cache is full, then they are dropped (LRU)', () => {
    let now = 0;
    const c = new ResponseCache({ maxEntries: 2, ttlS: 10 }, () => now);
    c.set('a', 1);
    c.set('b', 2);
    expect(c.get('a')).toBe(1); // a is now the most recent
    c.set('c', 3);
    expect(c.get('b')).toBeUndefined();
    expect(c.get('a')).toBe(1);
    now += 11_000;
    expect(c.get('a')).toBeUndefined();
  });

  test('When key order differs, then the canonical form is the same', () => {
    expect(canonicalJson({ b: [1, { y: 2, x: 1 }], a: 'z' })).toBe(canonicalJson({ a: 'z', b: [1, { x: 1, y: 2 }] }));
  });
});
