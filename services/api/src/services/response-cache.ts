/**
 * Exact-match cache for answers that are deterministic: embeddings, and generations with
 * temperature 0 and a fixed seed. Bounded LRU (Map insertion order) with a TTL; keys are SHA-256
 * digests of the canonical request, so prompts are not kept as keys.
 */
import { createHash } from 'node:crypto';

/** JSON with object keys sorted, so {a,b} and {b,a} are the same request. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

export class ResponseCache {
  private readonly entries = new Map<string, { value: unknown; expires: number }>();

  constructor(
    private readonly opts: { maxEntries: number; ttlS: number },
    private readonly now: () => number = Date.now,
  ) {}

  get enabled(): boolean {
    return this.opts.maxEntries > 0 && this.opts.ttlS > 0;
  }

  key(parts: unknown): string {
    return createHash('sha256').update(canonicalJson(parts)).digest('hex');
  }

  get(key: string): unknown {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (e.expires <= this.now()) {
      this.entries.delete(key);
      return undefined;
    }
    // Refresh recency.
    this.entries.delete(key);
    this.entries.set(key, e);
    return e.value;
  }

  set(key: string, value: unknown): void {
    if (!this.enabled) return;
    this.entries.delete(key);
    this.entries.set(key, { value, expires: this.now() + this.opts.ttlS * 1000 });
    while (this.entries.size > this.opts.maxEntries) this.entries.delete(this.entries.keys().next().value as string);
  }

  get size(): number {
    return this.entries.size;
  }
}
