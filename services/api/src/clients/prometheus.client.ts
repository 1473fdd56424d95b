/**
 * Prometheus' HTTP API (v1): instant queries, range queries and the alerts it evaluates. The only
 * module that knows its URLs and answer shapes; every failure becomes PROMETHEUS_UNAVAILABLE (503).
 */
import axios, { type AxiosInstance } from 'axios';
import { AppError } from '../errors';

export interface PromSample {
  labels: Record<string, string>;
  value: number;
}

export interface PromAlert {
  name: string;
  state: 'firing' | 'pending';
  labels: Record<string, string>;
  annotations: Record<string, string>;
  activeAt: string | null;
  value: number;
}

export interface PrometheusClient {
  readonly url: string;
  /** An instant vector (a scalar answer comes as one sample without labels). */
  query(promql: string): Promise<PromSample[]>;
  /** The first series of a range query as [unix seconds, value] points. */
  queryRange(promql: string, startS: number, endS: number, stepS: number): Promise<Array<[number, number]>>;
  alerts(): Promise<PromAlert[]>;
}

interface ApiAnswer<T> {
  status: 'success' | 'error';
  data: T;
  error?: string;
}

type Value = [number, string];
type QueryData = { resultType: 'vector'; result: Array<{ metric: Record<string, string>; value: Value }> } | { resultType: 'scalar'; result: Value };
interface RangeData {
  resultType: 'matrix';
  result: Array<{ metric: Record<string, string>; values: Value[] }>;
}
interface AlertsData {
  alerts: Array<{ labels: Record<string, string>; annotations?: Record<string, string>; state: string; activeAt?: string; value?: string }>;
}

export function createPrometheusClient(opts: { baseUrl: string; timeoutMs?: number }): PrometheusClient {
  const http: AxiosInstance = axios.create({ baseURL: `${opts.baseUrl}/api/v1`, timeout: opts.timeoutMs ?? 5_000, validateStatus: () => true });

  async function get<T>(path: string, params: Record<string, string | number> = {}): Promise<T> {
    let status: number;
    let body: ApiAnswer<T> | undefined;
    try {
      const res = await http.get<ApiAnswer<T>>(path, { params });
      status = res.status;
      body = res.data;
    } catch (err) {
      throw new AppError('PROMETHEUS_UNAVAILABLE', 503, `Prometheus at ${opts.baseUrl} did not answer (${(err as { code?: string }).code ?? 'error'})`, {
        cause: err,
      });
    }
    if (status !== 200 || body?.status !== 'success') {
      throw new AppError(
        'PROMETHEUS_UNAVAILABLE',
        503,
        `Prometheus at ${opts.baseUrl} answered ${status}: ${String(body?.error ?? 'no success').slice(0, 200)}`,
      );
    }
    return body.data;
  }

  return {
    url: opts.baseUrl,
    async query(promql) {
      const data = await get<QueryData>('/query', { query: promql });
      if (data.resultType === 'scalar') return [{ labels: {}, value: Number(data.result[1]) }];
      return data.result.map((r) => ({ labels: r.metric, value: Number(r.value[1]) }));
    },
    async queryRange(promql, startS, endS, stepS) {
      const data = await get<RangeData>('/query_range', { query: promql, start: startS, end: endS, step: stepS });
      return (data.result[0]?.values ?? []).map(([t, v]) => [t, Number(v)] as [number, number]);
    },
    async alerts() {
      const data = await get<AlertsData>('/alerts');
      return data.alerts
        .filter((a) => a.state === 'firing' || a.state === 'pending')
        .map((a) => ({
          name: a.labels.alertname ?? '',
          state: a.state as 'firing' | 'pending',
          labels: a.labels,
          annotations: a.annotations ?? {},
          activeAt: a.activeAt ?? null,
          value: Number(a.value ?? NaN),
        }));
    },
  };
}
