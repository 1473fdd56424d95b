import winston from 'winston';

export type Logger = winston.Logger;

/** JSON lines to stdout. Never pass prompts, outputs or credentials to it. */
export function createLogger(opts: { level: string; silent?: boolean; service?: string }): Logger {
  const { combine, errors, timestamp, json } = winston.format;
  return winston.createLogger({
    level: opts.level,
    silent: opts.silent ?? false,
    format: combine(errors({ stack: true }), timestamp(), json()),
    defaultMeta: { service: opts.service ?? 'api' },
    transports: [new winston.transports.Console()],
  });
}

/** A logger that writes nothing: for tests. */
export function createSilentLogger(): Logger {
  return createLogger({ level: 'error', silent: true });
}
