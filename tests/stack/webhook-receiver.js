'use strict';
// Test-only receiver for tests/stack/monitoring.sh, run as a container on the stack's monitoring
// network: records every request Alertmanager makes (one JSON line each in /tmp/received.ndjson and
// on stdout) and answers like the endpoints it stands in for: Telegram's Bot API (`/bot<token>/
// sendMessage`, reached through ALERT_TELEGRAM_API_URL), an ntfy topic, a plain webhook.
const http = require('node:http');
const fs = require('node:fs');

const FILE = '/tmp/received.ndjson';
let n = 0;
const server = http.createServer((req, res) => {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (d) => { body += d; });
  req.on('end', () => {
    n += 1;
    const line = JSON.stringify({ n, at: new Date().toISOString(), method: req.method, url: req.url, contentType: req.headers['content-type'] || '', body });
    fs.appendFileSync(FILE, line + '\n');
    console.log(line);
    res.setHeader('content-type', 'application/json');
    if (req.url.endsWith('/sendMessage')) {
      res.end(JSON.stringify({ ok: true, result: { message_id: n, date: Math.floor(Date.now() / 1000), chat: { id: 1, type: 'private' }, text: '' } }));
    } else {
      res.end('{"ok":true}');
    }
  });
});
server.listen(8080, '0.0.0.0', () => console.log('webhook receiver on :8080'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
