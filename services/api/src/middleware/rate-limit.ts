/** Requests per minute per user (or client address when auth is off): 429 RATE_LIMITED with Retry-After. */
import type { RequestHandler } from 'express';
import { ipKeyGenerator, rateLimit } from 'express-rate-limit';
import { AppError } from '../errors';
import { userOf } from './auth';
import { errorBody } from './error-handler';

export function rateLimiter(perMinute: number): RequestHandler {
  return rateLimit({
    windowMs: 60_000,
    limit: perMinute,
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    keyGenerator: (req) => userOf(req) ?? ipKeyGenerator(req.ip ?? 'unknown'),
    handler: (req, res) => {
      const err = new AppError('RATE_LIMITED', 429, 'Too many requests', { retryAfterS: 60, hint: `At most ${perMinute} requests a minute.` });
      res.setHeader('Retry-After', '60');
      res.status(429).json(errorBody(err, req.id));
    },
  });
}
