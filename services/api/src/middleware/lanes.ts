/**
 * The lane of a request and what the routes learn while it runs.
 *
 * `X-Priority: high | normal | low` chooses the lane; without it the user's USER_PRIORITY entry,
 * else normal. A bad value is refused (400) here, before the body is read. While the request runs,
 * its queue wait goes into `X-Queue-Wait-Ms` and the upstream that took it into `X-Upstream` (as
 * long as the headers are not out yet), and both into the access line.
 */
import type { RequestHandler, Response } from 'express';
import { priorityFor, type Priority } from '../config/upstreams';
import { ValidationError } from '../errors';
import type { RunOptions } from '../services/generation.service';
import { userOf } from './auth';

export function assignPriority(userPriority: Record<string, Priority>): RequestHandler {
  return (req, res, next) => {
    const priority = priorityFor(req.get('x-priority'), userOf(req) ?? undefined, userPriority);
    if (!priority) {
      next(new ValidationError('X-Priority must be high, normal or low', [{ field: 'X-Priority', message: 'must be high, normal or low' }]));
      return;
    }
    res.locals.priority = priority;
    next();
  };
}

export function laneOf(res: Response): Priority {
  return (res.locals.priority as Priority | undefined) ?? 'normal';
}

/**
 * The lane and hooks to hand to a service. `onRunning`: the request got its slot (async jobs mark
 * themselves running); `onStart`: an upstream took it (a stream commits its headers).
 */
export function runOptions(res: Response, extra: { onRunning?: () => void; onStart?: () => void } = {}): Required<RunOptions> {
  const priority = laneOf(res);
  return {
    priority,
    hooks: {
      onSlot: (slot) => {
        extra.onRunning?.();
        const waited = Math.round(slot.waitedMs);
        res.locals.log = { ...res.locals.log, queueWaitMs: waited, ...(priority !== 'normal' ? { priority } : {}) };
        if (!res.headersSent) res.setHeader('X-Queue-Wait-Ms', String(waited));
      },
      early: extra.onStart !== undefined,
      onStart: (upstream) => {
        res.locals.log = { ...res.locals.log, upstream };
        if (!res.headersSent) res.setHeader('X-Upstream', upstream);
        extra.onStart?.();
      },
    },
  };
}
