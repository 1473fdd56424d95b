/**
 * The process: loadConfig → createLogger → createClients → createServices → createApp → listen →
 * signals. The only file (besides healthcheck.ts) that hands process.env on or calls process.exit.
 */
import type { Server } from 'node:http';
import { createApp } from './app';
import { answerClientErrors } from './client-errors';
import type { UpstreamPool } from './services/upstream-pool';
import { createClients, createServices } from './composition';
import { loadConfig, type Config } from './config';
import { ConfigError, ServiceShuttingDownError } from './errors';
import { createLogger } from './logger';

function start(): void {
  let config: Config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      // Keys only, never values: some are secrets.
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }

  const logger = createLogger({ level: config.logLevel });
  process.on('unhandledRejection', (reason) => {
    logger.error('unhandled rejection', { err: reason });
    process.exit(1);
  });
  process.on('uncaughtException', (err) => {
    logger.error('uncaught exception', { err });
    process.exit(1);
  });

  if (config.auth.users.length === 0) {
    logger.warn('AUTH IS OFF: AUTH_USERS is empty, every route is open to anyone who can reach this port. Set AUTH_USERS before exposing it.');
  }

  const services = createServices(config, createClients(config, logger), logger);
  const { pool, jobs, warm, gpu, prometheus } = services;
  const app = createApp({ config, logger, services });

  const server: Server = app.listen(config.port, config.host, () => {
    logger.info('listening', {
      port: config.port,
      upstreams: pool.status().map((u) => `${u.name} (${u.kind}) ${u.url}`),
      defaultModel: config.models.default,
      auth: config.auth.users.length > 0,
      maxConcurrent: config.queue.maxConcurrent,
      maxQueue: config.queue.maxQueue,
    });
    pool.start();
    warm.start();
    gpu.start(config.gpuSampleS);
    prometheus.start();
  });
  answerClientErrors(server, logger);
  // Generations can be long; Node's defaults would cut slow uploads of big images.
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  server.keepAliveTimeout = 65_000;

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info('shutting down', { signal, running: runningCount(pool), queued: queuedCount(pool) });
    // Stop accepting; resolves once every connection has ended (idle keep-alives close now).
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    pool.stop();
    warm.stop();
    gpu.stop();
    prometheus.stop();
    pool.rejectWaiting(new ServiceShuttingDownError());
    const drained = await pool.drain(config.shutdown.graceS * 1000);
    if (!drained) logger.warn('grace period over: ending running generations', { running: runningCount(pool) });
    jobs.cancelAll();
    // Let the last lines of finished answers flush before the sockets go.
    await Promise.race([closed, new Promise((r) => setTimeout(r, drained ? 2000 : 0))]);
    server.closeAllConnections();
    logger.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

start();

function runningCount(pool: UpstreamPool): number {
  return pool.stats().reduce((n, s) => n + s.active, 0);
}

function queuedCount(pool: UpstreamPool): number {
  return pool.stats().reduce((n, s) => n + s.queued, 0);
}
