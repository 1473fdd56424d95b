/** Serves a cacheable request from the response cache: `X-Cache: HIT|MISS`, `Cache-Control: no-cache` bypasses. */
import type { Request, Response } from 'express';
import type { Metrics } from '../../services/metrics';
import type { ResponseCache } from '../../services/response-cache';

export interface CacheContext {
  cache: ResponseCache;
  metrics?: Metrics;
  kind: string;
  /** The canonical request; undefined = not cacheable. */
  parts?: unknown;
}

/**
 * A JSON answer without res.json's detours (content-type negotiation, charset parsing, ETag and
 * freshness checks that a POST answer never uses): the same bytes and headers, written once.
 */
export function sendJson(res: Response, value: unknown): void {
  const body = JSON.stringify(value) ?? '';
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(body);
}

export async function cachedJson(req: Request, res: Response, ctx: CacheContext, produce: () => Promise<unknown>): Promise<void> {
  if (!ctx.cache.enabled || ctx.parts === undefined) {
    sendJson(res, await produce());
    return;
  }
  const key = ctx.cache.key({ kind: ctx.kind, ...(ctx.parts as object) });
  const bypass = /no-cache|no-store/i.test(req.get('cache-control') ?? '');
  const hit = bypass ? undefined : ctx.cache.get(key);
  ctx.metrics?.cacheLookup(ctx.kind, hit !== undefined);
  if (hit !== undefined) {
    res.locals.log = { ...res.locals.log, cache: 'HIT' };
    res.setHeader('X-Cache', 'HIT');
    sendJson(res, hit);
    return;
  }
  const value = await produce();
  ctx.cache.set(key, value);
  res.setHeader('X-Cache', 'MISS');
  sendJson(res, value);
}
