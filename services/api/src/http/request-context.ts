/**
 * Request id (X-Request-Id echoed when sane, made otherwise) and the one access-log line per
 * request: id, route, status, duration, user, plus what routes add to `res.locals.log`
 * (model, queue wait, tokens). Never bodies, prompts, outputs or credentials.
 */
import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import type { Logger } from '../logger';

const SANE_ID = /^[A-Za-z0-9._:-]{1,128}$/;

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      id: string;
      log: Logger;
    }
    interface Locals {
      /** Fields routes add to the access-log line. */
      log?: Record<string, unknown>;
    }
  }
}

export function requestContext(logger: Logger) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const incoming = req.get('x-request-id');
    req.id = incoming && SANE_ID.test(incoming) ? incoming : randomUUID();
    req.log = logger.child({ requestId: req.id });
    res.setHeader('X-Request-Id', req.id);
    const started = process.hrtime.bigint();
    let logged = false;
    const done = () => {
      if (logged) return;
      logged = true;
      const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
      const user = (req as Request & { auth?: { user?: string } }).auth?.user;
      req.log.info('request', {
        method: req.method,
        route: req.route?.path ? `${req.baseUrl}${req.route.path}` : req.path,
        status: res.statusCode,
        durationMs: Math.round(durationMs * 10) / 10,
        aborted: !res.writableFinished,
        ...(user ? { user } : {}),
        ...res.locals.log,
      });
    };
    res.on('finish', done);
    res.on('close', done);
    next();
  };
}

/** An AbortSignal that fires when the caller goes away before the response is complete. */
export function clientGone(res: Response): AbortSignal {
  const ctrl = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) ctrl.abort();
  });
  return ctrl.signal;
}
