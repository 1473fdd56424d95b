import request from 'supertest';
import { readNdjson, startHarness, type Harness } from '../support/harness';

describe('gateway routes against the fake Ollama', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ MODEL_ALIASES: 'fast=mistral:7b,accurate=llama3.1:8b' });
  });
  afterAll(() => h.close());
  beforeEach(() => {
    h.fake.resetBehaviours();
    h.fake.requests.length = 0;
  });

  test('When /health is called, then it answers ok without calling Ollama', async () => {
    const res = await request(h.app).get('/health').expect(200);
    expect(res.body).toEqual({ status: 'ok' });
    expect(h.fake.requests).toHaveLength(0);
  });

  test('When Ollama is up with the default model, then /ready is 200 and cached until forced', async () => {
    const first = await request(h.app).get('/ready?force=true').expect(200);
    expect(first.body).toMatchObject({
      status: 'ready',
      ollama: { reachable: true, version: '0.32.15' },
      defaultModel: { name: 'llama3.1:8b', installed: true },
    });
    const calls = h.fake.requests.length;
    const second = await request(h.app).get('/ready').expect(200);
    expect(second.body.cached).toBe(true);
    expect(h.fake.requests.length).toBe(calls);
    await request(h.app).get('/ready?force=true').expect(200);
    expect(h.fake.requests.length).toBeGreaterThan(calls);
  });

  test('When models are listed, then each has size, family, quantization and loaded state', async () => {
    const res = await request(h.app).get('/v1/models?force=true').expect(200);
    const llama = res.body.models.find((m: { name: string }) => m.name.startsWith('llama3.1:8b'));
    expect(llama).toMatchObject({ family: 'llama', quantization: 'Q4_K_M', parameterSize: '8.0B', loaded: expect.any(Boolean) });
    expect(llama.size).toBeGreaterThan(1e9);
    expect(res.body.defaults).toEqual({ chat: 'llama3.1:8b', embed: 'nomic-embed-text', vision: 'llava:7b' });
    expect(res.body.aliases).toEqual({ fast: 'mistral:7b', accurate: 'llama3.1:8b' });
  });

  test('When generating without stream, then text and usage come back and plan defaults and num_ctx are sent upstream', async () => {
    const res = await request(h.app)
      .post('/v1/generate')
      .send({ prompt: 'Say hello', options: { seed: 42 } })
      .expect(200);
    expect(res.body.model).toBe('llama3.1:8b');
    expect(res.body.response).toBe('Hello from the fake Ollama.');
    expect(res.body.done_reason).toBe('stop');
    expect(res.body.usage).toMatchObject({ prompt_tokens: expect.any(Number), completion_tokens: expect.any(Number) });
    expect(res.body.usage.completion_tokens).toBeGreaterThan(0);
    expect(res.body.usage.total_tokens).toBe(res.body.usage.prompt_tokens + res.body.usage.completion_tokens);
    const up = h.fake.requests.find((r) => r.path === '/api/generate');
    expect(up?.body).toMatchObject({
      model: 'llama3.1:8b',
      prompt: 'Say hello',
      stream: true,
      keep_alive: '24h',
      options: { temperature: 0.3, top_p: 0.9, top_k: 40, seed: 42, num_ctx: 4096 },
    });
  });

  test('When a caller sends an alias, then the aliased model is used', async () => {
    const res = await request(h.app).post('/v1/generate').send({ prompt: 'hi', model: 'fast' }).expect(200);
    expect(res.body.model).toBe('mistral:7b');
    expect(h.fake.requests.find((r) => r.path === '/api/generate')?.body).toMatchObject({ model: 'mistral:7b' });
  });

  test('When streaming a generation, then NDJSON lines arrive with no buffering headers and a final usage line', async () => {
    const base = await h.listen();
    const { res, lines } = await readNdjson(`${base}/v1/generate`, { prompt: 'Say hello', stream: true });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('application/x-ndjson');
    expect(res.headers.get('x-accel-buffering')).toBe('no');
    expect(lines.length).toBeGreaterThan(2);
    const text = lines
      .filter((l) => !l.line.done)
      .map((l) => l.line.response)
      .join('');
    expect(text).toBe('Hello from the fake Ollama.');
    const last = lines[lines.length - 1].line;
    expect(last).toMatchObject({ done: true, done_reason: 'stop', model: 'llama3.1:8b' });
    expect((last.usage as { completion_tokens: number }).completion_tokens).toBeGreaterThan(0);
  });

  test('When chatting with and without stream, then the assistant message comes back', async () => {
    const messages = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hi there' },
    ];
    const res = await request(h.app).post('/v1/chat').send({ messages }).expect(200);
    expect(res.body.message).toEqual({ role: 'assistant', content: 'Hello from the fake Ollama.' });
    expect(res.body.usage.prompt_tokens).toBeGreaterThan(0);
    const base = await h.listen();
    const { lines } = await readNdjson(`${base}/v1/chat`, { messages, stream: true });
    const content = lines
      .filter((l) => !l.line.done)
      .map((l) => (l.line.message as { content: string }).content)
      .join('');
    expect(content).toBe('Hello from the fake Ollama.');
    expect(lines[lines.length - 1].line.done).toBe(true);
  });

  test('When a chat message carries an image and no model, then the vision model gets the raw base64', async () => {
    const png = Buffer.from('fake-png-bytes').toString('base64');
    const res = await request(h.app)
      .post('/v1/chat')
      .send({ messages: [{ role: 'user', content: 'What is this?', images: [`data:image/png;base64,${png}`] }] })
      .expect(200);
    expect(res.body.model).toBe('llava:7b');
    const up = h.fake.requests.find((r) => r.path === '/api/chat')?.body as { messages: Array<{ images?: string[] }> };
    expect(up.messages[0].images).toEqual([png]);
  });

  test('When embedding a batch, then one upstream call returns one vector per input with its dimensions', async () => {
    const res = await request(h.app)
      .post('/v1/embeddings')
      .send({ input: ['alpha', 'beta', 'gamma'] })
      .expect(200);
    expect(res.body.model).toBe('nomic-embed-text');
    expect(res.body.dimensions).toBe(768);
    expect(res.body.embeddings).toHaveLength(3);
    expect(res.body.embeddings[0]).toHaveLength(768);
    expect(res.body.embeddings[0]).not.toEqual(res.body.embeddings[1]);
    expect(h.fake.requests.filter((r) => r.path === '/api/embed')).toHaveLength(1);
    const single = await request(h.app).post('/v1/embeddings').send({ input: 'alpha' }).expect(200);
    expect(single.body.embeddings[0]).toEqual(res.body.embeddings[0]);
  });

  test('When the model answers valid JSON, then /v1/structured returns the data after one attempt and sent the schema both ways', async () => {
    const schema = {
      type: 'object',
      properties: { name: { type: 'string' }, age: { type: 'integer', minimum: 0 } },
      required: ['name', 'age'],
      additionalProperties: false,
    };
    h.fake.queueReplies('llama3.1:8b', ['{"name":"Ada","age":36}']);
    const res = await request(h.app).post('/v1/structured').send({ prompt: 'Who wrote the first program?', schema }).expect(200);
    expect(res.body).toMatchObject({ data: { name: 'Ada', age: 36 }, attempts: 1, model: 'llama3.1:8b' });
    const up = h.fake.requests.find((r) => r.path === '/api/chat')?.body as { format: unknown; messages: Array<{ role: string; content: string }> };
    expect(up.format).toEqual(schema);
    expect(up.messages[0].role).toBe('system');
    expect(up.messages[0].content).toContain(JSON.stringify(schema));
  });

  test('When the model ignores format, then fenced JSON is parsed and an invalid answer gets a corrective retry', async () => {
    const schema = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] };
    h.fake.queueReplies('llama3.1:8b', ['Sure! Here it is: {"town": "Paris"}', 'Here you go:\n```json\n{"city": "Paris"}\n```']);
    const res = await request(h.app).post('/v1/structured').send({ prompt: 'Capital of France?', schema }).expect(200);
    expect(res.body).toMatchObject({ data: { city: 'Paris' }, attempts: 2 });
    const chats = h.fake.requests.filter((r) => r.path === '/api/chat');
    expect(chats).toHaveLength(2);
    const retryMessages = (chats[1].body as { messages: Array<{ role: string; content: string }> }).messages;
    expect(retryMessages[retryMessages.length - 1].content).toMatch(/must have required property 'city'/);
  });

  test('When the model never complies, then 422 SCHEMA_VALIDATION_FAILED lists the validator messages', async () => {
    const schema = { type: 'object', properties: { n: { type: 'number' } }, required: ['n'] };
    h.fake.queueReplies('llama3.1:8b', ['no json here', '{"n": "seven"}']);
    const res = await request(h.app).post('/v1/structured').send({ prompt: 'A number', schema }).expect(422);
    expect(res.body.error.code).toBe('SCHEMA_VALIDATION_FAILED');
    expect(res.body.error.attempts).toBe(2);
    expect(res.body.error.errors.join(' ')).toMatch(/\/n must be number/);
  });

  test('When the schema itself is invalid, then 400 INVALID_SCHEMA and Ollama is not called', async () => {
    const res = await request(h.app)
      .post('/v1/structured')
      .send({ prompt: 'x', schema: { type: 'objekt' } })
      .expect(400);
    expect(res.body.error.code).toBe('INVALID_SCHEMA');
    expect(h.fake.requests.filter((r) => r.path === '/api/chat')).toHaveLength(0);
  });

  test('When a request id is sent, then it is echoed; otherwise one is made', async () => {
    const mine = await request(h.app).get('/health').set('X-Request-Id', 'waldus-123').expect(200);
    expect(mine.headers['x-request-id']).toBe('waldus-123');
    const made = await request(h.app).get('/health').set('X-Request-Id', 'bad id with spaces').expect(200);
    expect(made.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });
});
