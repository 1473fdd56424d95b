/**
 * The routing decision, as a pure function: which upstreams may serve `model`, in which order.
 *
 * - Only upstreams that have the model and whose breaker lets a request through.
 * - Base order: lowest `priority` number first; among equal priorities the smallest estimated wait,
 *   then configuration order.
 * - Spill: when the first one's estimated wait (queue ahead × its recent service time) exceeds
 *   `spillAfterMs`, the candidate with the smallest estimated wait goes first instead (which may
 *   still be the first one, when every other is slower).
 * - The rest follow in base order as fallbacks: a refused or timed-out connection or a 5xx before
 *   the first byte moves the request to the next candidate; after the first byte, no retry.
 *
 * An empty list means nobody can serve: `noRouteError` turns the decision into the answer
 * (404 MODEL_NOT_FOUND when no upstream has the model, else 503 OLLAMA_UNAVAILABLE + Retry-After).
 */
import { AppError, ModelNotFoundError, OllamaUnavailableError } from '../errors';
import { normalizeModelName } from './model-catalog';

export interface RouteUpstream {
  name: string;
  priority: number;
  kind: 'ollama' | 'openai';
  /** The breaker lets a request through now (CircuitBreaker.wouldAllow()). */
  breakerAllows: boolean;
  /** Until an open breaker lets a probe through (ms), for Retry-After. */
  breakerRetryInMs?: number;
  /** Models it serves (discovered or configured); null = not known yet (discovery pending or failed). */
  models: ReadonlySet<string> | readonly string[] | null;
  /** Estimated wait for this model on this upstream now (LaneQueue.estimateWaitMs). */
  estimatedWaitMs: number;
}

export type ExclusionReason = 'no-model' | 'models-unknown' | 'breaker-open';

export interface RouteDecision {
  model: string;
  /** Upstream names, best first. Empty: nobody can serve. */
  candidates: string[];
  /** True when the preferred upstream was passed over for a shorter wait. */
  spilled: boolean;
  excluded: Array<{ name: string; reason: ExclusionReason }>;
}

function hasModel(models: ReadonlySet<string> | readonly string[], model: string): boolean {
  const wanted = normalizeModelName(model);
  for (const m of models) if (m === model || normalizeModelName(m) === wanted) return true;
  return false;
}

export function routeUpstreams(upstreams: readonly RouteUpstream[], model: string, opts: { spillAfterMs: number }): RouteDecision {
  const excluded: RouteDecision['excluded'] = [];
  const eligible: Array<{ u: RouteUpstream; index: number }> = [];
  upstreams.forEach((u, index) => {
    if (u.models === null) excluded.push({ name: u.name, reason: 'models-unknown' });
    else if (!hasModel(u.models, model)) excluded.push({ name: u.name, reason: 'no-model' });
    else if (!u.breakerAllows) excluded.push({ name: u.name, reason: 'breaker-open' });
    else eligible.push({ u, index });
  });
  eligible.sort((a, b) => a.u.priority - b.u.priority || a.u.estimatedWaitMs - b.u.estimatedWaitMs || a.index - b.index);

  let spilled = false;
  if (eligible.length > 1 && eligible[0].u.estimatedWaitMs > opts.spillAfterMs) {
    let best = 0;
    for (let i = 1; i < eligible.length; i++) {
      const a = eligible[i].u;
      const b = eligible[best].u;
      if (a.estimatedWaitMs < b.estimatedWaitMs) best = i;
    }
    if (best !== 0) {
      const [moved] = eligible.splice(best, 1);
      eligible.unshift(moved);
      spilled = true;
    }
  }
  return { model, candidates: eligible.map((e) => e.u.name), spilled, excluded };
}

/** The answer when `candidates` is empty. */
export function noRouteError(decision: RouteDecision, upstreams: readonly RouteUpstream[]): AppError {
  const reasons = decision.excluded;
  const byName = new Map(upstreams.map((u) => [u.name, u]));
  const down = reasons.filter((r) => r.reason === 'breaker-open');
  const unknown = reasons.filter((r) => r.reason === 'models-unknown');
  if (down.length === 0 && unknown.length === 0) {
    return new ModelNotFoundError(decision.model, {
      hint: `No upstream serves it (${upstreams.map((u) => u.name).join(', ')}). Pull it on an Ollama upstream, or add it to an upstream's "models".`,
    });
  }
  const retryInMs = Math.min(...down.map((r) => byName.get(r.name)?.breakerRetryInMs ?? 10_000), unknown.length ? 10_000 : Infinity);
  const why = [...down.map((r) => `${r.name} unreachable`), ...unknown.map((r) => `${r.name} not answering`)].join(', ');
  return new OllamaUnavailableError(`No upstream can serve '${decision.model}' now: ${why}`, {
    retryAfterS: Math.max(1, Math.ceil(retryInMs / 1000)),
    details: { model: decision.model, upstreams: reasons },
  });
}
