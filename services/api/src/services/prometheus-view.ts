/**
 * What the status page, /admin/status.json and /metrics show from Prometheus: the energy figures
 * (today, this month, the projected month, the cost per 1,000 tokens; from the recording rules of
 * compose/monitoring/rules/energy.yml, so they survive api restarts), the firing alerts, and the
 * last 24 h of a fixed set of series. Answers are cached (CACHE_MS) so a page polling every few
 * seconds, or a scrape, never turns into a query each; without Prometheus every figure is null
 * with the reason.
 */
import client from 'prom-client';
import type { PrometheusClient, PromSample } from '../clients/prometheus.client';
import { AppError, ValidationError } from '../errors';
import { readGauge } from './metrics';

const CACHE_MS = 30_000;
const DAY_S = 86_400;
const STEP_S = 300;

export interface EnergyFigures {
  todayKwh: number | null;
  todayPln: number | null;
  monthKwh: number | null;
  monthPln: number | null;
  projectedMonthPln: number | null;
  plnPer1kTokens: number | null;
  pricePlnPerKwh: number | null;
  /** Why the figures are null (no Prometheus, or it did not answer); null when they are there. */
  reason: string | null;
  /** Why a single figure is null while the others are there (e.g. no tokens generated today). */
  missing: Record<string, string>;
  since: { today: string; month: string };
  checkedAt: string;
}

export interface AlertView {
  name: string;
  severity: string;
  summary: string;
  action: string;
  activeAt: string | null;
}

export interface AlertList {
  firing: AlertView[] | null;
  pending: number;
  reason: string | null;
}

/** The series the history endpoint serves: a fixed allowlist, never PromQL from the caller. */
export const HISTORY_SERIES = {
  requests: { label: 'Requests', unit: 'req/min', promql: 'sum(rate(ai_local_http_requests_total{route!~"/health|/ready|/metrics"}[5m])) * 60' },
  tokens_per_s: { label: 'Tokens generated', unit: 'tokens/s', promql: 'sum(rate(ai_local_tokens_generated_total[5m]))' },
  gpu_power: { label: 'GPU power', unit: 'W', promql: 'sum(nvidia_smi_power_draw_watts)' },
  gpu_temp: { label: 'GPU temperature', unit: '°C', promql: 'max(nvidia_smi_temperature_gpu)' },
  queue_depth: { label: 'Queue depth', unit: 'waiting', promql: 'sum(ai_local_queue_depth)' },
} as const;
export type HistoryName = keyof typeof HISTORY_SERIES;

export interface History {
  label: string;
  unit: string;
  /** Unix seconds of values[0]; one value every stepS, null where Prometheus has none. */
  start: number;
  stepS: number;
  values: (number | null)[];
}

export interface HistoryAnswer {
  series: Record<string, History | null>;
  reason: string | null;
}

const NO_PROMETHEUS = 'PROMETHEUS_URL is not set: monitoring is off (MONITORING=0 in .env, or the api runs without compose/monitoring.yml)';

function round(v: number | null, digits: number): number | null {
  return v === null || !Number.isFinite(v) ? null : Math.round(v * 10 ** digits) / 10 ** digits;
}

function first(samples: PromSample[]): number | null {
  return samples.length ? samples[0].value : null;
}

function reasonOf(err: unknown): string {
  return err instanceof AppError ? err.message : 'Prometheus did not answer';
}

export class PrometheusView {
  private energyCache?: { at: number; value: Promise<EnergyFigures> };
  private alertsCache?: { at: number; value: Promise<AlertList> };
  private readonly historyCache = new Map<HistoryName, { at: number; value: Promise<History | null> }>();
  /** The last energy answer, for the gauges (they never query). */
  private lastEnergy?: EnergyFigures;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly prometheus: PrometheusClient | undefined,
    private readonly now: () => number = Date.now,
  ) {}

  get configured(): boolean {
    return this.prometheus !== undefined;
  }

  energy(): Promise<EnergyFigures> {
    const at = this.now();
    if (!this.energyCache || at - this.energyCache.at >= CACHE_MS) {
      const value = this.queryEnergy(at).then((e) => (this.lastEnergy = e));
      this.energyCache = { at, value };
    }
    return this.energyCache.value;
  }

  alerts(): Promise<AlertList> {
    const at = this.now();
    if (!this.alertsCache || at - this.alertsCache.at >= CACHE_MS) this.alertsCache = { at, value: this.queryAlerts() };
    return this.alertsCache.value;
  }

  /** The last 24 h of the named series (names checked against HISTORY_SERIES: 400 otherwise). */
  async history(names: string[]): Promise<HistoryAnswer> {
    const bad = names.filter((n) => !Object.hasOwn(HISTORY_SERIES, n));
    if (names.length === 0 || bad.length) {
      throw new ValidationError(
        `series must be a comma list of: ${Object.keys(HISTORY_SERIES).join(', ')}`,
        bad.map((n) => ({ field: 'series', message: `unknown series '${n.slice(0, 40)}'` })),
      );
    }
    const wanted = [...new Set(names)] as HistoryName[];
    if (!this.prometheus) return { series: Object.fromEntries(wanted.map((n) => [n, null])), reason: NO_PROMETHEUS };
    const at = this.now();
    const entries = await Promise.all(
      wanted.map(async (name) => {
        let hit = this.historyCache.get(name);
        if (!hit || at - hit.at >= CACHE_MS) {
          hit = { at, value: this.queryHistory(name, at) };
          this.historyCache.set(name, hit);
        }
        try {
          return [name, await hit.value, null] as const;
        } catch (err) {
          this.historyCache.delete(name);
          return [name, null, reasonOf(err)] as const;
        }
      }),
    );
    return { series: Object.fromEntries(entries.map(([n, h]) => [n, h])), reason: entries.find(([, , r]) => r)?.[2] ?? null };
  }

  /** Gauges of the energy figures on /metrics; collect() reads the last answer, never queries. */
  register(registry: client.Registry): void {
    const last = () => this.lastEnergy;
    const gauges = [
      ['ai_local_energy_today_kwh', 'Energy of the box since local midnight, kWh (from Prometheus; NaN without it)', 'todayKwh'],
      ['ai_local_energy_today_cost_pln', 'Its cost, PLN', 'todayPln'],
      ['ai_local_energy_month_kwh', 'Energy of the box since the 1st of the month, kWh', 'monthKwh'],
      ['ai_local_energy_month_cost_pln', 'Its cost, PLN', 'monthPln'],
      ['ai_local_energy_month_projected_cost_pln', 'A 30-day month at the last 7 days average draw, PLN', 'projectedMonthPln'],
      ['ai_local_energy_cost_pln_per_1k_tokens', 'Energy cost of the last day per 1,000 generated tokens, PLN', 'plnPer1kTokens'],
    ] as const;
    for (const [name, help, field] of gauges) readGauge(registry, name, help, () => last()?.[field] ?? NaN);
  }

  /** Refreshes the cached answers every intervalS (for the gauges), while monitoring is on. */
  start(intervalS = CACHE_MS / 1000): void {
    if (!this.prometheus) return;
    void this.energy();
    this.timer = setInterval(() => void this.energy(), intervalS * 1000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private async queryEnergy(at: number): Promise<EnergyFigures> {
    const midnight = new Date(at);
    midnight.setHours(0, 0, 0, 0);
    const monthStart = new Date(midnight);
    monthStart.setDate(1);
    const since = { today: midnight.toISOString(), month: monthStart.toISOString() };
    const base = {
      todayKwh: null,
      todayPln: null,
      monthKwh: null,
      monthPln: null,
      projectedMonthPln: null,
      plnPer1kTokens: null,
      pricePlnPerKwh: null,
      missing: {},
      since,
      checkedAt: new Date(at).toISOString(),
    };
    const p = this.prometheus;
    if (!p) return { ...base, reason: NO_PROMETHEUS };
    // energy since a moment = average power over that span x its length (docs/monitoring.md); at
    // least 2 min of range so the first minutes after midnight still find a sample of the 1 min rule
    const kwhSince = (from: Date) => {
      const s = Math.max(1, Math.round((at - from.getTime()) / 1000));
      return `avg_over_time(alc:power_draw_watts[${Math.max(s, 120)}s]) * ${s} / 3600 / 1000`;
    };
    try {
      const [today, month, price, projected, per1k] = await Promise.all(
        [
          kwhSince(midnight),
          kwhSince(monthStart),
          'alc_config_energy_price_pln_per_kwh',
          'alc:energy_cost_pln:month_projected',
          'alc:energy_cost_pln_per_1k_tokens:1d',
        ].map(async (q) => first(await p.query(q))),
      );
      const missing: Record<string, string> = {};
      if (today === null) missing.todayKwh = 'no power readings yet (alc:power_draw_watts)';
      if (price === null) missing.pricePlnPerKwh = 'alc_config_energy_price_pln_per_kwh is missing (render.sh writes it at start)';
      if (projected === null) missing.projectedMonthPln = 'no power readings of the last 7 days yet';
      if (per1k === null) missing.plnPer1kTokens = 'no tokens generated in the last 24 h';
      return {
        ...base,
        todayKwh: round(today, 3),
        todayPln: round(today !== null && price !== null ? today * price : null, 2),
        monthKwh: round(month, 3),
        monthPln: round(month !== null && price !== null ? month * price : null, 2),
        projectedMonthPln: round(projected, 2),
        plnPer1kTokens: round(per1k, 4),
        pricePlnPerKwh: price,
        missing,
        reason: null,
      };
    } catch (err) {
      return { ...base, reason: reasonOf(err) };
    }
  }

  private async queryAlerts(): Promise<AlertList> {
    if (!this.prometheus) return { firing: null, pending: 0, reason: NO_PROMETHEUS };
    try {
      const all = await this.prometheus.alerts();
      return {
        firing: all
          .filter((a) => a.state === 'firing')
          .map((a) => ({
            name: a.name,
            severity: a.labels.severity ?? '',
            summary: a.annotations.summary ?? '',
            action: a.annotations.action ?? '',
            activeAt: a.activeAt,
          })),
        pending: all.filter((a) => a.state === 'pending').length,
        reason: null,
      };
    } catch (err) {
      return { firing: null, pending: 0, reason: reasonOf(err) };
    }
  }

  private async queryHistory(name: HistoryName, at: number): Promise<History | null> {
    const def = HISTORY_SERIES[name];
    const end = Math.floor(at / 1000 / STEP_S) * STEP_S;
    const start = end - DAY_S;
    const points = await this.prometheus!.queryRange(def.promql, start, end, STEP_S);
    const values: (number | null)[] = new Array<number | null>(DAY_S / STEP_S + 1).fill(null);
    for (const [t, v] of points) {
      const i = Math.round((t - start) / STEP_S);
      if (i >= 0 && i < values.length && Number.isFinite(v)) values[i] = round(v, 3);
    }
    return { label: def.label, unit: def.unit, start, stepS: STEP_S, values };
  }
}
