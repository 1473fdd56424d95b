/**
 * What the body guard (depth scan + UTF-8 check) costs on the largest body BODY_LIMIT allows by
 * default (25 MB: a base64 image prompt), next to the JSON.parse that follows it anyway.
 * Run: npx tsx test/bench/body-guard.bench.ts
 */
import { performance } from 'node:perf_hooks';
import { verifyJsonBody } from '../../src/middleware/body-guard';
import type { IncomingMessage, ServerResponse } from 'node:http';

const image = 'iVBORw0KGgo'.repeat(Math.floor((25 * 1024 * 1024 - 200) / 11));
const body = Buffer.from(JSON.stringify({ model: 'llava:7b', prompt: 'describe this', images: [image], options: { temperature: 0 } }));

function best(fn: () => void, runs = 7): number {
  let min = Infinity;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    fn();
    min = Math.min(min, performance.now() - t0);
  }
  return min;
}

const guard = best(() => verifyJsonBody({} as IncomingMessage, {} as ServerResponse, body, 'utf-8'));
const parse = best(() => JSON.parse(body.toString('utf8')) as unknown);
console.log(
  `body ${(body.length / 1024 / 1024).toFixed(1)} MB: guard ${guard.toFixed(1)} ms, decode+JSON.parse ${parse.toFixed(1)} ms (guard adds ${((guard / parse) * 100).toFixed(0)}%)`,
);
