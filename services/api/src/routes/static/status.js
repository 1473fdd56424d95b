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

    $('rate').textContent = s.requestRatePerS;

    $('models').innerHTML = s.loadedModels.length ? '<table><tr><th>model</th><th>size</th><th>in VRAM</th><th>until</th></tr>' + s.loadedModels.map(function (m) {
      var pct = m.vramShare == null ? 0 : Math.round(m.vramShare * 100);
      return '<tr><td>' + esc(m.name) + '</td><td>' + gb(m.sizeBytes) + '</td><td>' + bar(pct) + pct + '%' + (pct < 100 ? ' <span class="warn">partly on CPU (slow)</span>' : '') +
        '</td><td>' + esc(new Date(m.expiresAt).toLocaleString()) + '</td></tr>';
    }).join('') + '</table>' : 'none loaded';

    $('errors').innerHTML = s.recentErrors.length ? '<table><tr><th>when</th><th>code</th><th>status</th><th>route</th></tr>' + s.recentErrors.map(function (e) {
      return '<tr><td>' + esc(new Date(e.at).toLocaleTimeString()) + '</td><td>' + esc(e.code) + '</td><td>' + e.status + '</td><td>' + esc(e.route) + '</td></tr>';
    }).join('') + '</table>' : 'none';
  }

  // Built without the page URL's user:password@ part (fetch refuses URLs with credentials; the
  // browser still sends the basic-auth it already has for this origin).
  var statusUrl = location.origin + location.pathname.replace(/[^/]*$/, '') + 'status.json';

  function tick() {
    fetch(statusUrl, { credentials: 'same-origin' })
      .then(function (r) { if (!r.ok) throw new Error('HTTP ' + r.status); return r.json(); })
      .then(render)
      .catch(function (e) { $('state').textContent = 'unreachable'; $('state').className = 'pill unavailable'; $('health').textContent = String(e); });
  }
  tick();
  setInterval(tick, 5000);
})();
