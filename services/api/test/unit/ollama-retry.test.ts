import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createOllamaClient } from '../../src/clients/ollama.client';
import { AppError } from '../../src/errors';

/** A loopback stand-in for Ollama that answers each request with the next scripted status. */
async function scripted(answers: Array<[number, unknown]>) {
  const hits: string[] = [];
  const server = http.createServer((req, res) => {
    hits.push(`${req.method} ${req.url}`);
    req.resume();
    const [status, body] = answers[Math.min(hits.length - 1, answers.length - 1)];
    res.writeHead(status, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(body));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, hits, close: () => new Promise((r) => server.close(r)) };
}

const busy: [number, unknown] = [503, { error: 'server busy, please try again.  maximum pending requests exceeded' }];
const tags: [number, unknown] = [200, { models: [{ name: 'mistral:7b', model: 'mistral:7b', size: 1, digest: 'd', details: {}, modified_at: 'x' }] }];

describe('Ollama client retries', () => {
  test('When a GET answers 503 once, then it is retried and the call succeeds', async () => {
    const s = await scripted([busy, tags]);
    try {
      const client = createOllamaClient({ baseUrl: s.url, requestTimeoutMs: 2000, retries: 2 });
      const models = await client.tags();
      expect(models.map((m) => m.name)).toEqual(['mistral:7b']);
      expect(s.hits).toEqual(['GET /api/tags', 'GET /api/tags']);
    } finally {
      await s.close();
    }
  });

  test('When a GET keeps answering 5xx, then after the retries its answer is mapped as usual', async () => {
    const s = await scripted([busy]);
    try {
      const client = createOllamaClient({ baseUrl: s.url, requestTimeoutMs: 2000, retries: 2 });
      const err = await client.version().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(AppError);
      expect((err as AppError).code).toBe('QUEUE_FULL');
      expect(s.hits).toEqual(['GET /api/version', 'GET /api/version', 'GET /api/version']);
    } finally {
      await s.close();
    }
  });

  test('When a generation answers 5xx, then it is not sent again', async () => {
    const s = await scripted([[500, { error: 'model runner has unexpectedly stopped' }], tags]);
    try {
      const client = createOllamaClient({ baseUrl: s.url, requestTimeoutMs: 2000, retries: 2 });
      const run = async () => {
        for await (const _chunk of client.generate({ model: 'mistral:7b', prompt: 'hi' }, { firstChunkTimeoutMs: 2000, idleTimeoutMs: 2000 })) {
          /* the first answer is the error */
        }
      };
      await expect(run()).rejects.toMatchObject({ code: 'UPSTREAM_ERROR' });
      expect(s.hits).toEqual(['POST /api/generate']);
    } finally {
      await s.close();
    }
  });
});
