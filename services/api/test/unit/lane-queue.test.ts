import { ClientClosedError, QueueFullError, QueueTimeoutError, ServiceShuttingDownError } from '../../src/errors';
import { LaneQueue, type LaneSlot, type Priority } from '../../src/services/lane-queue';

const opts = { maxConcurrent: 1, maxQueue: 4, timeoutMs: 5000, agingMs: 0 };

/** Releases slots one at a time and records who got each one, in order. */
async function serveAll(first: LaneSlot, waits: Array<Promise<LaneSlot>>, labels: string[]): Promise<string[]> {
  const order: string[] = [];
  const pending = waits.map((p, i) => p.then((s) => ({ s, label: labels[i] })));
  let current: LaneSlot = first;
  for (let n = 0; n < waits.length; n++) {
    const next = Promise.race(pending.filter((_, i) => !order.includes(labels[i])));
    current.release();
    const got = await next;
    order.push(got.label);
    current = got.s;
  }
  current.release();
  return order;
}

describe('LaneQueue', () => {
  test('When a mixed burst waits, then high goes before normal before low, FIFO within a lane', async () => {
    const q = new LaneQueue(opts);
    const held = await q.acquire('m');
    const burst: Array<[string, Priority]> = [
      ['low1', 'low'],
      ['normal1', 'normal'],
      ['high1', 'high'],
      ['low2', 'low'],
      ['high2', 'high'],
      ['normal2', 'normal'],
    ];
    const waits = burst.map(([, p]) => q.acquire('m', undefined, p));
    expect(q.stats()[0].lanes).toEqual({
      high: { queued: 2, served: 0, aged: 0, refused: 0 },
      normal: { queued: 2, served: 1, aged: 0, refused: 0 },
      low: { queued: 2, served: 0, aged: 0, refused: 0 },
    });
    const order = await serveAll(
      held,
      waits,
      burst.map(([l]) => l),
    );
    expect(order).toEqual(['high1', 'high2', 'normal1', 'normal2', 'low1', 'low2']);
    expect(q.activeCount).toBe(0);
  });

  test('When no priority is given, then it goes to the normal lane: FIFO, waitedMs on the slot', async () => {
    let now = 1000;
    const q = new LaneQueue(opts, () => now);
    const a = await q.acquire('m');
    const t = q.admit('m');
    expect(t.position).toBe(1);
    expect(t.priority).toBe('normal');
    now += 750;
    a.release();
    const s = await t.slot;
    expect(s.waitedMs).toBe(750);
    expect(s.priority).toBe('normal');
    expect(s.servedAs).toBe('normal');
    s.release();
  });

  test('When a low request has waited longer than agingMs, then it passes normal requests that came after it moved up', async () => {
    let now = 0;
    const q = new LaneQueue({ ...opts, agingMs: 1000 }, () => now);
    const held = await q.acquire('m');
    const low = q.acquire('m', undefined, 'low');
    now = 500;
    const normalEarly = q.acquire('m', undefined, 'normal'); // in normal before the low one gets there
    now = 1500; // the low one reached normal at t=1000
    const normalLate = q.acquire('m', undefined, 'normal');
    const order = await serveAll(held, [low, normalEarly, normalLate], ['low', 'normalEarly', 'normalLate']);
    expect(order).toEqual(['normalEarly', 'low', 'normalLate']);
    const lanes = q.stats()[0].lanes;
    expect(lanes.low.aged).toBe(1);
    expect((await low).servedAs).toBe('normal');
  });

  test('When a low request has waited two aging periods, then it even passes a later high one; without aging it would starve', async () => {
    for (const agingMs of [1000, 0]) {
      let now = 0;
      const q = new LaneQueue({ ...opts, agingMs }, () => now);
      const held = await q.acquire('m');
      const low = q.acquire('m', undefined, 'low');
      now = 2500; // low reached high at t=2000 (when aging is on)
      const high = q.acquire('m', undefined, 'high');
      const order = await serveAll(held, [low, high], ['low', 'high']);
      expect(order).toEqual(agingMs ? ['low', 'high'] : ['high', 'low']);
    }
  });

  test('When a lane is full, then only that lane refuses: a flood of low cannot refuse a high', async () => {
    const q = new LaneQueue({ ...opts, maxQueue: 2 });
    const held = await q.acquire('m');
    const lows = [q.acquire('m', undefined, 'low'), q.acquire('m', undefined, 'low')];
    let err: unknown;
    try {
      q.admit('m', undefined, 'low');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(QueueFullError);
    expect((err as QueueFullError).status).toBe(503);
    expect((err as QueueFullError).details).toMatchObject({ priority: 'low', queued: 2 });
    const high = q.admit('m', undefined, 'high');
    expect(high.position).toBe(1);
    expect(q.stats()[0].lanes.low.refused).toBe(1);
    const order = await serveAll(held, [high.slot, ...lows], ['high', 'low1', 'low2']);
    expect(order).toEqual(['high', 'low1', 'low2']);
  });

  test('When asked before admission, then refusal() names the full lane exactly as admit() would, counts it, and queues nothing', async () => {
    const q = new LaneQueue({ ...opts, maxQueue: 1 });
    expect(q.refusal('m')).toBeUndefined(); // nothing known about 'm' yet: a slot is free
    const held = await q.acquire('m');
    expect(q.refusal('m')).toBeUndefined(); // running, nobody waiting: one more may wait
    const waiting = q.acquire('m');
    const early = q.refusal('m');
    expect(early).toBeInstanceOf(QueueFullError);
    let late: unknown;
    try {
      q.admit('m');
    } catch (e) {
      late = e;
    }
    expect(early!.message).toBe((late as Error).message);
    expect(early!.details).toEqual((late as QueueFullError).details);
    expect(q.refusal('m', 'high')).toBeUndefined(); // another lane has room
    expect(q.refusal('other')).toBeUndefined(); // another model has its own queue
    expect(q.stats()[0]).toMatchObject({ active: 1, queued: 1 });
    expect(q.stats()[0].lanes.normal.refused).toBe(2);
    await serveAll(held, [waiting], ['w']);
    expect(q.refusal('m')).toBeUndefined();
  });

  test('When requests wait, then the estimate is the queue ahead × recent service time, lane-aware', async () => {
    let now = 0;
    const q = new LaneQueue({ ...opts, maxConcurrent: 2 }, () => now);
    expect(q.estimateWaitMs('m')).toBe(0);
    const a = await q.acquire('m');
    expect(q.estimateWaitMs('m')).toBe(0); // a slot is still free
    const b = await q.acquire('m');
    now += 4000;
    a.release(); // one request took 4 s
    const c = await q.acquire('m');
    expect(q.estimateWaitMs('m', 'normal')).toBe(4000);
    void q.acquire('m', undefined, 'low').catch(() => undefined);
    void q.acquire('m', undefined, 'low').catch(() => undefined);
    void q.acquire('m', undefined, 'normal');
    void q.acquire('m', undefined, 'normal');
    // normal: 2 normal ahead + itself = 3 → 2 rounds of 2; high: nothing ahead → 1 round; low: 5 → 3 rounds
    expect(q.estimateWaitMs('m', 'normal')).toBe(8000);
    expect(q.estimateWaitMs('m', 'high')).toBe(4000);
    expect(q.estimateWaitMs('m', 'low')).toBe(12000);
    expect(q.estimateWaitS('m', 3)).toBe(8);
    q.rejectWaiting(new ServiceShuttingDownError());
    b.release();
    c.release();
  });

  test('When a waiter times out, then it gets QUEUE_TIMEOUT and leaves its lane', async () => {
    const q = new LaneQueue({ ...opts, timeoutMs: 50 });
    const held = await q.acquire('m');
    await expect(q.acquire('m', undefined, 'low')).rejects.toBeInstanceOf(QueueTimeoutError);
    expect(q.queuedCount).toBe(0);
    held.release();
  });

  test('When the caller aborts while waiting, then it leaves the queue and the next one moves up', async () => {
    const q = new LaneQueue(opts);
    const held = await q.acquire('m');
    const ctrl = new AbortController();
    const leaving = q.acquire('m', ctrl.signal, 'high');
    const staying = q.acquire('m', undefined, 'low');
    ctrl.abort();
    await expect(leaving).rejects.toBeInstanceOf(ClientClosedError);
    expect(q.queuedCount).toBe(1);
    held.release();
    const s = await staying;
    expect(q.activeCount).toBe(1);
    s.release();
    expect(() => q.admit('m', ctrl.signal)).toThrow(ClientClosedError);
  });

  test('When draining, then it resolves once the running request releases; rejectWaiting empties every lane', async () => {
    const q = new LaneQueue({ ...opts, maxConcurrent: 2 });
    const s = await q.acquire('m');
    const drained = q.drain(2000);
    setTimeout(() => s.release(), 20);
    await expect(drained).resolves.toBe(true);
    const s1 = await q.acquire('m');
    const s2 = await q.acquire('m');
    const waiting = (['high', 'normal', 'low'] as const).map((p) => q.acquire('m', undefined, p));
    await expect(q.drain(20)).resolves.toBe(false);
    q.rejectWaiting(new ServiceShuttingDownError());
    for (const w of waiting) await expect(w).rejects.toBeInstanceOf(ServiceShuttingDownError);
    expect(q.queuedCount).toBe(0);
    s1.release();
    s2.release();
    expect(q.activeCount).toBe(0);
  });

  test('When models differ, then each has its own queue and onSlot reports lane and wait', async () => {
    const q = new LaneQueue({ ...opts, maxQueue: 0 });
    const seen: unknown[] = [];
    q.onSlot = (model, waitedMs, priority, servedAs) => seen.push([model, waitedMs, priority, servedAs]);
    const gen = await q.acquire('llama3.1:8b', undefined, 'low');
    const emb = await q.acquire('nomic-embed-text', undefined, 'high');
    expect(emb.waitedMs).toBe(0);
    expect(seen).toEqual([
      ['llama3.1:8b', 0, 'low', 'low'],
      ['nomic-embed-text', 0, 'high', 'high'],
    ]);
    gen.release();
    emb.release();
  });

  test('When metrics set onSlot with two parameters, then it gets the model and the wait of each slot', async () => {
    let now = 0;
    const lq = new LaneQueue(opts, () => now);
    const waits: Array<[string, number]> = [];
    lq.onSlot = (model: string, waitedMs: number) => waits.push([model, waitedMs]);
    const s = await lq.acquire('m');
    expect(lq.stats()).toEqual([expect.objectContaining({ model: 'm', active: 1, queued: 0, avgDurationMs: null })]);
    const next = lq.acquire('m');
    now += 300;
    s.release();
    (await next).release();
    expect(waits).toEqual([
      ['m', 0],
      ['m', 300],
    ]);
  });
});

// Normal-priority traffic: what every caller sends today.
describe('LaneQueue, normal lane only', () => {
  test('When the lane is busy, then requests wait in FIFO order and get the slot on release', async () => {
    const q = new LaneQueue({ ...opts, maxConcurrent: 1, maxQueue: 4, timeoutMs: 5000 });
    const first = await q.acquire('m');
    const order: number[] = [];
    const waits = [1, 2, 3].map((n) =>
      q.acquire('m').then((s) => {
        order.push(n);
        return s;
      }),
    );
    expect(q.stats()).toEqual([
      {
        model: 'm',
        active: 1,
        queued: 3,
        avgDurationMs: null,
        lanes: {
          high: { queued: 0, served: 0, aged: 0, refused: 0 },
          normal: { queued: 3, served: 1, aged: 0, refused: 0 },
          low: { queued: 0, served: 0, aged: 0, refused: 0 },
        },
      },
    ]);
    first.release();
    (await waits[0]).release();
    (await waits[1]).release();
    (await waits[2]).release();
    expect(order).toEqual([1, 2, 3]);
    expect(q.activeCount).toBe(0);
  });

  test('When lanes differ, then an embedding never waits behind a generation on another model', async () => {
    const q = new LaneQueue({ ...opts, maxConcurrent: 1, maxQueue: 0, timeoutMs: 1000 });
    const gen = await q.acquire('llama3.1:8b');
    const emb = await q.acquire('nomic-embed-text');
    expect(emb.waitedMs).toBe(0);
    gen.release();
    emb.release();
  });

  test('When the queue is full, then admit throws QUEUE_FULL at once with a Retry-After from recent durations', async () => {
    let now = 0;
    const q = new LaneQueue({ ...opts, maxConcurrent: 1, maxQueue: 1, timeoutMs: 60_000 }, () => now);
    const a = await q.acquire('m');
    now += 8_000; // one request that took 8 s
    a.release();
    const b = await q.acquire('m');
    q.admit('m');
    let err: unknown;
    try {
      q.admit('m');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(QueueFullError);
    expect((err as QueueFullError).status).toBe(503);
    expect((err as QueueFullError).message).toBe("The queue for 'm' is full (1 running, 1 waiting)");
    expect((err as QueueFullError).details).toEqual({ model: 'm', priority: 'normal', running: 1, queued: 1 });
    // two requests ahead at ~8 s each, one at a time
    expect((err as QueueFullError).retryAfterS).toBe(16);
    b.release();
  });

  test('When a waiter times out, then it gets QUEUE_TIMEOUT and leaves the queue', async () => {
    const q = new LaneQueue({ ...opts, maxConcurrent: 1, maxQueue: 2, timeoutMs: 50 });
    const held = await q.acquire('m');
    await expect(q.acquire('m')).rejects.toBeInstanceOf(QueueTimeoutError);
    expect(q.queuedCount).toBe(0);
    held.release();
  });

  test('When the caller aborts while waiting, then it leaves the queue and the next one moves up', async () => {
    const q = new LaneQueue({ ...opts, maxConcurrent: 1, maxQueue: 2, timeoutMs: 5000 });
    const held = await q.acquire('m');
    const ctrl = new AbortController();
    const leaving = q.acquire('m', ctrl.signal);
    const staying = q.acquire('m');
    ctrl.abort();
    await expect(leaving).rejects.toBeInstanceOf(ClientClosedError);
    expect(q.queuedCount).toBe(1);
    held.release();
    const s = await staying;
    expect(q.activeCount).toBe(1);
    s.release();
  });

  test('When draining, then it resolves once the running request releases', async () => {
    const q = new LaneQueue({ ...opts, maxConcurrent: 2, maxQueue: 2, timeoutMs: 5000 });
    const s = await q.acquire('m');
    const drained = q.drain(2000);
    setTimeout(() => s.release(), 20);
    await expect(drained).resolves.toBe(true);
    const s2 = await q.acquire('m');
    await expect(q.drain(20)).resolves.toBe(false);
    s2.release();
  });
});
