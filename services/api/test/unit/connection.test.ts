import net from 'node:net';
import { createLookup, withConnectTimeout } from '../../src/clients/connection';
import { FakeOllama } from '../fakes/fake-ollama';
import { createOllamaClient } from '../../src/clients/ollama.client';

describe('connections to Ollama', () => {
  test('When a socket does not connect in time, then it is destroyed with ECONNECTTIMEOUT', async () => {
    const socket = withConnectTimeout(new net.Socket(), 50);
    const err = await new Promise<NodeJS.ErrnoException>((resolve) => socket.once('error', resolve));
    expect(err.code).toBe('ECONNECTTIMEOUT');
    expect(socket.destroyed).toBe(true);
  });

  test('When the name is localhost or an IP, then the system resolver answers (all and single forms)', async () => {
    const lookup = createLookup(1000);
    const all = await new Promise<unknown>((resolve, reject) => lookup('localhost', { all: true }, (err, addrs) => (err ? reject(err) : resolve(addrs))));
    expect(all).toEqual(expect.arrayContaining([expect.objectContaining({ address: expect.stringMatching(/^(127\.0\.0\.1|::1)$/) })]));
    const one = await new Promise<string>((resolve, reject) => lookup('127.0.0.1', {}, (err, addr) => (err ? reject(err) : resolve(addr as string))));
    expect(one).toBe('127.0.0.1');
  });

  test('When Ollama is addressed as localhost, then calls go through the bounded agent', async () => {
    const fake = await FakeOllama.start();
    try {
      const client = createOllamaClient({ baseUrl: fake.url.replace('127.0.0.1', 'localhost'), requestTimeoutMs: 2000, retries: 0, connectTimeoutMs: 1000 });
      expect(await client.version()).toBe('0.32.15');
    } finally {
      await fake.close();
    }
  });
});
