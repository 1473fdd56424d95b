/**
 * A stand-in for Prometheus' HTTP API v1 on loopback: /api/v1/query, /api/v1/query_range and
 * /api/v1/alerts, in Prometheus' answer shapes. Instant queries are answered by the first rule whose
 * pattern matches the PromQL (no match: an empty vector, as for a series that does not exist);
 * every query is recorded so tests can count them.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  state: 'firing' | 'pending' | 'inactive';
  activeAt: string;
  value: string;
}

export class FakePrometheus {
  /** [pattern, value]: the answer to instant queries whose PromQL matches. */
  instant: Array<[RegExp, number]> = [];
  /** PromQL of range queries → its value at time t (unix seconds); missing = empty matrix. */
  range: Array<[RegExp, (t: number) => number | null]> = [];
  alerts: FakeAlert[] = [];
  readonly queries: string[] = [];
  /** Answer every request with this status (e.g. 503) when set. */
  failWith?: number;

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(): Promise<FakePrometheus> {
    const holder: { self?: FakePrometheus } = {};
    const server = createServer((req, res) => holder.self!.handle(req.url ?? '/', res));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    holder.self = new FakePrometheus(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    return holder.self;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }

  private handle(rawUrl: string, res: import('node:http').ServerResponse): void {
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (this.failWith) return send(this.failWith, { status: 'error', errorType: 'unavailable', error: 'fake outage' });
    const url = new URL(rawUrl, 'http://x');
    const q = url.searchParams.get('query') ?? '';
    if (url.pathname === '/api/v1/query') {
      this.queries.push(q);
      const hit = this.instant.find(([re]) => re.test(q));
      const result = hit ? [{ metric: {}, value: [Date.now() / 1000, String(hit[1])] }] : [];
      return send(200, { status: 'success', data: { resultType: 'vector', result } });
    }
    if (url.pathname === '/api/v1/query_range') {
      this.queries.push(q);
      const start = Number(url.searchParams.get('start'));
      const end = Number(url.searchParams.get('end'));
      const step = Number(url.searchParams.get('step'));
      if (!Number.isFinite(start) || !Number.isFinite(end) || !(step > 0)) return send(400, { status: 'error', errorType: 'bad_data', error: 'bad range' });
      const fn = this.range.find(([re]) => re.test(q))?.[1];
      const values: Array<[number, string]> = [];
      for (let t = start; fn && t <= end; t += step) {
        const v = fn(t);
        if (v !== null) values.push([t, String(v)]);
      }
      return send(200, { status: 'success', data: { resultType: 'matrix', result: values.length ? [{ metric: {}, values }] : [] } });
    }
    if (url.pathname === '/api/v1/alerts') return send(200, { status: 'success', data: { alerts: this.alerts } });
    send(404, { status: 'error', errorType: 'not_found', error: 'not found' });
  }
}
