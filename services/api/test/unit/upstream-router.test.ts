import { ModelNotFoundError, OllamaUnavailableError } from '../../src/errors';
import { noRouteError, routeUpstreams, type RouteUpstream } from '../../src/services/upstream-router';

const up = (name: string, over: Partial<RouteUpstream> = {}): RouteUpstream => ({
  name,
  priority: 1,
  kind: 'ollama',
  breakerAllows: true,
  models: ['llama3.1:8b', 'nomic-embed-text:latest'],
  estimatedWaitMs: 0,
  ...over,
});
const spill = { spillAfterMs: 10_000 };

describe('routeUpstreams', () => {
  test('When the model is only on B, then B is the only candidate', () => {
    const d = routeUpstreams([up('a'), up('b', { priority: 2, kind: 'openai', models: new Set(['qwen2.5:7b']) })], 'qwen2.5:7b', spill);
    expect(d.candidates).toEqual(['b']);
    expect(d.excluded).toEqual([{ name: 'a', reason: 'no-model' }]);
  });

  test('When both have the model and A is not busy, then A (lowest priority number) first, B as fallback', () => {
    const d = routeUpstreams([up('b', { priority: 2 }), up('a', { estimatedWaitMs: 9_000 })], 'llama3.1:8b', spill);
    expect(d).toEqual({ model: 'llama3.1:8b', candidates: ['a', 'b'], spilled: false, excluded: [] });
  });

  test('When A is saturated past SPILL_AFTER_MS, then B goes first and A stays as fallback', () => {
    const d = routeUpstreams([up('a', { estimatedWaitMs: 10_001 }), up('b', { priority: 2, estimatedWaitMs: 3_000 })], 'llama3.1:8b', spill);
    expect(d.candidates).toEqual(['b', 'a']);
    expect(d.spilled).toBe(true);
  });

  test('When A is over the spill limit but every other is slower, then A stays first', () => {
    const d = routeUpstreams([up('a', { estimatedWaitMs: 20_000 }), up('b', { priority: 2, estimatedWaitMs: 45_000 })], 'llama3.1:8b', spill);
    expect(d.candidates).toEqual(['a', 'b']);
    expect(d.spilled).toBe(false);
  });

  test('When spilling among three, then the smallest wait goes first and the rest keep priority order', () => {
    const d = routeUpstreams(
      [up('a', { estimatedWaitMs: 30_000 }), up('b', { priority: 2, estimatedWaitMs: 12_000 }), up('c', { priority: 3, estimatedWaitMs: 0 })],
      'llama3.1:8b',
      spill,
    );
    expect(d.candidates).toEqual(['c', 'a', 'b']);
  });

  test('When two share the lowest priority number, then the one with the shorter wait goes first, then config order', () => {
    expect(routeUpstreams([up('a', { estimatedWaitMs: 5_000 }), up('b', { estimatedWaitMs: 1_000 })], 'llama3.1:8b', spill).candidates).toEqual(['b', 'a']);
    expect(routeUpstreams([up('a'), up('b')], 'llama3.1:8b', spill).candidates).toEqual(['a', 'b']);
  });

  test("When A's breaker is open, then B serves", () => {
    const d = routeUpstreams([up('a', { breakerAllows: false }), up('b', { priority: 2 })], 'llama3.1:8b', spill);
    expect(d.candidates).toEqual(['b']);
    expect(d.excluded).toEqual([{ name: 'a', reason: 'breaker-open' }]);
  });

  test('When names differ only by an implicit :latest tag, then they match', () => {
    expect(routeUpstreams([up('a')], 'nomic-embed-text', spill).candidates).toEqual(['a']);
    expect(routeUpstreams([up('a', { models: ['nomic-embed-text'] })], 'nomic-embed-text:latest', spill).candidates).toEqual(['a']);
    expect(routeUpstreams([up('a')], 'llama3.1:70b', spill).candidates).toEqual([]);
  });

  test('When nobody has the model, then the list is empty and the answer is 404 MODEL_NOT_FOUND', () => {
    const ups = [up('a'), up('b')];
    const d = routeUpstreams(ups, 'phi3:mini', spill);
    expect(d.candidates).toEqual([]);
    const err = noRouteError(d, ups);
    expect(err).toBeInstanceOf(ModelNotFoundError);
    expect(err.status).toBe(404);
  });

  test('When every upstream with the model is down, then the answer is 503 OLLAMA_UNAVAILABLE with the soonest Retry-After', () => {
    const ups = [
      up('a', { breakerAllows: false, breakerRetryInMs: 7_200 }),
      up('b', { breakerAllows: false, breakerRetryInMs: 2_100 }),
      up('c', { models: ['other'] }),
    ];
    const d = routeUpstreams(ups, 'llama3.1:8b', spill);
    expect(d.candidates).toEqual([]);
    const err = noRouteError(d, ups);
    expect(err).toBeInstanceOf(OllamaUnavailableError);
    expect(err.status).toBe(503);
    expect(err.retryAfterS).toBe(3);
    expect(err.message).toBe("No upstream can serve 'llama3.1:8b' now: a unreachable, b unreachable");
  });

  test('When an upstream has not reported its models yet, then it is left out and an empty route is a 503, not a 404', () => {
    const ups = [up('a', { models: null })];
    const d = routeUpstreams(ups, 'llama3.1:8b', spill);
    expect(d.excluded).toEqual([{ name: 'a', reason: 'models-unknown' }]);
    expect(noRouteError(d, ups).status).toBe(503);
  });
});
