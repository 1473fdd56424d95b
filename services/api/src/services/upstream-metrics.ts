/** The pool's metrics: per-upstream gauges read at scrape time, and the request / failover counters. */
import client from 'prom-client';
import type { UpstreamStatus } from './upstream-pool';

export function registerUpstreamMetrics(
  registry: client.Registry,
  status: () => UpstreamStatus[],
): { requests: client.Counter<'upstream' | 'outcome'>; failovers: client.Counter<'from' | 'to'> } {
  const gauge = (name: string, help: string, read: (s: UpstreamStatus) => number) =>
    new client.Gauge({
      name,
      help,
      labelNames: ['upstream', 'kind'],
      registers: [registry],
      collect() {
        this.reset();
        for (const s of status()) this.set({ upstream: s.name, kind: s.kind }, read(s));
      },
    });
  gauge('ai_local_upstream_up', '1 when the upstream answers and its breaker is not open', (s) => (s.state === 'up' ? 1 : 0));
  gauge('ai_local_upstream_breaker_open', '1 while the upstream circuit breaker is open', (s) => (s.breaker.state === 'open' ? 1 : 0));
  gauge('ai_local_upstream_models', 'Models the upstream serves (discovered or configured)', (s) => s.models?.length ?? 0);
  gauge('ai_local_upstream_running', 'Requests holding a slot at the upstream', (s) => s.queue.running);
  gauge('ai_local_upstream_queued', 'Requests waiting for a slot at the upstream', (s) => s.queue.queued);
  gauge('ai_local_upstream_estimated_wait_seconds', 'Estimated wait for a new request at the upstream', (s) => s.queue.estimatedWaitMs / 1000);
  return {
    requests: new client.Counter({
      name: 'ai_local_upstream_requests_total',
      help: 'Upstream calls by outcome (ok; failover: failed before the first byte and moved on; error)',
      labelNames: ['upstream', 'outcome'],
      registers: [registry],
    }),
    failovers: new client.Counter({
      name: 'ai_local_upstream_failovers_total',
      help: 'Requests moved from one upstream to the next before the first byte',
      labelNames: ['from', 'to'],
      registers: [registry],
    }),
  };
}
