/**
 * The lane of a request and what the routes learn while it runs.
 *
 * `X-Priority: high | normal | low` chooses the lane; without it the user's USER_PRIORITY entry,
 * else normal. A bad value is refused (400) here, before the body is read. While the request runs,
 * its queue wait goes into `X-Queue-Wait-Ms` and the upstream that took it into `X-Upstream` (as
 * long as the headers are not out yet), and both into the access line.
 */
import type { RequestHandler, Response } from 'express';
import { priorityFor, type Priority, type UpstreamKind } from '../config/upstreams';
import { type AppError, ValidationError } from '../errors';
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

/** What a request will queue for, as read from its body before validation. */
export interface QueueTarget {
  model: string | undefined;
  kind: 'chat' | 'embed' | 'vision';
  kinds?: readonly UpstreamKind[];
}

/** Who can tell, synchronously, that a request would be refused for a full queue (GenerationService, PassthroughService). */
export interface EarlyRefusal {
  refusal(model: string | undefined, kind: QueueTarget['kind'], priority: Priority, kinds?: readonly UpstreamKind[]): AppError | undefined;
}

/** The body's `model` as a route would take it: absent or empty = the default; any other non-string = unreadable. */
export function rawModel(body: Record<string, unknown>): string | undefined | null {
  const m = body.model;
  if (m === undefined || m === null || m === '') return undefined;
  return typeof m === 'string' ? m : null;
}

/**
 * Admission before work: a request whose lane is full for its model is refused (503 QUEUE_FULL +
 * Retry-After) as soon as its JSON is parsed, before validation, the model check, the cache and
 * routing; under overload a refusal then costs little more than /health (make bench, section 5).
 * The route's own admit() still decides for everything else, and refuses the same way if the queue
 * filled up in between. `target` reads the unvalidated body: undefined (a body it cannot read, a
 * request the cache may answer) skips the check, and validation answers as usual.
 */
export function refuseWhenFull(source: EarlyRefusal, target: (body: Record<string, unknown>) => QueueTarget | undefined): RequestHandler {
  return (req, res, next) => {
    const body: unknown = req.body;
    const t = body !== null && typeof body === 'object' && !Array.isArray(body) ? target(body as Record<string, unknown>) : undefined;
    next(t ? source.refusal(t.model, t.kind, laneOf(res), t.kinds) : undefined);
  };
}

/** refuseWhenFull for a body whose `model` names the model; `kind` fixed, or read from the body. */
export function refuseWhenModelFull(
  source: EarlyRefusal,
  kind: QueueTarget['kind'] | ((body: Record<string, unknown>) => QueueTarget['kind']),
  kinds?: readonly UpstreamKind[],
): RequestHandler {
  return refuseWhenFull(source, (b) => {
    const model = rawModel(b);
    return model === null ? undefined : { model, kind: typeof kind === 'function' ? kind(b) : kind, kinds };
  });
}
