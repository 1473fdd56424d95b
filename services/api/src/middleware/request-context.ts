/**
 * Request id (X-Request-Id echoed when sane, made otherwise) and the one access-log line per
 * request: id, route, status, duration, user, plus what routes add to `res.locals.log`
 * (model, queue wait, tokens). Never bodies, prompts, outputs or credentials.
 */
import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import type { Logger } from '../logger';
import { userOf } from './auth';
import type { Metrics } from '../services/metrics';

const SANE_ID = /^[A-Za-z0-9._:-]{1,128}$/;

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace -- Express's request types are extended by merging into its global namespace
  namespace Express {
    interface Request {
      id: string;
      log: Logger;
    }
    interface Locals {
      /** Fields routes add to the access-log line. */
      log?: Record<string, unknown>;
      mount?: string;
    }
  }
}

export function requestContext(logger: Logger, metrics?: Metrics) {
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
      const user = userOf(req);
      // A route pattern (bounded label set) for metrics; the raw path only in the log.
      // Express resets req.baseUrl when a router is left (an error goes to the app's handler), so
      // the mount path is remembered on the way in (rememberMount).
      const base = res.locals.mount ?? req.baseUrl;
      const routePath = (req.route as { path?: string } | undefined)?.path;
      const pattern = routePath ? `${base}${routePath}` : 'unmatched';
      const errorCode = (res.locals.log?.errorCode ?? res.locals.log?.streamError) as string | undefined;
      if (metrics) {
        metrics.request(pattern, req.method, res.statusCode, durationMs / 1000);
        if (errorCode) metrics.error(errorCode, res.statusCode, pattern);
        else if (res.statusCode >= 400) metrics.error(`HTTP_${res.statusCode}`, res.statusCode, pattern);
      }
      // one line per request: warn when the answer is a 5xx (its errorCode says why), else info
      req.log.log(res.statusCode >= 500 ? 'warn' : 'info', 'request', {
        method: req.method,
        route: routePath ? pattern : req.path,
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

/** Mounted at each router prefix: keeps the mount path for the access log and metrics. */
export function rememberMount(req: Request, res: Response, next: NextFunction): void {
  res.locals.mount = req.baseUrl;
  next();
}

/** An AbortSignal that fires when the caller goes away before the response is complete. */
export function clientGone(res: Response): AbortSignal {
  const ctrl = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) ctrl.abort();
  });
  return ctrl.signal;
}

/** Records the queue wait in the access line when the request gets its GPU slot. */
export function logQueueWait(res: Response): (slot: { waitedMs: number }) => void {
  return (slot) => {
    res.locals.log = { ...res.locals.log, queueWaitMs: slot.waitedMs };
  };
}
