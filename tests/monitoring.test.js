'use strict';
// Monitoring (issue 13): the real promtool / amtool / alertmanager from Debian's `prometheus` and
// `prometheus-alertmanager` packages (.ci/run installs them) on what compose/monitoring/render.sh
// renders from .env: `promtool check config`, `check rules`, `test rules` (a unit test for every
// alert and the energy rules), `amtool check-config` for every receiver combination .env can
// produce, and one Alertmanager on loopback that delivers a firing and a resolved alert to local
// stand-ins of Telegram's Bot API, ntfy and a webhook, so the texts the owner gets are checked.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { ROOT, run, composeConfig, composeArgs, freePort, stop, tmpDir } = require('./lib/helpers');

const MON = path.join(ROOT, 'compose', 'monitoring');
const DIRS = [];
function mkTmp(prefix) {
  const d = tmpDir(prefix);
  DIRS.push(d);
  return d;
}
test.after(() => { for (const d of DIRS) fs.rmSync(d, { recursive: true, force: true }); });
const RENDER = path.join(MON, 'render.sh');
for (const tool of ['promtool', 'amtool', 'prometheus-alertmanager']) {
  if (run('sh', ['-c', `command -v ${tool}`]).status !== 0) {
    throw new Error(`${tool} not found: apt-get install prometheus prometheus-alertmanager (.ci/run does)`);
  }
}

// only what the test sets: nothing of the developer's environment reaches the renderer
const BASE_ENV = { PATH: process.env.PATH, LC_ALL: 'C' };
function render(what, env, out = mkTmp('alc-mon-')) {
  const r = run(RENDER, [what, out], { env: { ...BASE_ENV, ...env } });
  return { ...r, out, file: (f) => path.join(out, f), read: (f) => fs.readFileSync(path.join(out, f), 'utf8') };
}
function ok(r, what) {
  assert.equal(r.status, 0, `${what}: exit ${r.status}\n${r.stdout}\n${r.stderr}`);
  return r;
}
const PW = 'Scr4pe-Pw_abcdefgh123';   // 16+ random-looking characters, as .env's generated ones
const USERS = { AUTH_USERS: `admin:Adm1n-pw_ZZZZZZZZZZZZ, waldus:W4ldus-pw_YYYYYYYYYYYY,prometheus:${PW}`, ADMIN_USERS: 'admin' };

// ------------------------------------------------------------------------------------ Prometheus
test('prometheus: rendered config passes `promtool check config` (with its rule files) in every GPU/tunnel combination', () => {
  for (const [gpu, tunnel] of [['1', '1'], ['0', '0'], ['1', '0'], ['0', '1']]) {
    const r = ok(render('prometheus', { ...USERS, METRICS_USERS: 'prometheus', MONITORING_GPU: gpu, MONITORING_TUNNEL: tunnel }), 'render');
    const check = run('promtool', ['check', 'config', r.file('prometheus.yml')]);
    assert.equal(check.status, 0, check.stdout + check.stderr);
    assert.match(check.stdout, /SUCCESS: 3 rule files found/);
    const targets = (f) => JSON.parse(r.read(`targets/${f}.json`)).flatMap((g) => g.targets);
    assert.deepEqual(targets('gpu'), gpu === '1' ? ['gpu-exporter:9835'] : [], `gpu=${gpu}`);
    assert.deepEqual(targets('cloudflared'), tunnel === '1' ? ['cloudflared:2000'] : [], `tunnel=${tunnel}`);
    assert.doesNotMatch(r.read('prometheus.yml'), /@[A-Z_]+@/, 'no placeholder left');
  }
  // the test-only overlay's 2 s intervals (shorter than the default 10 s scrape timeout) load too
  const fast = ok(render('prometheus', { ...USERS, PROMETHEUS_SCRAPE_INTERVAL: '2s', PROMETHEUS_EVAL_INTERVAL: '2s' }), 'render 2s');
  const check = run('promtool', ['check', 'config', fast.file('prometheus.yml')]);
  assert.equal(check.status, 0, check.stdout + check.stderr);
});

test('prometheus: the scrape user and its password (from AUTH_USERS, into a 600 file, never into the config)', () => {
  const cases = [
    [{ METRICS_SCRAPE_USER: 'prometheus' }, 'prometheus', PW],
    [{ METRICS_USERS: 'prometheus,waldus' }, 'prometheus', PW],
    [{ METRICS_USERS: '' }, 'admin', 'Adm1n-pw_ZZZZZZZZZZZZ'],   // first admin when no METRICS_USERS
    [{ METRICS_USERS: ' waldus ' }, 'waldus', 'W4ldus-pw_YYYYYYYYYYYY'],
  ];
  for (const [env, user, pw] of cases) {
    const r = ok(render('prometheus', { ...USERS, ...env }), JSON.stringify(env));
    const cfg = r.read('prometheus.yml');
    assert.match(cfg, new RegExp(`username: "${user}"\\n\\s+password_file: ${r.out}/api-scrape-password`), JSON.stringify(env));
    assert.equal(r.read('api-scrape-password'), pw, JSON.stringify(env));
    assert.equal(fs.statSync(r.file('api-scrape-password')).mode & 0o777, 0o600);
    for (const secret of ['Adm1n-pw', 'W4ldus-pw', PW]) assert.ok(!cfg.includes(secret), 'no password in prometheus.yml');
    assert.ok(!(r.stderr + r.stdout).includes(pw), 'no password in the output');
  }
  // a user that is not in AUTH_USERS: Prometheus still starts (GPU/tunnel alerts work), says why the api target fails
  const r = ok(render('prometheus', { ...USERS, METRICS_SCRAPE_USER: 'nobody-here' }), 'unknown user');
  assert.match(r.stderr, /WARNING: no password for scrape user 'nobody-here' in AUTH_USERS/);
  assert.equal(r.read('api-scrape-password'), '');
  const bad = render('prometheus', { ...USERS, METRICS_SCRAPE_USER: 'a.*' });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /METRICS_SCRAPE_USER 'a\.\*': letters, digits/);
});

test('rules: `promtool check rules` on the alert, energy and rendered config rules', () => {
  const r = ok(render('prometheus', { ...USERS, ALERT_TTFT_P95_MAX_S: '7.5', ALERT_MODELS_DISK_FREE_MIN_GB: '30', SYSTEM_BASE_WATTS: '45', ENERGY_PRICE_PLN_PER_KWH: '0.95' }), 'render');
  const check = run('promtool', ['check', 'rules', path.join(MON, 'rules', 'alerts.yml'), path.join(MON, 'rules', 'energy.yml'), r.file('config-rules.yml')]);
  assert.equal(check.status, 0, check.stdout + check.stderr);
  assert.match(check.stdout, /alerts\.yml\n {2}SUCCESS: 13 rules found/);
  assert.match(check.stdout, /energy\.yml\n {2}SUCCESS: 10 rules found/);
  assert.match(check.stdout, /config-rules\.yml\n {2}SUCCESS: 4 rules found/);
  const cfg = r.read('config-rules.yml');
  assert.match(cfg, /record: alc_config_ttft_p95_max_seconds\n\s+expr: vector\(7\.5\)/);
  assert.match(cfg, /record: alc_config_models_disk_free_min_bytes\n\s+expr: vector\(30 \* 1e9\)/);
  assert.match(cfg, /record: alc_config_system_base_watts\n\s+expr: vector\(45\)/);
  assert.match(cfg, /record: alc_config_energy_price_pln_per_kwh\n\s+expr: vector\(0\.95\)/);
});

test('rules: every alert has a one-line summary, a "what to do" and a resolved message', () => {
  const text = fs.readFileSync(path.join(MON, 'rules', 'alerts.yml'), 'utf8');
  const alerts = [...text.matchAll(/- alert: (\w+)/g)].map((m) => m[1]);
  assert.deepEqual(alerts.sort(), ['ApiScrapeFailing', 'GpuExporterDown', 'GpuMemoryFull', 'GpuTooHot', 'HighErrorRate', 'ModelMissing',
    'ModelsDiskLow', 'OllamaRestartLoop', 'OllamaUnreachable', 'OutOfMemory', 'QueueFull', 'SlowFirstToken', 'TunnelDown']);
  for (const block of text.split(/(?=- alert: )/).slice(1)) {
    const name = block.match(/- alert: (\w+)/)[1];
    for (const a of ['summary', 'action', 'resolved']) assert.match(block, new RegExp(`\\n\\s+${a}: ".+"\\n`), `${name}: ${a}`);
    assert.match(block, /action: ".*(`make [a-z]+|README troubleshooting: ')/, `${name}: action names a command or README row`);
  }
  // ... and the unit tests name every one of them
  const tests = fs.readFileSync(path.join(MON, 'tests', 'alerts.test.yml'), 'utf8');
  for (const a of alerts) assert.match(tests, new RegExp(`alertname: ${a}\\n\\s+exp_alerts:\\n\\s+- exp_labels`), `${a} has a firing case`);
});

test('rules: `promtool test rules` - every alert fires after its for:, stays quiet before and just under, resolves; energy and cost', () => {
  for (const f of ['alerts.test.yml', 'energy.test.yml']) {
    const r = run('promtool', ['test', 'rules', f], { cwd: path.join(MON, 'tests'), timeout: 120_000 });
    assert.equal(r.status, 0, `${f}:\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /SUCCESS/);
  }
});

test('rules: the unit tests bite (a threshold moved from 83 °C to 85 °C fails them)', () => {
  const dir = mkTmp('alc-mon-mut-');
  fs.mkdirSync(path.join(dir, 'rules'));
  fs.mkdirSync(path.join(dir, 'tests'));
  const alerts = fs.readFileSync(path.join(MON, 'rules', 'alerts.yml'), 'utf8');
  assert.ok(alerts.includes('nvidia_smi_temperature_gpu > 83'));
  fs.writeFileSync(path.join(dir, 'rules', 'alerts.yml'), alerts.replace('nvidia_smi_temperature_gpu > 83', 'nvidia_smi_temperature_gpu > 85'));
  fs.copyFileSync(path.join(MON, 'tests', 'alerts.test.yml'), path.join(dir, 'tests', 'alerts.test.yml'));
  const r = run('promtool', ['test', 'rules', 'alerts.test.yml'], { cwd: path.join(dir, 'tests') });
  assert.notEqual(r.status, 0);
  assert.match(r.stdout + r.stderr, /alertname: GpuTooHot, time: 10m/);
});

test('energy: the .env settings reach the rules (render -> config rules -> energy rules)', () => {
  const r = ok(render('prometheus', { ...USERS, SYSTEM_BASE_WATTS: '100', ENERGY_PRICE_PLN_PER_KWH: '0.5' }), 'render');
  const t = path.join(r.out, 'energy-settings.test.yml');
  fs.writeFileSync(t, [
    'rule_files:',
    `  - ${path.join(MON, 'rules', 'energy.yml')}`,
    `  - ${r.file('config-rules.yml')}`,
    'evaluation_interval: 1m',
    'tests:',
    '  - interval: 1m',
    '    input_series:',
    "      - series: 'nvidia_smi_power_draw_watts{uuid=\"abc\"}'",
    "        values: '150x200'",
    '    promql_expr_test:',
    '      - expr: alc:power_draw_watts',
    '        eval_time: 2h',
    "        exp_samples: [{labels: 'alc:power_draw_watts', value: 250}]",
    '      - expr: alc:energy_cost_pln:1h',
    '        eval_time: 2h',
    "        exp_samples: [{labels: 'alc:energy_cost_pln:1h', value: 0.125}]",
    '',
  ].join('\n'));
  const res = run('promtool', ['test', 'rules', t]);
  assert.equal(res.status, 0, res.stdout + res.stderr);
});

test('render: a bad setting stops the container with a clear message', () => {
  const cases = [
    ['prometheus', { ENERGY_PRICE_PLN_PER_KWH: '1,10' }, /ENERGY_PRICE_PLN_PER_KWH must be a number \(got '1,10'\)/],
    ['prometheus', { SYSTEM_BASE_WATTS: '-5' }, /SYSTEM_BASE_WATTS must be a number/],
    ['prometheus', { PROMETHEUS_EVAL_INTERVAL: '15' }, /PROMETHEUS_EVAL_INTERVAL must be a duration/],
    ['alertmanager', { ALERT_TELEGRAM_BOT_TOKEN: '1:x', ALERT_TELEGRAM_CHAT_ID: '@mychannel' }, /ALERT_TELEGRAM_CHAT_ID must be the numeric chat id/],
    ['alertmanager', { ALERT_TELEGRAM_CHAT_ID: '12345' }, /ALERT_TELEGRAM_BOT_TOKEN is empty/],
    ['alertmanager', { ALERT_EMAIL_TO: 'owner@example.org' }, /ALERT_SMTP_SMARTHOST \(host:port\) is empty/],
    ['alertmanager', { ALERT_EMAIL_TO: 'owner@example.org', ALERT_SMTP_SMARTHOST: 'smtp.example.org' }, /must be host:port/],
    ['alertmanager', { ALERT_GROUP_WAIT: 'soon' }, /ALERT_GROUP_WAIT must be a duration/],
  ];
  for (const [what, env, re] of cases) {
    const r = render(what, { ...USERS, ...env });
    assert.notEqual(r.status, 0, JSON.stringify(env));
    assert.match(r.stderr, re);
  }
  // URLs may carry a token: the message does not repeat them
  const secret = 'https://hooks.example.org/T0K3N-abcdefghijkl?x=1 2';
  const r = render('alertmanager', { ALERT_WEBHOOK_URL: secret });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /ALERT_WEBHOOK_URL must be an http\(s\) URL/);
  assert.ok(!r.stderr.includes('T0K3N'));
  const n = render('alertmanager', { ALERT_NTFY_URL: 'https://ntfy.sh/secret-topic-abcdef?x=1' });
  assert.notEqual(n.status, 0);
  assert.ok(!n.stderr.includes('secret-topic'));
});

// ---------------------------------------------------------------------------------- Alertmanager
const TELEGRAM = { ALERT_TELEGRAM_BOT_TOKEN: '123456789:AAHk-test_TokenValue0123456789abc', ALERT_TELEGRAM_CHAT_ID: '-1001234567890' };
const EMAIL = { ALERT_EMAIL_TO: 'owner@example.org', ALERT_EMAIL_FROM: 'box@example.org', ALERT_SMTP_SMARTHOST: 'smtp.example.org:587', ALERT_SMTP_USER: 'box@example.org', ALERT_SMTP_PASSWORD: 'Smtp-pw_with"quote\\and$dollar' };
const NTFY = { ALERT_NTFY_URL: 'https://ntfy.sh/alc-owner-Xk3j9Qw2Lp', ALERT_NTFY_TOKEN: 'tk_abcdefghijklmnopqrstuvwxyz012' };
const WEBHOOK = { ALERT_WEBHOOK_URL: 'https://hooks.example.org/alerts/Zx81-abcdefghijkl' };
const COMBOS = {
  none: [{}, []],
  telegram: [TELEGRAM, ['telegram_configs']],
  email: [EMAIL, ['email_configs']],
  'email without login': [{ ALERT_EMAIL_TO: 'owner@example.org', ALERT_EMAIL_FROM: 'box@example.org', ALERT_SMTP_SMARTHOST: 'relay.lan.example:25', ALERT_SMTP_REQUIRE_TLS: 'false' }, ['email_configs']],
  ntfy: [{ ALERT_NTFY_URL: NTFY.ALERT_NTFY_URL }, ['webhook_configs']],
  'ntfy with token': [NTFY, ['webhook_configs']],
  webhook: [WEBHOOK, ['webhook_configs']],
  all: [{ ...TELEGRAM, ...EMAIL, ...NTFY, ...WEBHOOK }, ['telegram_configs', 'email_configs', 'webhook_configs']],
};

test('alertmanager: `amtool check-config` accepts every receiver combination .env can produce', () => {
  for (const [name, [env, integrations]] of Object.entries(COMBOS)) {
    const r = ok(render('alertmanager', env), name);
    const check = run('amtool', ['check-config', r.file('alertmanager.yml')]);
    assert.equal(check.status, 0, `${name}:\n${check.stdout}${check.stderr}\n${r.read('alertmanager.yml')}`);
    assert.match(check.stdout, /SUCCESS[\s\S]*1 receivers[\s\S]*1 templates\n {2}SUCCESS/, name);
    const cfg = r.read('alertmanager.yml');
    for (const i of ['telegram_configs', 'email_configs', 'webhook_configs']) {
      assert.equal(cfg.includes(`    ${i}:`), integrations.includes(i), `${name}: ${i}`);
    }
    assert.equal((cfg.match(/send_resolved: true/g) || []).length, (cfg.match(/^ {6}- /gm) || []).length, `${name}: every integration sends the resolved message`);
    if (name === 'none') assert.match(r.stderr, /no receiver configured/);
    if (integrations.includes('telegram_configs')) assert.match(cfg, /parse_mode: HTML/);   // explicit: 0.25 defaults to MarkdownV2
    assert.equal(fs.statSync(r.file('alertmanager.yml')).mode & 0o777, 0o600, 'secrets inside: mode 600');
  }
});

test('alertmanager: the ntfy URL carries the readable title and message templates (ntfy ?tpl=1&t=&m=)', () => {
  const r = ok(render('alertmanager', NTFY), 'render');
  const url = new URL(r.read('alertmanager.yml').match(/- url: "([^"]+)"/)[1]);
  assert.equal(url.origin + url.pathname, NTFY.ALERT_NTFY_URL);
  assert.equal(url.searchParams.get('tpl'), '1');
  assert.equal(url.searchParams.get('t'), fs.readFileSync(path.join(MON, 'ntfy-title.tmpl'), 'utf8').trimEnd());
  assert.equal(url.searchParams.get('m'), fs.readFileSync(path.join(MON, 'ntfy-message.tmpl'), 'utf8').trimEnd());
  assert.match(url.searchParams.get('m'), /\.annotations\.summary[\s\S]*What to do: \{\{\.annotations\.action\}\}[\s\S]*\.annotations\.resolved/);
});

/** A loopback HTTP server that records every request and answers like the Bot API / ntfy / a webhook. */
async function recorder() {
  const got = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      got.push({ method: req.method, url: req.url, headers: req.headers, body });
      res.setHeader('content-type', 'application/json');
      if (req.url.includes('/sendMessage')) {
        res.end(JSON.stringify({ ok: true, result: { message_id: got.length, date: Math.floor(Date.now() / 1000), chat: { id: -1001234567890, type: 'supergroup' }, text: 'x' } }));
      } else res.end('{"id":"x"}');
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { got, port: server.address().port, close: () => new Promise((r) => server.close(r)) };
}
async function until(what, fn, ms = 30_000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timeout waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('alertmanager: a firing and a resolved alert reach Telegram, ntfy and a webhook as readable text', { timeout: 90_000 }, async (t) => {
  const rec = await recorder();
  const port = await freePort();
  const base = `http://127.0.0.1:${rec.port}`;
  const r = ok(render('alertmanager', {
    ...TELEGRAM, ALERT_TELEGRAM_API_URL: base,
    ALERT_NTFY_URL: `${base}/alc-owner-Xk3j9Qw2Lp`, ALERT_NTFY_TOKEN: NTFY.ALERT_NTFY_TOKEN,
    ALERT_WEBHOOK_URL: `${base}/hook`,
    ALERT_GROUP_WAIT: '1s', ALERT_GROUP_INTERVAL: '1s',
  }), 'render');
  const am = spawn('prometheus-alertmanager', [`--config.file=${r.file('alertmanager.yml')}`, `--storage.path=${r.out}/data`,
    `--web.listen-address=127.0.0.1:${port}`, '--cluster.listen-address='], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  am.stdout.on('data', (d) => { log += d; });
  am.stderr.on('data', (d) => { log += d; });
  t.after(async () => { await stop(am); await rec.close(); });
  const api = (method, p, body) => new Promise((resolve, reject) => {
    const data = body ? JSON.stringify(body) : undefined;
    const req = http.request({ host: '127.0.0.1', port, path: p, method, headers: data ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {} }, (res) => {
      let b = ''; res.on('data', (d) => { b += d; }); res.on('end', () => resolve({ status: res.statusCode, body: b }));
    });
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
  for (let i = 0; ; i++) {
    const res = await api('GET', '/-/ready').catch(() => ({ status: 0 }));
    if (res.status === 200) break;
    if (i > 100) throw new Error(`alertmanager not ready:\n${log}`);
    await new Promise((res2) => setTimeout(res2, 200));
  }
  const alert = {
    labels: { alertname: 'GpuTooHot', severity: 'warning', uuid: 'abc', instance: 'gpu-exporter:9835', job: 'gpu' },
    annotations: {
      summary: 'GPU abc is at 85 °C (above 83 °C for 5 minutes).',
      action: 'Check the fans & airflow; `nvidia-smi -q -d TEMPERATURE` <README row>.',
      resolved: 'GPU abc is back under 83 °C.',
    },
    startsAt: new Date(Date.now() - 60_000).toISOString(),
  };
  assert.equal((await api('POST', '/api/v2/alerts', [alert])).status, 200);
  const firing = await until('firing notifications', () => (rec.got.length >= 3 ? rec.got.slice(0, 3) : null));
  assert.equal((await api('POST', '/api/v2/alerts', [{ ...alert, endsAt: new Date().toISOString() }])).status, 200);
  await until('resolved notifications', () => rec.got.length >= 6);

  const byKind = (list, kind) => list.find((g) => (kind === 'telegram' ? g.url.includes('/sendMessage') : kind === 'ntfy' ? g.url.startsWith('/alc-owner') : g.url === '/hook'));
  const resolvedList = rec.got.slice(3);
  // Telegram: the Bot API call, HTML-escaped text with the summary, what to do, and the resolved line
  const tg = byKind(firing, 'telegram');
  assert.equal(tg.url, `/bot${TELEGRAM.ALERT_TELEGRAM_BOT_TOKEN}/sendMessage`);
  const tgBody = tg.headers['content-type'].includes('json') ? JSON.parse(tg.body) : Object.fromEntries(new URLSearchParams(tg.body));
  assert.equal(String(tgBody.chat_id), TELEGRAM.ALERT_TELEGRAM_CHAT_ID);
  assert.equal(tgBody.parse_mode, 'HTML');
  assert.equal(tgBody.text, '🔴 <b>GPU abc is at 85 °C (above 83 °C for 5 minutes).</b>\n'
    + 'What to do: Check the fans &amp; airflow; `nvidia-smi -q -d TEMPERATURE` &lt;README row&gt;.\n'
    + '<i>ai-local-core, GpuTooHot</i>');
  const tgr = byKind(resolvedList, 'telegram');
  const tgrBody = tgr.headers['content-type'].includes('json') ? JSON.parse(tgr.body) : Object.fromEntries(new URLSearchParams(tgr.body));
  assert.equal(tgrBody.text, '✅ <b>Resolved:</b> GPU abc is back under 83 °C.\n<i>ai-local-core, GpuTooHot</i>');
  // ntfy: the topic URL with the templates, the bearer token, Alertmanager's JSON as the body ntfy fills them from
  const nt = byKind(firing, 'ntfy');
  assert.equal(nt.headers.authorization, `Bearer ${NTFY.ALERT_NTFY_TOKEN}`);
  const q = new URL(nt.url, base).searchParams;
  assert.equal(q.get('tpl'), '1');
  assert.match(q.get('m'), /\{\{\.annotations\.summary\}\}/);
  assert.equal(JSON.parse(nt.body).alerts[0].annotations.summary, alert.annotations.summary);
  // the plain webhook: Alertmanager's JSON, firing then resolved
  assert.equal(JSON.parse(byKind(firing, 'webhook').body).status, 'firing');
  const wr = JSON.parse(byKind(resolvedList, 'webhook').body);
  assert.equal(wr.status, 'resolved');
  assert.equal(wr.alerts[0].annotations.resolved, alert.annotations.resolved);
});

// ------------------------------------------------------------------------------------- compose
test('compose: monitoring on by default on the server, MONITORING=0 turns it off, dev modes never', () => {
  assert.ok(composeArgs('server').includes('compose/monitoring.yml'));
  assert.ok(!composeArgs('server', { MONITORING: '0' }).includes('compose/monitoring.yml'));
  assert.ok(!composeArgs('dev-cpu').includes('compose/monitoring.yml'));
  assert.ok(!composeArgs('dev').includes('compose/monitoring.yml'));
  assert.ok(!composeArgs('server').includes('compose/monitoring-ui.yml'));
  assert.ok(composeArgs('server', { PROMETHEUS_UI_PORT: '9090' }).includes('compose/monitoring-ui.yml'));
  const off = composeConfig('server', { MONITORING: '0' });
  assert.ok(!off.services.prometheus && !off.services.alertmanager);
});

test('compose: pinned official images, nothing published (UI only on 127.0.0.1), bounded retention on named volumes', () => {
  const s = composeConfig('server').services;
  assert.equal(s.prometheus.image, 'prom/prometheus:v3.5.0');
  assert.equal(s.alertmanager.image, 'prom/alertmanager:v0.28.1');
  assert.equal(s.prometheus.ports, undefined);
  assert.equal(s.alertmanager.ports, undefined);
  assert.ok(s.prometheus.command.includes('--storage.tsdb.retention.time=45d'));
  assert.ok(s.prometheus.command.includes('--storage.tsdb.retention.size=2GB'));
  assert.ok(s.prometheus.volumes.some((v) => String(v.source || v).startsWith('prometheus-data') || String(v).startsWith('prometheus-data:')));
  assert.ok(s.alertmanager.volumes.some((v) => String(v).startsWith('alertmanager-data:')));
  for (const svc of ['prometheus', 'alertmanager']) {
    assert.equal(s[svc].read_only, true, `${svc} read-only`);
    assert.deepEqual(s[svc].entrypoint.slice(0, 3), ['/bin/sh', '/etc/alc-monitoring/render.sh', svc]);
    assert.ok(s[svc].healthcheck.test.includes('-T'), `${svc}: healthcheck with its own timeout`);
  }
  assert.deepEqual(s.prometheus.depends_on, { api: { condition: 'service_healthy' } }, 'no alerts while the first make up pulls models');
  assert.equal(s.alertmanager.depends_on, undefined);
  assert.deepEqual(Object.keys(s.cloudflared.networks).sort(), ['edge', 'monitoring']);
  assert.deepEqual(Object.keys(s.prometheus.networks).sort(), ['backend', 'monitoring']);
  const ui = composeConfig('server', { PROMETHEUS_UI_PORT: '19090' }).services.prometheus.ports.map(String);
  assert.equal(ui.length, 1);
  assert.match(ui[0], /^127\.0\.0\.1:19090:9090(\/tcp)?$/);
  // the switches of .env reach the renderer
  const noGpu = composeConfig('server', { GPU: '0', TUNNEL: '0', ENERGY_PRICE_PLN_PER_KWH: '0.98' }).services.prometheus.environment;
  assert.equal(noGpu.MONITORING_GPU, '0');
  assert.equal(noGpu.MONITORING_TUNNEL, '0');
  assert.equal(noGpu.ENERGY_PRICE_PLN_PER_KWH, '0.98');
});

test('.env.example documents every monitoring setting compose passes', () => {
  const example = fs.readFileSync(path.join(ROOT, '.env.example'), 'utf8');
  const compose = fs.readFileSync(path.join(ROOT, 'compose', 'monitoring.yml'), 'utf8');
  const vars = new Set([...compose.matchAll(/\$\{([A-Z][A-Z0-9_]*)/g)].map((m) => m[1]));
  for (const v of ['GPU', 'TUNNEL', 'AUTH_USERS', 'ADMIN_USERS', 'METRICS_USERS']) vars.delete(v);   // documented above in the file
  assert.ok(vars.size >= 15, [...vars].join(' '));
  for (const v of vars) assert.match(example, new RegExp(`^${v}=`, 'm'), `.env.example documents ${v}`);
  assert.match(example, /^MONITORING=1$/m);
  assert.match(example, /^ENERGY_PRICE_PLN_PER_KWH=1\.10$/m);
  assert.match(example, /URE/);
});
