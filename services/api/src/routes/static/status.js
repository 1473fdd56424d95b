// The status page: polls status.json and fills the cards. No framework, no build step.
(function () {
  'use strict';
  var $ = function (id) { return document.getElementById(id); };
  function esc(s) { return String(s).replace(/[&<>"']/g, function (c) { return '&#' + c.charCodeAt(0) + ';'; }); }
  function gb(bytes) { return (bytes / 1073741824).toFixed(1) + ' GB'; }
  function bar(pct) { return '<div class="bar"><div style="width:' + Math.min(100, Math.max(0, pct)) + '%"></div></div>'; }

  function render(s) {
    var r = s.ready;
    $('state').textContent = r.status;
    $('state').className = 'pill ' + r.status;
    $('health').innerHTML =
      'Ollama: ' + (r.ollama.reachable ? 'reachable, v' + esc(r.ollama.version) : '<b class="warn">not reachable</b>') +
      (r.ollama.restarting ? ' (restarting)' : '') + '<br>Default model: ' + esc(r.defaultModel.name) + ' — ' +
      (r.defaultModel.installed ? (r.defaultModel.loaded ? 'loaded' : (r.defaultModel.idle ? 'unloaded (idle)' : 'not loaded')) : '<b class="warn">not installed</b>') +
      (r.reason ? '<br><span class="warn">' + esc(r.reason) + '</span>' : '');

    if (!s.gpu.gpu) {
      $('gpu').innerHTML = '<span class="muted">No GPU data: ' + esc(s.gpu.reason || '') + '</span>';
    } else {
      $('gpu').innerHTML = s.gpu.gpu.map(function (g) {
        return '<b>' + esc(g.name) + '</b>' + bar(g.memoryUsedPct) + 'VRAM ' + g.memoryUsedMiB + ' / ' + g.memoryTotalMiB + ' MiB (' + g.memoryUsedPct + '%)<br>' +
          'Load ' + (g.utilizationPct ?? '–') + '% · ' + (g.temperatureC ?? '–') + ' °C · ' + (g.powerDrawW ?? '–') + ' W' +
          (g.powerLimitW ? ' / ' + g.powerLimitW + ' W' : '');
      }).join('<hr>') + '<br><span class="muted">≈ ' + s.gpu.energy.whSinceStart + ' Wh since ' + esc(s.gpu.energy.since) + '</span>';
    }

    $('queue').innerHTML = s.queue.length ? '<table><tr><th>model</th><th>running</th><th>waiting</th><th>avg</th></tr>' + s.queue.map(function (q) {
      return '<tr><td>' + esc(q.model) + '</td><td>' + q.active + '</td><td>' + q.queued + '</td><td>' + (q.avgDurationMs == null ? '–' : (q.avgDurationMs / 1000).toFixed(1) + ' s') + '</td></tr>';
    }).join('') + '</table>' : 'idle';

    $('upstreams').innerHTML = (s.upstreams || []).length ? '<table><tr><th>upstream</th><th>state</th><th>breaker</th><th>models</th><th>running</th><th>waiting</th><th>served</th></tr>' + s.upstreams.map(function (u) {
      var state = u.state === 'up' ? 'up' : '<span class="warn">' + esc(u.state) + '</span>';
      return '<tr><td><b>' + esc(u.name) + '</b> <span class="muted">' + esc(u.kind) + ' · priority ' + u.priority + '</span></td><td>' + state + '</td><td>' + esc(u.breaker.state) +
        '</td><td>' + (u.models ? u.models.length : '–') + '</td><td>' + u.queue.running + '</td><td>' + u.queue.queued + '</td><td>' + u.served +
        (u.failedOver ? ' <span class="muted">(' + u.failedOver + ' moved on)</span>' : '') + '</td></tr>';
    }).join('') + '</table>' : 'none';

    $('rate').textContent = s.requestRatePerS;

    $('models').innerHTML = s.loadedModels.length ? '<table><tr><th>model</th><th>size</th><th>in VRAM</th><th>until</th></tr>' + s.loadedModels.map(function (m) {
      var pct = m.vramShare == null ? 0 : Math.round(m.vramShare * 100);
      return '<tr><td>' + esc(m.name) + '</td><td>' + gb(m.sizeBytes) + '</td><td>' + bar(pct) + pct + '%' + (pct < 100 ? ' <span class="warn">partly on CPU (slow)</span>' : '') +
        '</td><td>' + esc(new Date(m.expiresAt).toLocaleString()) + '</td></tr>';
    }).join('') + '</table>' : 'none loaded';

    renderEnergy(s.energy);
    renderHost(s.host);
    renderAlerts(s.alerts);

    $('errors').innerHTML = s.recentErrors.length ? '<table><tr><th>when</th><th>code</th><th>status</th><th>route</th></tr>' + s.recentErrors.map(function (e) {
      return '<tr><td>' + esc(new Date(e.at).toLocaleTimeString()) + '</td><td>' + esc(e.code) + '</td><td>' + e.status + '</td><td>' + esc(e.route) + '</td></tr>';
    }).join('') + '</table>' : 'none';
  }

  function num(v, digits, unit) { return v == null ? '–' : v.toFixed(digits) + (unit ? ' ' + unit : ''); }

  function renderEnergy(e) {
    if (!e) return;
    if (e.reason) { $('energy').innerHTML = '<span class="muted">No energy figures: ' + esc(e.reason) + '</span>'; return; }
    $('energy').innerHTML = '<div class="kv">' +
      '<span>Today</span><b>' + num(e.todayKwh, 2, 'kWh') + ' · ' + num(e.todayPln, 2, 'PLN') + '</b>' +
      '<span>This month</span><b>' + num(e.monthKwh, 1, 'kWh') + ' · ' + num(e.monthPln, 2, 'PLN') + '</b>' +
      '<span>Projected month</span><b>' + num(e.projectedMonthPln, 2, 'PLN') + '</b>' +
      '<span>Per 1,000 tokens</span><b>' + num(e.plnPer1kTokens, 4, 'PLN') + '</b></div>' +
      '<span class="muted">at ' + num(e.pricePlnPerKwh, 2, 'PLN/kWh') + Object.keys(e.missing || {}).map(function (k) { return '<br>' + esc(k) + ': ' + esc(e.missing[k]); }).join('') + '</span>';
  }

  function renderHost(h) {
    if (!h) return;
    var used = h.memoryTotalBytes && h.memoryAvailableBytes != null ? (1 - h.memoryAvailableBytes / h.memoryTotalBytes) * 100 : null;
    var models = Object.keys(h.models || {});
    $('host').innerHTML = (used == null ? 'RAM: –' : 'RAM ' + bar(used) + gb(h.memoryTotalBytes - h.memoryAvailableBytes) + ' / ' + gb(h.memoryTotalBytes) + ' used') +
      '<br>Models disk: ' + (h.modelsVolumeFreeBytes == null ? '–' : gb(h.modelsVolumeFreeBytes) + ' free') +
      (models.length ? '<br>MODELS: ' + models.map(function (m) {
        var v = h.models[m];
        return esc(m) + (v === true ? ' ✓' : v === false ? ' <b class="warn">missing</b>' : ' ?');
      }).join(', ') : '');
  }

  function renderAlerts(a) {
    if (!a) return;
    if (!a.firing) { $('alerts').innerHTML = '<span class="muted">Alerts unknown: ' + esc(a.reason || '') + '</span>'; return; }
    $('alerts').innerHTML = (a.firing.length ? a.firing.map(function (x) {
      return '<div class="alert ' + esc(x.severity) + '"><b>' + esc(x.name) + '</b> <span class="muted">' + esc(x.severity) + ', since ' +
        esc(x.activeAt ? new Date(x.activeAt).toLocaleString() : '?') + '</span><br>' + esc(x.summary) + '<br><span class="muted">What to do: ' + esc(x.action) + '</span></div>';
    }).join('') : 'none firing') + (a.pending ? '<br><span class="muted">' + a.pending + ' pending (not yet past their for:)</span>' : '');
  }

  // Small line charts drawn by hand as SVG (no chart library: the page works without internet).
  var SERIES = ['requests', 'tokens_per_s', 'gpu_power', 'gpu_temp', 'queue_depth'];

  function chart(h) {
    var W = 300, H = 90, P = 2;
    var vals = h.values.filter(function (v) { return v != null; });
    if (!vals.length) return '<div class="muted" style="height:90px">no data in the last 24 h</div>';
    var max = Math.max.apply(null, vals), min = Math.min(0, Math.min.apply(null, vals));
    if (max === min) max = min + 1;
    var n = h.values.length - 1, d = '', pen = false;
    h.values.forEach(function (v, i) {
      if (v == null) { pen = false; return; }
      var x = P + (i / n) * (W - 2 * P), y = H - P - ((v - min) / (max - min)) * (H - 2 * P);
      d += (pen ? 'L' : 'M') + x.toFixed(1) + ' ' + y.toFixed(1);
      pen = true;
    });
    return '<svg viewBox="0 0 ' + W + ' ' + H + '" preserveAspectRatio="none" role="img" aria-label="' + esc(h.label) + '">' +
      '<line x1="0" y1="' + (H - P) + '" x2="' + W + '" y2="' + (H - P) + '" stroke="#e2e5ec"/>' +
      '<line x1="' + (W / 2) + '" y1="0" x2="' + (W / 2) + '" y2="' + H + '" stroke="#eef0f4" stroke-dasharray="3 3"/>' +
      '<path d="' + d + '" fill="none" stroke="#4c6ef5" stroke-width="1.6" vector-effect="non-scaling-stroke"/></svg>' +
      '<div class="head muted"><span>24 h ago</span><span>max ' + max.toFixed(max < 10 ? 2 : 0) + ' ' + esc(h.unit) + '</span><span>now</span></div>';
  }

  function renderHistory(r) {
    $('history-note').textContent = r.reason ? 'No history: ' + r.reason : '';
    $('charts').innerHTML = SERIES.map(function (name) {
      var h = r.series[name];
      if (!h) return '';
      var last = null;
      for (var i = h.values.length - 1; i >= 0 && last == null; i--) last = h.values[i];
      return '<div class="chart"><div class="head"><b>' + esc(h.label) + '</b><span>' + (last == null ? '–' : last.toFixed(last < 10 ? 2 : 0)) + ' ' + esc(h.unit) + '</span></div>' + chart(h) + '</div>';
    }).join('');
  }

  // Built without the page URL's user:password@ part (fetch refuses URLs with credentials; the
  // browser still sends the basic-auth it already has for this origin).
  var base = location.origin + location.pathname.replace(/[^/]*$/, '');
  var statusUrl = base + 'status.json';
  var historyUrl = base + 'history?series=' + SERIES.join(',');

  function history() {
    fetch(historyUrl, { credentials: 'same-origin' })
      .then(function (r) { if (!r.ok) throw new Error('HTTP ' + r.status); return r.json(); })
      .then(renderHistory)
      .catch(function (e) { $('history-note').textContent = 'History: ' + String(e); });
  }

  function tick() {
    fetch(statusUrl, { credentials: 'same-origin' })
      .then(function (r) { if (!r.ok) throw new Error('HTTP ' + r.status); return r.json(); })
      .then(render)
      .catch(function (e) { $('state').textContent = 'unreachable'; $('state').className = 'pill unavailable'; $('health').textContent = String(e); });
  }
  tick();
  setInterval(tick, 5000);
  history();
  setInterval(history, 60000);
})();
