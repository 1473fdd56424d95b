import {
  ClientClosedError,
  ModelNotFoundError,
  OllamaUnavailableError,
  QueueFullError,
  UpstreamError,
  UpstreamRejectedError,
  UpstreamTimeoutError,
} from '../../src/errors';
import { CircuitBreaker, isBreakerFailure, type BreakerState } from '../../src/services/circuit-breaker';

function clocked(failureThreshold = 3, openMs = 10_000) {
  const t = { now: 1_000_000 };
  const b = new CircuitBreaker({ failureThreshold, openMs }, () => t.now);
  const changes: Array<[BreakerState, BreakerState]> = [];
  b.onChange = (from, to) => changes.push([from, to]);
  return { t, b, changes };
}

describe('CircuitBreaker', () => {
  test('When failures are not consecutive, then the breaker stays closed', () => {
    const { b } = clocked(3);
    b.failure();
    b.failure();
    b.success();
    b.failure();
    b.failure();
    expect(b.state).toBe('closed');
    expect(b.snapshot()).toMatchObject({ state: 'closed', consecutiveFailures: 2, failures: 4, successes: 1, opened: 0 });
  });

  test('When N consecutive failures happen, then it opens and refuses for openMs, then lets exactly one probe through', () => {
    const { t, b, changes } = clocked(3, 10_000);
    for (let i = 0; i < 3; i++) {
      expect(b.tryAcquire()).toBe(true);
      b.failure();
    }
    expect(b.state).toBe('open');
    expect(b.wouldAllow()).toBe(false);
    expect(b.tryAcquire()).toBe(false);
    t.now += 4_000;
    expect(b.snapshot()).toMatchObject({ state: 'open', retryInMs: 6_000, rejected: 1, opened: 1 });
    t.now += 6_000;
    expect(b.state).toBe('half-open');
    expect(b.wouldAllow()).toBe(true);
    expect(b.tryAcquire()).toBe(true); // the probe
    expect(b.wouldAllow()).toBe(false);
    expect(b.tryAcquire()).toBe(false); // everyone else waits for its verdict
    expect(changes).toEqual([
      ['closed', 'open'],
      ['open', 'half-open'],
    ]);
  });

  test('When the probe succeeds, then it closes; when it fails, then it opens again for openMs', () => {
    const { t, b, changes } = clocked(1, 1_000);
    b.failure();
    t.now += 1_000;
    expect(b.tryAcquire()).toBe(true);
    b.failure();
    expect(b.state).toBe('open');
    t.now += 999;
    expect(b.wouldAllow()).toBe(false);
    t.now += 1;
    expect(b.tryAcquire()).toBe(true);
    b.success();
    expect(b.state).toBe('closed');
    expect(b.tryAcquire()).toBe(true);
    expect(b.tryAcquire()).toBe(true);
    expect(changes.map(([, to]) => to)).toEqual(['open', 'half-open', 'open', 'half-open', 'closed']);
    expect(b.snapshot()).toMatchObject({ opened: 2, consecutiveFailures: 0 });
  });

  test('When the probe ends without a verdict, then the next caller may probe; a silent probe is given up after probeTimeoutMs', () => {
    const t = { now: 0 };
    const b = new CircuitBreaker({ failureThreshold: 1, openMs: 1_000, probeTimeoutMs: 5_000 }, () => t.now);
    b.failure();
    t.now = 1_000;
    expect(b.tryAcquire()).toBe(true);
    b.record(new ClientClosedError());
    expect(b.state).toBe('half-open');
    expect(b.tryAcquire()).toBe(true);
    t.now += 4_999;
    expect(b.tryAcquire()).toBe(false);
    t.now += 1;
    expect(b.tryAcquire()).toBe(true);
  });

  test('When outcomes are recorded, then only connect failures and 5xx count; a live upstream answering 4xx closes it', () => {
    const { t, b } = clocked(2, 1_000);
    b.record(new UpstreamRejectedError('bad option'));
    b.record(new ModelNotFoundError('x'));
    b.record(new QueueFullError('busy', 5));
    b.record(new UpstreamTimeoutError('m', 60));
    expect(b.snapshot().consecutiveFailures).toBe(0);
    b.record(new OllamaUnavailableError('refused'));
    b.record(new UpstreamError('500 from upstream'));
    expect(b.state).toBe('open');
    t.now += 1_000;
    expect(b.tryAcquire()).toBe(true);
    b.record(new ModelNotFoundError('x'));
    expect(b.state).toBe('closed');
  });

  test('When an error is classified, then connect failures, 5xx and unmapped errors count, caller faults do not', () => {
    expect(isBreakerFailure(new OllamaUnavailableError())).toBe(true);
    expect(isBreakerFailure(new UpstreamError('x'))).toBe(true);
    expect(isBreakerFailure(new Error('socket hang up'))).toBe(true);
    expect(isBreakerFailure(new ClientClosedError())).toBe(false);
    expect(isBreakerFailure(new UpstreamRejectedError('x'))).toBe(false);
    expect(isBreakerFailure(new QueueFullError('x', 1))).toBe(false);
  });
});
