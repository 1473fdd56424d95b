/**
 * Builds the real app (createClients → createServices → createApp, as main.ts does) against a
 * FakeOllama on loopback, with no Docker client. `listen()` gives a real port
 * for tests that need socket-level behaviour (streaming gaps, disconnects).
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { Writable } from 'node:stream';
import winston from 'winston';
import type { Express } from 'express';
import { createApp } from '../../src/app';
import { createClients, createServices, type Clients, type Services } from '../../src/composition';
import { createOllamaClient } from '../../src/clients/ollama.client';
import type { OllamaClient } from '../../src/clients/ollama.types';
import { loadConfig, type Config } from '../../src/config';
import { createSilentLogger, type Logger } from '../../src/logger';
import { FakeOllama, type FakeOllamaOptions } from '../fakes/fake-ollama';

export interface Harness {
  fake: FakeOllama;
  app: Express;
  config: Config;
  services: Services;
  logs: string[];
  listen(): Promise<string>;
  close(): Promise<void>;
}

/** A logger that keeps every JSON line, so tests can assert what is (and is not) logged. */
export function capturingLogger(lines: string[]): Logger {
  const sink = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    },
  });
  const { combine, errors, timestamp, json } = winston.format;
  return winston.createLogger({
    level: 'debug',
    format: combine(errors({ stack: true }), timestamp(), json()),
    transports: [new winston.transports.Stream({ stream: sink })],
  });
}

export async function startHarness(
  env: Record<string, string> = {},
  fakeOpts: FakeOllamaOptions = {},
  wrap?: (client: OllamaClient) => OllamaClient,
  extra: Partial<Clients> = {},
): Promise<Harness> {
  const fake = await FakeOllama.start(fakeOpts);
  const config = loadConfig({ OLLAMA_BASE_URL: fake.url, MODEL_LOAD_TIMEOUT_S: '5', RATE_LIMIT_PER_MIN: '0', ...env });
  const logs: string[] = [];
  const logger = env.CAPTURE_LOGS ? capturingLogger(logs) : createSilentLogger();
  let ollama = createOllamaClient({ baseUrl: config.ollama.baseUrl, requestTimeoutMs: 5000, retries: config.ollama.retries });
  if (wrap) ollama = wrap(ollama);
  const services = createServices(config, createClients(config, logger, { ollama, docker: undefined, ...extra }), logger);
  const app = createApp({ config, logger, services });
  let server: Server | undefined;
  let base: Promise<string> | undefined;
  return {
    fake,
    app,
    config,
    services,
    logs,
    listen: () =>
      (base ??= new Promise((resolve) => {
        server = app.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server!.address() as AddressInfo).port}`));
      })),
    close: async () => {
      if (server) {
        server.closeAllConnections();
        await new Promise((r) => server!.close(r));
      }
      await fake.close();
    },
  };
}

/** A loopback port that nothing listens on: "Ollama is down" for real (connection refused). */
export async function closedPortUrl(): Promise<string> {
  const net = await import('node:net');
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as AddressInfo).port;
  await new Promise((r) => srv.close(r));
  return `http://127.0.0.1:${port}`;
}

export interface TimedLine {
  at: number;
  line: Record<string, unknown>;
}

/** Reads an NDJSON response line by line with arrival times (ms since the request started). */
export async function readNdjson(url: string, body: unknown, headers: Record<string, string> = {}, signal?: AbortSignal) {
  const t0 = performance.now();
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body), signal });
  const headersAt = performance.now() - t0;
  const lines: TimedLine[] = [];
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  let buf = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const text = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (text.trim()) lines.push({ at: performance.now() - t0, line: JSON.parse(text) });
    }
  }
  return { res, lines, headersAt };
}
