/**
 * HTTP basic auth (express-basic-auth: timing-safe comparison of user and password, per its
 * README's "Timing attacks" section), the admin gate and who may read /metrics. When AUTH_USERS
 * is empty, auth is off (main.ts warns loudly) and admin routes and /metrics are closed, never open.
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import basicAuth from 'express-basic-auth';
import type { Config } from '../config';
import { ForbiddenError, UnauthorizedError } from '../errors';
import { errorBody } from './error-handler';

export function authenticate(auth: Config['auth']): RequestHandler {
  if (auth.users.length === 0) return (_req, _res, next) => next();
  const users = Object.fromEntries(auth.users.map((u) => [u.name, u.password]));
  return basicAuth({
    authorizer: (user: string, password: string) => {
      // Compare against every user so the time taken does not reveal which names exist.
      let ok = false;
      for (const [name, pw] of Object.entries(users)) {
        const match = Number(basicAuth.safeCompare(user, name)) & Number(basicAuth.safeCompare(password, pw));
        ok = ok || Boolean(match);
      }
      return ok;
    },
    challenge: true,
    realm: 'ai-local-core',
    unauthorizedResponse: (req: Request) => {
      if (req.res) req.res.locals.log = { ...req.res.locals.log, errorCode: 'UNAUTHORIZED' };
      return errorBody(new UnauthorizedError(req.get('authorization') ? 'Invalid credentials' : 'Authentication required'), req.id);
    },
  });
}

/** The authenticated user name (express-basic-auth puts it on req.auth), or null. */
export function userOf(req: Request): string | null {
  return (req as Request & { auth?: { user?: string } }).auth?.user ?? null;
}

/** Whether the request's user is in ADMIN_USERS (never while auth is off). */
export function isAdmin(auth: Config['auth'], req: Request): boolean {
  const user = userOf(req);
  return auth.users.length > 0 && user !== null && auth.adminUsers.includes(user);
}

/** /metrics is for admins and the users in METRICS_USERS (never while auth is off). */
export function requireMetricsReader(config: Pick<Config, 'auth' | 'metricsUsers'>): RequestHandler {
  return (req: Request, _res: Response, next: NextFunction) => {
    const user = userOf(req);
    const allowed = isAdmin(config.auth, req) || (config.auth.users.length > 0 && user !== null && config.metricsUsers.includes(user));
    next(allowed ? undefined : new ForbiddenError('/metrics is for admins and METRICS_USERS'));
  };
}

export function requireAdmin(auth: Config['auth']): RequestHandler {
  return (req: Request, _res: Response, next: NextFunction) => {
    const user = userOf(req);
    if (auth.users.length === 0) {
      next(new ForbiddenError('Admin routes are closed while auth is off: set AUTH_USERS and ADMIN_USERS'));
      return;
    }
    if (!user) {
      next(new UnauthorizedError());
      return;
    }
    if (!auth.adminUsers.includes(user)) {
      next(new ForbiddenError());
      return;
    }
    next();
  };
}
