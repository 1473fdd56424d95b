/**
 * Builds the real app for the admin tests: real Ollama client (against a fake or a stand-in),
 * real Docker client (against podman) or none, and a logger whose lines the test can read.
 */
import { Writable } from 'node:stream';
import winston from 'winston';
import type { Express } from 'express';
import { createApp } from '../../src/app';
import { createClients, createServices } from '../../src/composition';
import { createDockerClient } from '../../src/clients/docker.client';
import type { DockerClient } from '../../src/clients/docker.types';
import { createOllamaClient } from '../../src/clients/ollama.client';
import { loadConfig, type Config } from '../../src/config';
import type { Logger } from '../../src/logger';
import type { OllamaState } from '../../src/services/ollama-state';

export const ADMIN = { user: 'admin', password: 'Ad3-wQ9kT6xM2vN8rL' };
export const USER = { user: 'bob', password: 'Bb7-zH4pY1cF8sJ5gE' };

export interface AdminApp {
  app: Express;
  config: Config;
  state: OllamaState;
  /** Parsed JSON log lines. */
  logs: Array<Record<string, unknown>>;
  audits: () => Array<Record<string, unknown>>;
}

function capture(lines: Array<Record<string, unknown>>): Logger {
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  const { combine, timestamp, json } = winston.format;
  return winston.createLogger({ level: 'debug', format: combine(timestamp(), json()), transports: [new winston.transports.Stream({ stream: sink })] });
}

/**
 * `docker`: a DOCKER_HOST-built client by default (from env.DOCKER_HOST), `null` for none
 * (admin docker routes must then answer 503), or a client of the test's own.
 */
export function buildAdminApp(env: Record<string, string>, docker?: DockerClient | null): AdminApp {
  const config = loadConfig({
    AUTH_USERS: `${ADMIN.user}:${ADMIN.password},${USER.user}:${USER.password}`,
    ADMIN_USERS: ADMIN.user,
    RATE_LIMIT_PER_MIN: '0',
    OLLAMA_RETRIES: '0',
    MODEL_LOAD_TIMEOUT_S: '5',
    ...env,
  });
  const logs: Array<Record<string, unknown>> = [];
  const logger = capture(logs);
  const ollama = createOllamaClient({ baseUrl: config.ollama.baseUrl, requestTimeoutMs: 3000, retries: config.ollama.retries });
  const dockerClient = docker === null ? undefined : (docker ?? createDockerClient({ host: config.docker.host, requestTimeoutMs: 5000 }));
  const services = createServices(config, createClients(config, logger, { ollama, docker: dockerClient }), logger);
  const app = createApp({ config, logger, services });
  return { app, config, state: services.state, logs, audits: () => logs.filter((l) => l.message === 'audit') };
}

export async function waitFor(pred: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`waitFor: ${what} not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
