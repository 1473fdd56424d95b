import request from 'supertest';
import { startHarness, type Harness } from '../support/harness';
import { JobStore } from '../../src/services/job-store';

const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
const A = basic('waldus', 'Jw2-xQ7mB4nV9cL6');
const B = basic('other', 'Jo8-rT3kF5gD1sP4');

async function poll(h: Harness, id: string, auth: string, until: (s: string) => boolean) {
  for (let i = 0; i < 100; i++) {
    const res = await request(h.app).get(`/v1/jobs/${id}`).set('Authorization', auth);
    if (res.status !== 200 || until(res.body.status)) return res;
    await new Promise((r) => setTimeout(r, 30));
  }
  throw new Error('job did not reach the state');
}

describe('async jobs for long generations', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness(
      { AUTH_USERS: 'waldus:Jw2-xQ7mB4nV9cL6,other:Jo8-rT3kF5gD1sP4,owner:Jn6-yU2hZ8wE5qA3', ADMIN_USERS: 'owner', MAX_QUEUE: '1' },
      { tokenDelayMs: 20 },
    );
  });
  afterAll(() => h.close());
  beforeEach(() => h.fake.resetBehaviours());

  test('When a generation is sent with async:true, then 202 with a job id, and polling returns the same answer as a sync call', async () => {
    const res = await request(h.app).post('/v1/generate').set('Authorization', A).send({ prompt: 'hello', async: true }).expect(202);
    expect(res.body).toMatchObject({ job_id: expect.stringMatching(/^[0-9a-f-]{36}$/), status: expect.stringMatching(/queued|running/), kind: 'generate' });
    expect(res.headers.location).toBe(`/v1/jobs/${res.body.job_id}`);
    const done = await poll(h, res.body.job_id, A, (s) => s === 'done');
    expect(done.body).toMatchObject({
      status: 'done',
      kind: 'generate',
      owner: 'waldus',
      result: { model: 'llama3.1:8b', response: 'Hello from the fake Ollama.', done_reason: 'stop' },
    });
    expect(done.body.startedAt).toEqual(expect.any(String));
    expect(done.body.finishedAt).toEqual(expect.any(String));
  });

  test('When another user asks for the job, then 404; an admin may read it', async () => {
    const res = await request(h.app)
      .post('/v1/chat')
      .set('Authorization', A)
      .send({ messages: [{ role: 'user', content: 'hi' }], async: true })
      .expect(202);
    await request(h.app).get(`/v1/jobs/${res.body.job_id}`).set('Authorization', B).expect(404);
    await request(h.app).get(`/v1/jobs/${res.body.job_id}`).set('Authorization', basic('owner', 'Jn6-yU2hZ8wE5qA3')).expect(200);
  });

  test('When the generation fails, then the job is failed with the error code', async () => {
    h.fake.setBehaviour('llama3.1:8b', { kind: 'oom' });
    const res = await request(h.app).post('/v1/generate').set('Authorization', A).send({ prompt: 'x', async: true }).expect(202);
    const failed = await poll(h, res.body.job_id, A, (s) => s === 'failed');
    expect(failed.body.error).toMatchObject({ code: 'INSUFFICIENT_MEMORY', status: 503 });
  });

  test('When a structured request is async, then the job result carries the validated data', async () => {
    h.fake.queueReplies('llama3.1:8b', ['{"ok":true}']);
    const res = await request(h.app)
      .post('/v1/structured')
      .set('Authorization', A)
      .send({ prompt: 'x', schema: { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] }, async: true })
      .expect(202);
    const done = await poll(h, res.body.job_id, A, (s) => s === 'done');
    expect(done.body.result).toMatchObject({ data: { ok: true }, attempts: 1 });
  });

  test('When admission fails, then the error comes at once with its status, not as a job', async () => {
    const unknown = await request(h.app).post('/v1/generate').set('Authorization', A).send({ prompt: 'x', model: 'nope:1b', async: true }).expect(404);
    expect(unknown.body.error.code).toBe('MODEL_NOT_FOUND');
    const both = await request(h.app).post('/v1/generate').set('Authorization', A).send({ prompt: 'x', async: true, stream: true }).expect(400);
    expect(both.body.error.fields[0].message).toContain('async cannot be combined with stream');
  });

  test('When a running job is cancelled, then it stops and the upstream call is aborted', async () => {
    h.fake.setBehaviour('llama3.1:8b', { kind: 'hang' });
    const abortedBefore = h.fake.stats.aborted;
    const res = await request(h.app).post('/v1/generate').set('Authorization', A).send({ prompt: 'x', async: true }).expect(202);
    await h.fake.waitFor(() => h.fake.stats.active === 1);
    const cancelled = await request(h.app).delete(`/v1/jobs/${res.body.job_id}`).set('Authorization', A).expect(200);
    expect(cancelled.body.status).toBe('cancelled');
    await h.fake.waitFor(() => h.fake.stats.aborted === abortedBefore + 1);
  });

  test('When the id is not a UUID, then 400; an unknown UUID is 404 JOB_NOT_FOUND', async () => {
    await request(h.app).get('/v1/jobs/123').set('Authorization', A).expect(400);
    const res = await request(h.app).get('/v1/jobs/9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d').set('Authorization', A).expect(404);
    expect(res.body.error.code).toBe('JOB_NOT_FOUND');
  });
});

describe('JobStore bounds', () => {
  test('When jobs end, then they are kept for the TTL and dropped after it', async () => {
    let now = 0;
    const store = new JobStore({ ttlS: 10, max: 5 }, () => now);
    const job = store.add('generate', 'u', new AbortController(), async () => 'r');
    await new Promise((r) => setImmediate(r));
    expect(store.get(job.id, 'u', false)?.status).toBe('done');
    now += 11_000;
    expect(store.get(job.id, 'u', false)).toBeUndefined();
  });

  test('When JOBS_MAX jobs are still running, then a new one is refused with 503 QUEUE_FULL', () => {
    const store = new JobStore({ ttlS: 10, max: 2 }, () => 0);
    const never = () => new Promise<unknown>(() => undefined);
    store.add('g', 'u', new AbortController(), never);
    store.add('g', 'u', new AbortController(), never);
    expect(() => store.add('g', 'u', new AbortController(), never)).toThrow(expect.objectContaining({ code: 'QUEUE_FULL', status: 503 }));
  });

  test('When the store is full of finished jobs, then the oldest finished one makes room', async () => {
    let now = 0;
    const store = new JobStore({ ttlS: 1000, max: 2 }, () => now);
    const first = store.add('g', 'u', new AbortController(), async () => 1);
    await new Promise((r) => setImmediate(r));
    now += 1;
    store.add('g', 'u', new AbortController(), async () => 2);
    await new Promise((r) => setImmediate(r));
    store.add('g', 'u', new AbortController(), async () => 3);
    expect(store.size).toBe(2);
    expect(store.get(first.id, 'u', false)).toBeUndefined();
  });
});
