/**
 * CLI for stack tests:
 *   npx tsx test/fakes/run-fake-ollama.ts --port 0 --token-delay-ms 20 --load-delay-ms 0 \
 *     --models llama3.1:8b,nomic-embed-text [--behaviour llama3.1:8b=queue-full] [--behaviour '*=midstream-error:3']
 *
 * Prints exactly one line `FAKE_OLLAMA_URL=http://127.0.0.1:<port>` on stdout once listening.
 * Exits 0 on SIGTERM / SIGINT.
 *
 * Behaviour kinds: normal | oom | oom-legacy | crash | queue-full | hang | drop-connection |
 *                  midstream-error[:N] | stall-after[:N] | reject:<status>:<error text>
 */
import { Behaviour, ERR_OOM_LEGACY, FakeOllama, FakeOllamaOptions, guessModel } from './fake-ollama';

export function parseBehaviour(spec: string): Behaviour {
  const [kind, ...rest] = spec.split(':');
  const n = (d: number): number => {
    const v = rest[0] === undefined ? d : Number(rest[0]);
    if (!Number.isInteger(v) || v < 0) throw new Error(`bad count in behaviour ${JSON.stringify(spec)}`);
    return v;
  };
  switch (kind) {
    case 'normal':
      return { kind: 'normal' };
    case 'oom':
      return { kind: 'oom' };
    case 'oom-legacy':
      return { kind: 'oom', message: ERR_OOM_LEGACY };
    case 'crash':
      return { kind: 'crash' };
    case 'queue-full':
      return { kind: 'queue-full' };
    case 'hang':
      return { kind: 'hang' };
    case 'drop-connection':
      return { kind: 'drop-connection' };
    case 'midstream-error':
      return { kind: 'midstream-error', afterChunks: n(2) };
    case 'stall-after':
      return { kind: 'stall-after', chunks: n(2) };
    case 'reject': {
      const status = Number(rest[0]);
      if (!Number.isInteger(status)) throw new Error(`bad status in behaviour ${JSON.stringify(spec)}`);
      return { kind: 'reject', status, error: rest.slice(1).join(':') || 'rejected' };
    }
    default:
      throw new Error(`unknown behaviour kind ${JSON.stringify(kind)}`);
  }
}

export function parseArgs(argv: string[]): { opts: FakeOllamaOptions; behaviours: Array<[string, Behaviour]> } {
  const opts: FakeOllamaOptions = {};
  const behaviours: Array<[string, Behaviour]> = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const eq = arg.indexOf('=');
    const flag = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg;
    const value = (): string => {
      if (arg.startsWith('--') && eq > 0) return arg.slice(eq + 1);
      const v = argv[++i];
      if (v === undefined) throw new Error(`missing value for ${flag}`);
      return v;
    };
    const num = (): number => {
      const v = Number(value());
      if (!Number.isFinite(v) || v < 0) throw new Error(`bad number for ${flag}`);
      return v;
    };
    switch (flag) {
      case '--port':
        opts.port = num();
        break;
      case '--host':
        opts.host = value();
        break;
      case '--token-delay-ms':
        opts.tokenDelayMs = num();
        break;
      case '--load-delay-ms':
        opts.loadDelayMs = num();
        break;
      case '--pull-delay-ms':
        opts.pullDelayMs = num();
        break;
      case '--version':
        opts.version = value();
        break;
      case '--models':
        opts.models = value()
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
          .map((name) => ({ ...guessModel(name), name }));
        break;
      case '--behaviour':
      case '--behavior': {
        const spec = value();
        const at = spec.indexOf('=');
        if (at <= 0) throw new Error(`--behaviour expects model=kind, got ${JSON.stringify(spec)}`);
        behaviours.push([spec.slice(0, at), parseBehaviour(spec.slice(at + 1))]);
        break;
      }
      default:
        throw new Error(`unknown argument ${JSON.stringify(arg)}`);
    }
  }
  return { opts, behaviours };
}

async function main(): Promise<void> {
  const { opts, behaviours } = parseArgs(process.argv.slice(2));
  const fake = await FakeOllama.start(opts);
  for (const [model, b] of behaviours) fake.setBehaviour(model, b);
  process.stdout.write(`FAKE_OLLAMA_URL=${fake.url}\n`);
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    fake.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (require.main === module) {
  main().catch((e: unknown) => {
    process.stderr.write(`run-fake-ollama: ${(e as Error).message ?? String(e)}\n`);
    process.exit(2);
  });
}
