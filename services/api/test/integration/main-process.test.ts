/** The server as an operator starts it: a real process, real env, real signals. */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { FakeOllama } from '../fakes/fake-ollama';
import { closedPortUrl } from '../support/harness';

const root = path.resolve(__dirname, '../..');

function startMain(env: Record<string, string>): { child: ChildProcess; out: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: root,
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { child, out: () => out, exited };
}

async function waitFor(pred: () => boolean | Promise<boolean>, ms = 15000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await pred()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('condition not met in time');
}

describe('main.ts as a process', () => {
  test('When the configuration is bad, then it exits 1 listing every bad key and no secret', async () => {
    const p = startMain({ PORT: 'x', MAX_QUEUE: '-1', AUTH_USERS: 'SECRETWITHOUTCOLON' });
    expect(await p.exited).toBe(1);
    expect(p.out()).toContain('PORT');
    expect(p.out()).toContain('MAX_QUEUE');
    expect(p.out()).toContain('AUTH_USERS');
    expect(p.out()).not.toContain('SECRETWITHOUTCOLON');
  }, 30000);

  test('When started with auth off, then it warns loudly; SIGTERM lets a running generation finish, then exits 0', async () => {
    const fake = await FakeOllama.start({ tokenDelayMs: 60 });
    const port = new URL(await closedPortUrl()).port;
    const p = startMain({ PORT: port, HOST: '127.0.0.1', OLLAMA_BASE_URL: fake.url, SHUTDOWN_GRACE_S: '10' });
    try {
      await waitFor(() => p.out().includes('"listening"'));
      expect(p.out()).toContain('AUTH IS OFF');
      fake.setDefaultReply('one two three four five six seven eight nine ten');
      const res = await fetch(`http://127.0.0.1:${port}/v1/generate`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ prompt: 'count', stream: true }),
      });
      const reader = res.body!.getReader();
      await reader.read();
      p.child.kill('SIGTERM');
      let text = '';
      const dec = new TextDecoder();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        text += dec.decode(value);
      }
      expect(text).toContain('"done":true');
      expect(await p.exited).toBe(0);
      expect(p.out()).toContain('shutting down');
    } finally {
      p.child.kill('SIGKILL');
      await fake.close();
    }
  }, 30000);
});
