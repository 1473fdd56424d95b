import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import request from 'supertest';
import { answerClientErrors } from '../../src/client-errors';
import { MAX_JSON_DEPTH, jsonDepthExceeds } from '../../src/middleware/body-guard';
import { createSilentLogger } from '../../src/logger';
import { startHarness, type Harness } from '../support/harness';

const USER = `Basic ${Buffer.from('waldus:Hb5-qT8mK2wZ7xN4vR').toString('base64')}`;
const deep = (n: number) => `{"model":"llama3.1:8b","prompt":"hi","options":${'['.repeat(n)}${']'.repeat(n)}}`;
const badUtf8 = Buffer.concat([Buffer.from('{"model":"llama3.1:8b","prompt":"bad '), Buffer.from([0xff, 0xfe, 0xc0, 0xae]), Buffer.from('","stream":false}')]);

/** Sends raw bytes, returns everything the server wrote before it closed. */
function rawExchange(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = connect(port, '127.0.0.1', () => s.write(text));
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', reject);
    s.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

describe('hostile bodies straight at the API: a JSON 400, nothing reaches Ollama', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ AUTH_USERS: 'waldus:Hb5-qT8mK2wZ7xN4vR' });
  });
  afterAll(() => h.close());

  /** Raw bytes as the body (supertest would turn a Buffer into JSON). */
  async function postBytes(path: string, body: Buffer, contentType = 'application/json') {
    const res = await fetch(`${await h.listen()}${path}`, { method: 'POST', headers: { authorization: USER, 'content-type': contentType }, body });
    return { status: res.status, body: (await res.json()) as { error: { code: string; fields?: unknown[] } } };
  }

  test.each(['/v1/generate', '/ollama/api/generate', '/ollama/api/chat', '/openai/v1/chat/completions'])(
    'When a 10,000-deep JSON is posted to %s, then 400 names the depth limit and Ollama sees nothing',
    async (path) => {
      const before = h.fake.requests.length;
      const res = await request(h.app).post(path).set('Authorization', USER).set('Content-Type', 'application/json').send(deep(10_000)).expect(400);
      expect(JSON.stringify(res.body)).toContain(`deeper than ${MAX_JSON_DEPTH} levels`);
      expect(h.fake.requests.length).toBe(before);
    },
  );

  test('When the nesting stays within the limit (also with brackets inside strings), then the body is accepted', async () => {
    const body = {
      model: 'llama3.1:8b',
      prompt: `${'['.repeat(500)} {{{ "\\"`,
      stream: false,
      format: { type: 'object', properties: { a: { type: 'object' } } },
    };
    await request(h.app).post('/ollama/api/generate').set('Authorization', USER).send(body).expect(200);
    expect(h.fake.requests.at(-1)?.body).toMatchObject({ prompt: body.prompt });
  });

  test.each(['/v1/generate', '/ollama/api/generate'])('When the body is not valid UTF-8 (%s), then 400 and Ollama sees nothing', async (path) => {
    const before = h.fake.requests.length;
    const res = await postBytes(path, badUtf8);
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.body)).toContain('not valid UTF-8');
    expect(h.fake.requests.length).toBe(before);
  });

  test('When /v1 refuses invalid UTF-8, then it has the common error shape with VALIDATION_ERROR on the body', async () => {
    const res = await postBytes('/v1/generate', badUtf8);
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'VALIDATION_ERROR', fields: [{ field: 'body' }] });
  });

  test('When the body is UTF-16 (a charset body-parser accepts), then depth and validity are still checked on its text', async () => {
    const ok = Buffer.from(JSON.stringify({ model: 'llama3.1:8b', prompt: 'hé', stream: false }), 'utf16le');
    expect((await postBytes('/ollama/api/generate', ok, 'application/json; charset=utf-16le')).status).toBe(200);
    const tooDeep = Buffer.from(deep(1000), 'utf16le');
    expect((await postBytes('/ollama/api/generate', tooDeep, 'application/json; charset=utf-16le')).status).toBe(400);
  });
});

describe("requests Node's HTTP parser refuses: a JSON error instead of a bare close", () => {
  let h: Harness;
  let server: Server;
  let port: number;
  beforeAll(async () => {
    h = await startHarness({ AUTH_USERS: 'waldus:Hb5-qT8mK2wZ7xN4vR' });
    server = createServer(h.app);
    answerClientErrors(server, createSilentLogger());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await h.close();
  });

  const bodyOf = (raw: string) => JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)) as { error: { code: string; message: string; requestId: string } };

  test('When Content-Length and Transfer-Encoding come together, then one JSON 400 and the smuggled request is not run', async () => {
    const before = h.fake.requests.length;
    const raw = await rawExchange(
      port,
      `POST /ollama/api/generate HTTP/1.1\r\nHost: x\r\nAuthorization: ${USER}\r\nContent-Type: application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin/ollama HTTP/1.1\r\nHost: x\r\n\r\n`,
    );
    expect(raw).toMatch(/^HTTP\/1\.1 400 /);
    expect(raw.match(/HTTP\/1\.1 /g)).toHaveLength(1);
    expect(raw).toMatch(/content-type: application\/json/i);
    expect(bodyOf(raw).error).toMatchObject({ code: 'BAD_REQUEST', message: expect.stringContaining('Transfer-Encoding') });
    expect(h.fake.requests.length).toBe(before);
  });

  test('When the request line is malformed or the headers too large, then a JSON 400 / 431', async () => {
    expect(bodyOf(await rawExchange(port, 'GET /v1/models HTTP/1.1 extra\r\nHost: x\r\n\r\n')).error.code).toBe('BAD_REQUEST');
    const big = await rawExchange(port, `GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`);
    expect(big).toMatch(/^HTTP\/1\.1 431 /);
    expect(bodyOf(big).error.code).toBe('HEADERS_TOO_LARGE');
  });

  test('When a refused request came, then the server still answers the next one', async () => {
    await rawExchange(port, 'NOT HTTP AT ALL\r\n\r\n');
    const res = await fetch(`http://127.0.0.1:${port}/health`);
    expect(res.status).toBe(200);
  });
});

describe('jsonDepthExceeds', () => {
  test('When brackets are in strings or escaped quotes, then they do not count', () => {
    expect(jsonDepthExceeds(Buffer.from('[[["[[[[\\"[[[["]]]'), 3)).toBe(false);
    expect(jsonDepthExceeds(Buffer.from('[[[[]]]]'), 3)).toBe(true);
    expect(jsonDepthExceeds(Buffer.from('{"a":{"b":{"c":1}}}'), 3)).toBe(false);
    expect(jsonDepthExceeds(Buffer.from('{"a":{"b":{"c":{}}}}'), 3)).toBe(true);
  });
});
