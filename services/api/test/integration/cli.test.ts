/** scripts/complete, describe and translate run as processes against the API on loopback. */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import type { ImageFetcher } from '../../src/clients/image-fetcher';
import { startHarness, type Harness } from '../support/harness';

const run = promisify(execFile);
const scripts = path.resolve(__dirname, '../../../../scripts');
const PASSWORD = 'p"w\\with$odd chars Xq7vL2';

const images: ImageFetcher = {
  async fetch(url) {
    return { data: Buffer.from('img'), contentType: 'image/png', finalUrl: url };
  },
};

describe('the Waldus CLIs', () => {
  let h: Harness;
  let env: NodeJS.ProcessEnv;
  beforeAll(async () => {
    h = await startHarness({ AUTH_USERS: `waldus:${PASSWORD}` }, {}, undefined, { images });
    env = { PATH: process.env.PATH, AI_LOCAL_URL: await h.listen(), AI_LOCAL_USER: 'waldus', AI_LOCAL_PASSWORD: PASSWORD };
  });
  afterAll(() => h.close());

  test('When scripts/complete gets the old JSON argument, then it prints the JSON reply and exits 0', async () => {
    const { stdout } = await run(`${scripts}/complete`, ['{"user": "Hello", "temperature": 0.7}'], { env });
    expect(JSON.parse(stdout)).toMatchObject({ content: 'Hello from the fake Ollama.', model: 'llama3.1:8b' });
  });

  test('When the request is bad, then the error goes to stderr and the exit code is 1', async () => {
    const err = await run(`${scripts}/complete`, ['{"prompt": "wrong key"}'], { env }).catch((e) => e);
    expect(err.code).toBe(1);
    expect(err.stdout).toBe('');
    expect(err.stderr).toContain('HTTP 400');
    expect(err.stderr).toContain('VALIDATION_ERROR');
  });

  test('When the credentials are wrong, then exit 1 with the 401', async () => {
    const err = await run(`${scripts}/complete`, ['{"user": "x"}'], { env: { ...env, AI_LOCAL_PASSWORD: 'nope' } }).catch((e) => e);
    expect(err.code).toBe(1);
    expect(err.stderr).toContain('HTTP 401');
  });

  test('When the appliance is unreachable, then exit 3 says so', async () => {
    const err = await run(`${scripts}/complete`, ['{"user": "x"}'], { env: { ...env, AI_LOCAL_URL: 'http://127.0.0.1:9' } }).catch((e) => e);
    expect(err.code).toBe(3);
    expect(err.stderr).toContain('cannot reach the appliance');
  });

  test('When scripts/describe gets a URL and a length, then the description JSON is printed', async () => {
    h.fake.queueReplies('llava:7b', ['A red bicycle.']);
    const { stdout } = await run(`${scripts}/describe`, ['https://images.example.org/bike.png?size=large&v=2', '30'], { env });
    expect(JSON.parse(stdout)).toMatchObject({ description: 'A red bicycle.', model: 'llava:7b' });
    const sent = h.fake.requests.filter((r) => r.path === '/api/chat').pop()?.body as { messages: Array<{ content: string }> };
    expect(sent.messages[0].content).toContain('at most 30 words');
  });

  test('When scripts/translate gets text with quotes and newlines, then the text arrives intact', async () => {
    h.fake.queueReplies('llama3.1:8b', ['{"translation":"Hallo \\"Welt\\"","source_language":"en"}']);
    const text = 'Hello "world"\nsecond line\\';
    const { stdout } = await run(`${scripts}/translate`, [text, 'de'], { env });
    expect(JSON.parse(stdout)).toMatchObject({ translation: 'Hallo "Welt"', source: 'en', target: 'de' });
    const sent = h.fake.requests.filter((r) => r.path === '/api/chat').pop()?.body as { messages: Array<{ content: string }> };
    expect(sent.messages[sent.messages.length - 1].content).toBe(text);
  });

  test('When called without arguments, then usage and exit 2', async () => {
    const err = await run(`${scripts}/translate`, [], { env }).catch((e) => e);
    expect(err.code).toBe(2);
    expect(err.stderr).toContain('usage');
  });
});
