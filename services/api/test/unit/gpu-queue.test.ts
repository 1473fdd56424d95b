import { ClientClosedError, QueueFullError, QueueTimeoutError } from '../../src/errors';
import { GpuQueue } from '../../src/services/gpu-queue';

describe('GpuQueue', () => {
  test('When the lane is busy, then requests wait in FIFO order and get the slot on release', async () => {
    const q = new GpuQueue({ maxConcurrent: 1, maxQueue: 4, timeoutMs: 5000 });
    const first = await q.acquire('m');
    const order: number[] = [];
    const waits = [1, 2, 3].map((n) =>
      q.acquire('m').then((s) => {
        order.push(n);
        return s;
      }),
    );
    expect(q.stats()).toEqual([{ model: 'm', active: 1, queued: 3, avgDurationMs: null }]);
    first.release();
    (await waits[0]).release();
    (await waits[1]).release();
    (await waits[2]).release();
    expect(order).toEqual([1, 2, 3]);
    expect(q.activeCount).toBe(0);
  });

  test('When lanes differ, then an embedding never waits behind a generation on another model', async () => {
    const q = new GpuQueue({ maxConcurrent: 1, maxQueue: 0, timeoutMs: 1000 });
    const gen = await q.acquire('llama3.1:8b');
    const emb = await q.acquire('nomic-embed-text');
    expect(emb.waitedMs).toBe(0);
    gen.release();
    emb.release();
  });

  test('When the queue is full, then admit throws QUEUE_FULL at once with a Retry-After from recent durations', async () => {
    let now = 0;
    const q = new GpuQueue({ maxConcurrent: 1, maxQueue: 1, timeoutMs: 60_000 }, () => now);
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
    // two requests ahead at ~8 s each, one at a time
    expect((err as QueueFullError).retryAfterS).toBe(16);
    b.release();
  });

  test('When a waiter times out, then it gets QUEUE_TIMEOUT and leaves the queue', async () => {
    const q = new GpuQueue({ maxConcurrent: 1, maxQueue: 2, timeoutMs: 50 });
    const held = await q.acquire('m');
    await expect(q.acquire('m')).rejects.toBeInstanceOf(QueueTimeoutError);
    expect(q.queuedCount).toBe(0);
    held.release();
  });

  test('When the caller aborts while waiting, then it leaves the queue and the next one moves up', async () => {
    const q = new GpuQueue({ maxConcurrent: 1, maxQueue: 2, timeoutMs: 5000 });
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
    const q = new GpuQueue({ maxConcurrent: 2, maxQueue: 2, timeoutMs: 5000 });
    const s = await q.acquire('m');
    const drained = q.drain(2000);
    setTimeout(() => s.release(), 20);
    await expect(drained).resolves.toBe(true);
    const s2 = await q.acquire('m');
    await expect(q.drain(20)).resolves.toBe(false);
    s2.release();
  });
});
