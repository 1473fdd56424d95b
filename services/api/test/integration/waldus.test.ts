import request from 'supertest';
import type { ImageFetcher } from '../../src/clients/image-fetcher';
import { AppError } from '../../src/errors';
import { startHarness, type Harness } from '../support/harness';

const PNG_B64 = Buffer.from('89504e470d0a1a0a', 'hex').toString('base64');
const fetched: string[] = [];
const images: ImageFetcher = {
  async fetch(url) {
    fetched.push(url);
    if (url.includes('10.0.0.1')) throw new AppError('URL_NOT_ALLOWED', 400, 'The image URL is not allowed: 10.0.0.1 is a private address');
    return { data: Buffer.from('89504e470d0a1a0a', 'hex'), contentType: 'image/png', finalUrl: url };
  },
};

describe('Waldus compatibility routes', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({}, {}, undefined, { images });
  });
  afterAll(() => h.close());
  beforeEach(() => {
    h.fake.requests.length = 0;
    fetched.length = 0;
  });
  const lastChat = () =>
    h.fake.requests.filter((r) => r.path === '/api/chat').pop()?.body as {
      model: string;
      messages: Array<{ role: string; content: string; images?: string[] }>;
      options: Record<string, unknown>;
    };

  test('When /v1/complete gets the JSON ollama_complete.py took, then content, model and usage come back', async () => {
    const res = await request(h.app).post('/v1/complete').send({ user: 'Hello', system: 'Be short.', temperature: 0.7, max_tokens: 64 }).expect(200);
    expect(res.body).toEqual({
      content: 'Hello from the fake Ollama.',
      model: 'llama3.1:8b',
      usage: expect.objectContaining({ completion_tokens: expect.any(Number) }),
    });
    const up = lastChat();
    expect(up.messages).toEqual([
      { role: 'system', content: 'Be short.' },
      { role: 'user', content: 'Hello' },
    ]);
    expect(up.options).toMatchObject({ temperature: 0.7, num_predict: 64, num_ctx: 4096 });
  });

  test('When /v1/complete gets an unknown field, then 400 names it', async () => {
    const res = await request(h.app).post('/v1/complete').send({ user: 'x', maxtokens: 5 }).expect(400);
    expect(res.body.error.fields[0].field).toBe('body.maxtokens');
  });

  test('When describing a base64 image, then the vision model gets it and the description comes back', async () => {
    h.fake.queueReplies('llava:7b', ['  A small cat on a sofa.  ']);
    const res = await request(h.app)
      .post('/v1/images/describe')
      .send({ image_base64: `data:image/png;base64,${PNG_B64}`, max_length: 20, language: 'German' })
      .expect(200);
    expect(res.body).toMatchObject({ description: 'A small cat on a sofa.', model: 'llava:7b' });
    const up = lastChat();
    expect(up.model).toBe('llava:7b');
    expect(up.messages[0].images).toEqual([PNG_B64]);
    expect(up.messages[0].content).toContain('at most 20 words');
    expect(up.messages[0].content).toContain('in German');
  });

  test('When describing an image_url, then it is fetched through the guarded fetcher', async () => {
    await request(h.app).post('/v1/images/describe').send({ image_url: 'https://images.example.org/cat.png' }).expect(200);
    expect(fetched).toEqual(['https://images.example.org/cat.png']);
    expect(lastChat().messages[0].images).toEqual([PNG_B64]);
  });

  test('When the image_url is refused by the guard, then 400 URL_NOT_ALLOWED and no generation', async () => {
    const res = await request(h.app).post('/v1/images/describe').send({ image_url: 'http://10.0.0.1/x.png' }).expect(400);
    expect(res.body.error.code).toBe('URL_NOT_ALLOWED');
    expect(h.fake.requests.filter((r) => r.path === '/api/chat')).toHaveLength(0);
  });

  test('When the chosen model cannot see, then 400 MODEL_NOT_VISION', async () => {
    const res = await request(h.app).post('/v1/images/describe').send({ image_base64: PNG_B64, model: 'mistral:7b' }).expect(400);
    expect(res.body.error.code).toBe('MODEL_NOT_VISION');
  });

  test.each([
    [{}, 'body'],
    [{ image_url: 'https://a/b.png', image_base64: PNG_B64 }, 'body'],
    [{ image_url: 'ftp://a/b.png' }, 'body.image_url'],
    [{ image_base64: PNG_B64, max_length: 10000 }, 'body.max_length'],
  ])('When describe gets %j, then 400 names %s', async (body, field) => {
    const res = await request(h.app).post('/v1/images/describe').send(body).expect(400);
    expect(res.body.error.fields.map((f: { field: string }) => f.field)).toContain(field);
  });

  test('When translating without a source, then the translation and the detected source come back', async () => {
    h.fake.queueReplies('llama3.1:8b', ['{"translation":"Guten Morgen","source_language":"en"}']);
    const res = await request(h.app).post('/v1/translate').send({ text: 'Good morning', target: 'de' }).expect(200);
    expect(res.body).toMatchObject({ translation: 'Guten Morgen', source: 'en', target: 'de', model: 'llama3.1:8b' });
    const up = lastChat();
    expect(up.messages[0].content).toContain('into de');
    expect(up.messages[up.messages.length - 1]).toEqual({ role: 'user', content: 'Good morning' });
  });

  test('When the source is given, then it is kept as given', async () => {
    h.fake.queueReplies('llama3.1:8b', ['{"translation":"Bonjour","source_language":"en"}']);
    const res = await request(h.app).post('/v1/translate').send({ text: 'Hello', target: 'French', source: 'English' }).expect(200);
    expect(res.body).toMatchObject({ translation: 'Bonjour', source: 'English', target: 'French' });
  });

  test('When complete is async, then the job result has the same shape', async () => {
    const res = await request(h.app).post('/v1/complete').send({ user: 'Hi', async: true }).expect(202);
    let job = { status: 'queued', result: undefined as unknown };
    for (let i = 0; i < 50 && job.status !== 'done'; i++) {
      await new Promise((r) => setTimeout(r, 20));
      job = (await request(h.app).get(`/v1/jobs/${res.body.job_id}`)).body;
    }
    expect(job.result).toEqual({ content: 'Hello from the fake Ollama.', model: 'llama3.1:8b', usage: expect.any(Object) });
  });
});
