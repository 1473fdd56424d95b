import request from 'supertest';
import { startHarness, type Harness } from '../support/harness';

describe('bad input always gets a clear 4xx JSON error', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ BODY_LIMIT: '2kb' });
  });
  afterAll(() => h.close());

  const malformed: Array<[string, string, unknown, string]> = [
    ['generate without prompt', '/v1/generate', {}, 'body.prompt'],
    ['generate with empty prompt', '/v1/generate', { prompt: '' }, 'body.prompt'],
    ['generate with a numeric prompt', '/v1/generate', { prompt: 42 }, 'body.prompt'],
    ['generate with temperature 5', '/v1/generate', { prompt: 'x', options: { temperature: 5 } }, 'body.options.temperature'],
    ['generate with a per-request num_ctx', '/v1/generate', { prompt: 'x', options: { num_ctx: 32768 } }, 'body.options.num_ctx'],
    ['generate with an unknown option', '/v1/generate', { prompt: 'x', options: { temprature: 0.1 } }, 'body.options.temprature'],
    ['generate with an unknown field', '/v1/generate', { prompt: 'x', max_token: 5 }, 'body.max_token'],
    ['generate with a model name with spaces', '/v1/generate', { prompt: 'x', model: 'llama 3' }, 'body.model'],
    ['generate with stream "maybe"', '/v1/generate', { prompt: 'x', stream: 'maybe' }, 'body.stream'],
    ['generate with a non-base64 image', '/v1/generate', { prompt: 'x', images: ['not base64!'] }, 'body.images.0'],
    ['generate with format "xml"', '/v1/generate', { prompt: 'x', format: 'xml' }, 'body.format'],
    ['chat without messages', '/v1/chat', {}, 'body.messages'],
    ['chat with empty messages', '/v1/chat', { messages: [] }, 'body.messages'],
    ['chat with a role robot', '/v1/chat', { messages: [{ role: 'robot', content: 'x' }] }, 'body.messages.0.role'],
    ['chat with a message without content', '/v1/chat', { messages: [{ role: 'user' }] }, 'body.messages.0.content'],
    ['chat with messages as a string', '/v1/chat', { messages: 'hi' }, 'body.messages'],
    ['structured without schema', '/v1/structured', { prompt: 'x' }, 'body.schema'],
    ['structured with prompt and messages', '/v1/structured', { prompt: 'x', messages: [{ role: 'user', content: 'y' }], schema: {} }, 'body'],
    ['structured with a schema string', '/v1/structured', { prompt: 'x', schema: '{"type":"object"}' }, 'body.schema'],
    ['embeddings without input', '/v1/embeddings', {}, 'body.input'],
    ['embeddings with numbers', '/v1/embeddings', { input: [1, 2] }, 'body.input'],
    ['embeddings with an empty list', '/v1/embeddings', { input: [] }, 'body.input'],
    ['a JSON array as body', '/v1/generate', ['prompt'], 'body'],
  ];

  test.each(malformed)('When %s, then 400 VALIDATION_ERROR names %s', async (_name, path, body, field) => {
    const res = await request(h.app)
      .post(path)
      .send(body as object)
      .expect(400);
    expect(res.headers['content-type']).toMatch(/application\/json/);
    expect(res.body.error.code).toBe('VALIDATION_ERROR');
    expect(res.body.error.fields.map((f: { field: string }) => f.field).join(' ')).toContain(field);
    expect(res.body.error.requestId).toEqual(expect.any(String));
  });

  test('When several fields are bad, then each one is listed', async () => {
    const res = await request(h.app)
      .post('/v1/generate')
      .send({ prompt: 3, options: { top_p: 7 }, stream: 'x' })
      .expect(400);
    const fields = res.body.error.fields.map((f: { field: string }) => f.field);
    expect(fields).toEqual(expect.arrayContaining(['body.prompt', 'body.options.top_p', 'body.stream']));
  });

  test('When the body is not JSON, then 400 says so', async () => {
    const res = await request(h.app).post('/v1/generate').set('content-type', 'application/json').send('{"prompt": "x"').expect(400);
    expect(res.body.error).toMatchObject({ code: 'VALIDATION_ERROR', message: 'The request body is not valid JSON' });
  });

  test('When the body is text/plain, then 400 (no body) rather than a crash', async () => {
    const res = await request(h.app).post('/v1/generate').set('content-type', 'text/plain').send('hello').expect(400);
    expect(res.body.error.code).toBe('VALIDATION_ERROR');
  });

  test('When the body is larger than BODY_LIMIT, then 413 PAYLOAD_TOO_LARGE', async () => {
    const res = await request(h.app)
      .post('/v1/generate')
      .send({ prompt: 'x'.repeat(5000) })
      .expect(413);
    expect(res.body.error.code).toBe('PAYLOAD_TOO_LARGE');
  });

  test('When the route does not exist, then 404 NOT_FOUND as JSON', async () => {
    const res = await request(h.app).get('/v2/everything').expect(404);
    expect(res.body.error).toMatchObject({ code: 'NOT_FOUND', message: 'No route for GET /v2/everything' });
  });

  test('When the method is wrong, then 404 NOT_FOUND as JSON, not an HTML page', async () => {
    const res = await request(h.app).get('/v1/generate').expect(404);
    expect(res.body.error.code).toBe('NOT_FOUND');
  });

  test('When ?force is not a boolean, then 400', async () => {
    const res = await request(h.app).get('/ready?force=perhaps').expect(400);
    expect(res.body.error.fields[0].field).toBe('query.force');
  });
});
