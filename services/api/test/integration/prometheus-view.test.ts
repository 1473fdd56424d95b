import request from 'supertest';
import { FakePrometheus } from '../fakes/fake-prometheus';
import { closedPortUrl, startHarness, type Harness } from '../support/harness';

const PASSWORD = 'Zt4qW8nRk2LpX7vC';
const ADMIN = `Basic ${Buffer.from(`owner:${PASSWORD}`).toString('base64')}`;
const ENV = { AUTH_USERS: `owner:${PASSWORD}`, ADMIN_USERS: 'owner' };

function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/**
 * A box at 200 W and 1.10 PLN/kWh (docs/monitoring.md's example): the calendar energy queries get
 * 2.4 kWh (12 h), the recording rules their values of that example.
 */
function box(p: FakePrometheus): void {
  p.instant = [
    [/^avg_over_time\(alc:power_draw_watts\[\d+s\]\) \* \d+ \/ 3600 \/ 1000$/, 2.4],
    [/^alc_config_energy_price_pln_per_kwh$/, 1.1],
    [/^alc:energy_cost_pln:month_projected$/, 158.4],
    [/^alc:energy_cost_pln_per_1k_tokens:1d$/, 0.0367],
  ];
  p.range = [
    [/ai_local_http_requests_total/, (t) => (t % 3600 === 0 ? 12 : 3)],
    [/nvidia_smi_power_draw_watts/, () => 150],
    [/nvidia_smi_temperature_gpu/, (t) => (t % 7200 < 300 ? null : 64)],
  ];
  p.alerts = [
    {
      labels: { alertname: 'GpuTooHot', severity: 'warning', uuid: 'GPU-1' },
      annotations: { summary: 'GPU GPU-1 is at 86 °C (above 83 °C for 5 minutes).', action: 'Check the fans.', resolved: 'back under' },
      state: 'firing',
      activeAt: '2026-12-03T21:00:00Z',
      value: '86',
    },
    { labels: { alertname: 'QueueFull', severity: 'warning' }, annotations: {}, state: 'pending', activeAt: '2026-12-03T23:00:00Z', value: '1' },
  ];
}

describe('energy, alerts and history from Prometheus', () => {
  let prom: FakePrometheus;
  let h: Harness;
  beforeAll(async () => {
    prom = await FakePrometheus.start();
    box(prom);
    h = await startHarness({ ...ENV, PROMETHEUS_URL: prom.url });
  });
  afterAll(async () => {
    await h.close();
    await prom.close();
  });

  test('When Prometheus has the recording rules, then status.json carries today, month, projected month, per 1k tokens, and the firing alerts', async () => {
    const res = await request(h.app).get('/admin/status.json').set('Authorization', ADMIN).expect(200);
    expect(res.body.energy).toMatchObject({
      todayKwh: 2.4,
      todayPln: 2.64,
      monthKwh: 2.4,
      monthPln: 2.64,
      projectedMonthPln: 158.4,
      plnPer1kTokens: 0.0367,
      pricePlnPerKwh: 1.1,
      reason: null,
      missing: {},
    });
    // the calendar windows: seconds since local midnight and since the 1st, each at least 2 min of range
    const spans = prom.queries.filter((q) => q.startsWith('avg_over_time')).map((q) => Number(/\* (\d+) \//.exec(q)![1]));
    const midnight = new Date();
    midnight.setHours(0, 0, 0, 0);
    expect(Math.abs(spans[0] - (Date.now() - midnight.getTime()) / 1000)).toBeLessThan(30);
    expect(spans[1]).toBeGreaterThanOrEqual(spans[0]);
    expect(res.body.alerts).toEqual({
      firing: [
        {
          name: 'GpuTooHot',
          severity: 'warning',
          summary: 'GPU GPU-1 is at 86 °C (above 83 °C for 5 minutes).',
          action: 'Check the fans.',
          activeAt: '2026-12-03T21:00:00Z',
        },
      ],
      pending: 1,
      reason: null,
    });
  });

  test('When the page polls every few seconds, then Prometheus is asked once per 30 s, and /metrics carries the same numbers without a query', async () => {
    await request(h.app).get('/admin/status.json').set('Authorization', ADMIN).expect(200);
    const before = prom.queries.length;
    for (let i = 0; i < 5; i++) await request(h.app).get('/admin/status.json').set('Authorization', ADMIN).expect(200);
    const text = (await request(h.app).get('/metrics').set('Authorization', ADMIN).expect(200)).text;
    expect(prom.queries.length).toBe(before);
    expect(sample(text, 'ai_local_energy_today_kwh')).toBe(2.4);
    expect(sample(text, 'ai_local_energy_today_cost_pln')).toBe(2.64);
    expect(sample(text, 'ai_local_energy_month_cost_pln')).toBe(2.64);
    expect(sample(text, 'ai_local_energy_month_projected_cost_pln')).toBe(158.4);
    expect(sample(text, 'ai_local_energy_cost_pln_per_1k_tokens')).toBe(0.0367);
  });

  test('When the page asks for the history, then 24 h of 5-min points per allowlisted series, gaps as null', async () => {
    const res = await request(h.app).get('/admin/history?series=requests,gpu_power,gpu_temp,queue_depth').set('Authorization', ADMIN).expect(200);
    expect(res.body.reason).toBeNull();
    const { requests, gpu_power: power, gpu_temp: temp, queue_depth: queue } = res.body.series;
    expect(requests).toMatchObject({ label: 'Requests', unit: 'req/min', stepS: 300 });
    expect(requests.values).toHaveLength(289);
    expect(requests.start % 300).toBe(0);
    expect(Math.abs(requests.start + 86_400 - Date.now() / 1000)).toBeLessThan(301);
    expect(new Set(requests.values)).toEqual(new Set([3, 12]));
    expect(power.values.every((v: number) => v === 150)).toBe(true);
    expect(temp.values.filter((v: number | null) => v === null)).toHaveLength(12);
    // no queue series in Prometheus: all null, still 200
    expect(queue.values.every((v: null) => v === null)).toBe(true);
    // the PromQL was the allowlist's, not anything from the query string
    expect(prom.queries).toContain('sum(nvidia_smi_power_draw_watts)');
  });

  test('When the history is asked for a series outside the allowlist, or PromQL, then 400 JSON and no query', async () => {
    const before = prom.queries.length;
    for (const series of ['up', 'requests,sum(up)', '', 'constructor', '__proto__']) {
      const res = await request(h.app)
        .get('/admin/history')
        .query(series ? { series } : {})
        .set('Authorization', ADMIN)
        .expect(400);
      expect(res.headers['content-type']).toContain('application/json');
      expect(res.body.error).toMatchObject({
        code: 'VALIDATION_ERROR',
        message: expect.stringContaining('requests, tokens_per_s, gpu_power, gpu_temp, queue_depth'),
      });
    }
    await request(h.app).get('/admin/history?series=requests&series=up').set('Authorization', ADMIN).expect(400);
    expect(prom.queries.length).toBe(before);
  });

  test('When a regular user asks for the history, then 403', async () => {
    const user = await startHarness({ AUTH_USERS: `owner:${PASSWORD},waldus:Hj5mQ9wE3rTy7uIo`, ADMIN_USERS: 'owner', PROMETHEUS_URL: prom.url });
    try {
      await request(user.app)
        .get('/admin/history?series=requests')
        .set('Authorization', `Basic ${Buffer.from('waldus:Hj5mQ9wE3rTy7uIo').toString('base64')}`)
        .expect(403);
    } finally {
      await user.close();
    }
  });
});

describe('without Prometheus', () => {
  test('When PROMETHEUS_URL is not set, then the energy figures, alerts and history are null with the reason', async () => {
    const h = await startHarness(ENV);
    try {
      const res = await request(h.app).get('/admin/status.json').set('Authorization', ADMIN).expect(200);
      expect(res.body.energy).toMatchObject({ todayKwh: null, todayPln: null, monthPln: null, projectedMonthPln: null, plnPer1kTokens: null });
      expect(res.body.energy.reason).toMatch(/PROMETHEUS_URL is not set/);
      expect(res.body.alerts).toMatchObject({ firing: null, reason: expect.stringMatching(/PROMETHEUS_URL/) });
      const hist = await request(h.app).get('/admin/history?series=gpu_power').set('Authorization', ADMIN).expect(200);
      expect(hist.body).toEqual({ series: { gpu_power: null }, reason: expect.stringMatching(/PROMETHEUS_URL is not set/) });
      const text = (await request(h.app).get('/metrics').set('Authorization', ADMIN).expect(200)).text;
      expect(sample(text, 'ai_local_energy_today_kwh')).toBeNaN();
    } finally {
      await h.close();
    }
  });

  test('When Prometheus is down or failing, then null with a reason naming it, and the page still answers', async () => {
    const down = await closedPortUrl();
    const h = await startHarness({ ...ENV, PROMETHEUS_URL: down });
    const failing = await FakePrometheus.start();
    failing.failWith = 503;
    const h2 = await startHarness({ ...ENV, PROMETHEUS_URL: failing.url });
    try {
      const res = await request(h.app).get('/admin/status.json').set('Authorization', ADMIN).expect(200);
      expect(res.body.energy).toMatchObject({ todayKwh: null, reason: expect.stringContaining(`Prometheus at ${down} did not answer`) });
      expect(res.body.alerts.reason).toContain('did not answer');
      const hist = await request(h.app).get('/admin/history?series=requests').set('Authorization', ADMIN).expect(200);
      expect(hist.body).toMatchObject({ series: { requests: null }, reason: expect.stringContaining('did not answer') });
      const res2 = await request(h2.app).get('/admin/status.json').set('Authorization', ADMIN).expect(200);
      expect(res2.body.energy.reason).toContain('answered 503: fake outage');
    } finally {
      await h.close();
      await h2.close();
      await failing.close();
    }
  });

  test('When Prometheus has no tokens of the last day, then only that figure is null, with its own reason', async () => {
    const p = await FakePrometheus.start();
    p.instant = [
      [/^avg_over_time/, 1.2],
      [/^alc_config_energy_price_pln_per_kwh$/, 1.1],
      [/^alc:energy_cost_pln:month_projected$/, 60],
    ];
    const h = await startHarness({ ...ENV, PROMETHEUS_URL: p.url });
    try {
      const res = await request(h.app).get('/admin/status.json').set('Authorization', ADMIN).expect(200);
      expect(res.body.energy).toMatchObject({
        todayKwh: 1.2,
        todayPln: 1.32,
        plnPer1kTokens: null,
        reason: null,
        missing: { plnPer1kTokens: 'no tokens generated in the last 24 h' },
      });
    } finally {
      await h.close();
      await p.close();
    }
  });
});
