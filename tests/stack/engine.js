#!/usr/bin/env node
// Helpers for tests/stack/smoke.sh: a small client of the Docker Engine API (podman's compatible API
// service or a real Docker engine, found through DOCKER_HOST), plus the HTTP checks that bash does
// badly. No dependencies.
//
//   engine.js states PROJECT              one line per container of the compose project:
//                                         service status health exit startedAt finishedAt name
//   engine.js get PROJECT SERVICE FIELD   one field of the service's container (id name status health
//                                         exit startedAt finishedAt ports env:NAME)
//   engine.js duration PROJECT SERVICE    seconds from StartedAt to FinishedAt of an exited container
//   engine.js published PROJECT           "service hostIp:hostPort->containerPort" per published port
//   engine.js exists volume|network NAME  exit 0 if it exists, 1 if not
//   engine.js networks PROJECT            names of the project's networks (label com.docker.compose.project)
//   engine.js watch PROJECT FILE          until SIGTERM: sample the project every 250 ms and keep in FILE
//                                         (JSON) per service: when it started / exited (the engine's own
//                                         times) and when it was last seen not yet healthy / first seen healthy
//   engine.js order FILE T0 SPEC...       check the start order recorded by `watch` (SPEC: "b>a:healthy" = b
//                                         started after a was healthy, "b>a:completed" = after a exited 0,
//                                         "b>a:started"); print each service's times relative to T0 (epoch s)
//   engine.js stream URL USER:PW JSON     POST a streamed request; print, tab-separated: status chunks lines
//                                         totalMs spanMs contentType firstLine lastLine
//   engine.js json PATH                   read JSON on stdin, print the value at PATH (a.b.0.c); exit 1 if absent
'use strict';
const http = require('http');
const fs = require('fs');

function target() {
  const h = process.env.DOCKER_HOST || 'unix:///var/run/docker.sock';
  if (h.startsWith('unix://')) return { socketPath: h.slice('unix://'.length) };
  const u = new URL(h.replace(/^tcp:/, 'http:'));
  return { host: u.hostname, port: Number(u.port || 2375) };
}

function api(path) {
  return new Promise((resolve, reject) => {
    const req = http.request({ ...target(), path, method: 'GET', headers: { Host: 'docker' }, timeout: 10000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => {
        if (res.statusCode === 404) return resolve(null);
        if (res.statusCode >= 300) return reject(new Error(`engine API ${path}: ${res.statusCode} ${body.slice(0, 200)}`));
        try { resolve(JSON.parse(body)); } catch (e) { reject(new Error(`engine API ${path}: bad JSON: ${e.message}`)); }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`engine API ${path}: timeout`)));
    req.on('error', reject);
    req.end();
  });
}

const labelFilter = (project) => encodeURIComponent(JSON.stringify({ label: [`com.docker.compose.project=${project}`] }));

// engine times: RFC 3339 with up to 9 fractional digits; zero time = never
function ms(t) {
  if (!t || t.startsWith('0001-')) return null;
  const n = Date.parse(t.replace(/(\.\d{3})\d+/, '$1'));
  return Number.isNaN(n) ? null : n;
}

function view(c) {
  const s = c.State || {};
  const ports = [];
  for (const [cport, binds] of Object.entries((c.NetworkSettings && c.NetworkSettings.Ports) || {})) {
    for (const b of binds || []) if (b && b.HostPort) ports.push(`${b.HostIp || '0.0.0.0'}:${b.HostPort}->${cport}`);
  }
  return {
    id: c.Id,
    name: (c.Name || '').replace(/^\//, ''),
    service: (c.Config && c.Config.Labels && c.Config.Labels['com.docker.compose.service']) || '?',
    status: s.Status || '?',
    health: (s.Health && s.Health.Status) || '-',
    exit: s.ExitCode,
    startedAt: s.StartedAt && !s.StartedAt.startsWith('0001-') ? s.StartedAt : '-',
    finishedAt: s.FinishedAt && !s.FinishedAt.startsWith('0001-') ? s.FinishedAt : '-',
    ports: ports.join(',') || '-',
    env: (c.Config && c.Config.Env) || [],
  };
}

async function containers(project) {
  const list = (await api(`/containers/json?all=1&filters=${labelFilter(project)}`)) || [];
  const out = [];
  for (const c of list) {
    const full = await api(`/containers/${c.Id}/json`);
    if (full) out.push(view(full));
  }
  return out.sort((a, b) => a.service.localeCompare(b.service));
}

async function one(project, service) {
  const all = (await containers(project)).filter((c) => c.service === service);
  if (all.length !== 1) throw new Error(`project ${project}: ${all.length} containers of service ${service}`);
  return all[0];
}

function jsonPath(obj, path) {
  let v = obj;
  for (const k of path.split('.').filter(Boolean)) {
    if (v === null || typeof v !== 'object' || !(k in v)) return undefined;
    v = v[k];
  }
  return v;
}

async function watch(project, file) {
  const seen = {};
  let stop = false;
  const save = () => {
    fs.writeFileSync(`${file}.tmp`, JSON.stringify(seen, null, 1));
    fs.renameSync(`${file}.tmp`, file);
  };
  process.on('SIGTERM', () => { stop = true; });
  process.on('SIGINT', () => { stop = true; });
  save();
  while (!stop) {
    const sentAt = Date.now();
    let list = [];
    try { list = await containers(project); } catch { /* engine busy: next round */ }
    let changed = false;
    for (const c of list) {
      const s = seen[c.service] || (seen[c.service] = { firstHealthy: null, lastNotHealthy: null, states: [] });
      const key = `${c.status}/${c.health}/${c.exit}/${c.startedAt}`;
      if (s.states[s.states.length - 1] !== key) { s.states.push(key); changed = true; }
      s.startedAt = ms(c.startedAt) ?? s.startedAt ?? null;
      s.finishedAt = c.status === 'running' ? null : ms(c.finishedAt);
      s.exit = c.exit;
      s.status = c.status;
      // the state was read after sentAt: "not healthy yet" holds at least until sentAt
      if (c.status === 'running' && c.health !== 'healthy' && c.health !== '-') s.lastNotHealthy = sentAt;
      if (c.status === 'running' && c.health === 'healthy' && s.firstHealthy === null) { s.firstHealthy = Date.now(); changed = true; }
      if (c.health !== '-') s.hasHealthcheck = true;
    }
    if (changed) save();
    await new Promise((r) => setTimeout(r, 250));
  }
  save();
}

function order(file, t0, specs) {
  const seen = JSON.parse(fs.readFileSync(file, 'utf8'));
  const rel = (t) => (t === null || t === undefined ? '      -' : `${((t - t0 * 1000) / 1000).toFixed(1).padStart(6)}s`);
  for (const [svc, s] of Object.entries(seen)) {
    const exited = s.status === 'exited' ? `exited(${s.exit}) ${rel(s.finishedAt)}` : '';
    console.log(`    ${svc.padEnd(20)} started ${rel(s.startedAt)}  ${s.hasHealthcheck ? `healthy ${rel(s.firstHealthy)}` : ''}${exited}`);
  }
  let bad = 0;
  for (const spec of specs) {
    const m = /^([\w.-]+)>([\w.-]+):(healthy|completed|started)$/.exec(spec);
    if (!m) throw new Error(`bad order spec ${spec}`);
    const [, b, a, cond] = m;
    const B = seen[b], A = seen[a];
    let why = '';
    if (!B || !B.startedAt) why = `${b} never started`;
    else if (!A) why = `${a} never seen`;
    else if (cond === 'healthy') {
      if (!A.firstHealthy) why = `${a} never seen healthy`;
      else if (A.lastNotHealthy === null) why = `${a} was never seen before it was healthy (watch started late?)`;
      else if (B.startedAt <= A.lastNotHealthy) why = `${b} started at ${rel(B.startedAt)}, while ${a} was still not healthy at ${rel(A.lastNotHealthy)}`;
    } else if (cond === 'completed') {
      if (A.status !== 'exited' || A.exit !== 0) why = `${a} did not exit 0 (${A.status}, exit ${A.exit})`;
      else if (B.startedAt < A.finishedAt) why = `${b} started at ${rel(B.startedAt)}, before ${a} exited at ${rel(A.finishedAt)}`;
    } else if (cond === 'started') {
      if (!A.startedAt || B.startedAt < A.startedAt) why = `${b} started before ${a}`;
    }
    if (why) { bad++; console.log(`    ORDER VIOLATION ${spec}: ${why}`); } else console.log(`    order ok: ${b} after ${a} ${cond}`);
  }
  return bad === 0;
}

// POST and read the answer as it comes: how many reads (chunks) it took, over what time span, and the
// NDJSON lines. Tab-separated: status chunks lines totalMs spanMs contentType firstLine lastLine
function stream(url, auth, body) {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const u = new URL(url);
    const req = http.request({
      host: u.hostname, port: u.port, path: u.pathname + u.search, method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from(auth).toString('base64')}` },
      timeout: 60000,
    }, (res) => {
      const at = [];
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { at.push(Date.now()); text += d; });
      res.on('end', () => {
        const lines = text.split('\n').filter((l) => l.trim() !== '');
        for (const l of lines) { try { JSON.parse(l); } catch { return reject(new Error(`not NDJSON: ${l.slice(0, 200)}`)); } }
        const span = at.length ? at[at.length - 1] - at[0] : 0;
        resolve([res.statusCode, at.length, lines.length, Date.now() - t0, span, res.headers['content-type'] || '-',
          lines[0] || '-', lines[lines.length - 1] || '-'].join('\t'));
      });
    });
    req.on('timeout', () => req.destroy(new Error('stream: timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

async function main() {
  const [cmd, ...a] = process.argv.slice(2);
  switch (cmd) {
    case 'states':
      for (const c of await containers(a[0])) console.log([c.service, c.status, c.health, c.exit, c.startedAt, c.finishedAt, c.name].join(' '));
      return 0;
    case 'get': {
      const c = await one(a[0], a[1]);
      if (a[2].startsWith('env:')) {
        const prefix = `${a[2].slice('env:'.length)}=`;
        const e = c.env.find((x) => x.startsWith(prefix));
        console.log(e === undefined ? '' : e.slice(prefix.length));
      } else console.log(c[a[2]]);
      return 0;
    }
    case 'duration': {
      const c = await one(a[0], a[1]);
      const d = (ms(c.finishedAt) - ms(c.startedAt)) / 1000;
      if (!ms(c.finishedAt) || !ms(c.startedAt)) throw new Error(`${a[1]} has not run to its end`);
      console.log(d.toFixed(1));
      return 0;
    }
    case 'published':
      for (const c of await containers(a[0])) if (c.ports !== '-') for (const p of c.ports.split(',')) console.log(`${c.service} ${p}`);
      return 0;
    case 'exists': {
      const path = a[0] === 'volume' ? `/volumes/${encodeURIComponent(a[1])}` : `/networks/${encodeURIComponent(a[1])}`;
      return (await api(path)) ? 0 : 1;
    }
    case 'networks': {
      const list = (await api(`/networks?filters=${labelFilter(a[0])}`)) || [];
      for (const n of list) console.log(n.Name);
      return 0;
    }
    case 'watch':
      await watch(a[0], a[1]);
      return 0;
    case 'order':
      return order(a[0], Number(a[1]), a.slice(2)) ? 0 : 1;
    case 'stream':
      console.log(await stream(a[0], a[1], a[2]));
      return 0;
    case 'json': {
      const v = jsonPath(JSON.parse(fs.readFileSync(0, 'utf8')), a[0]);
      if (v === undefined) return 1;
      console.log(typeof v === 'object' ? JSON.stringify(v) : String(v));
      return 0;
    }
    default:
      console.error('usage: engine.js states|get|published|exists|networks|watch|order|stream|json ...');
      return 2;
  }
}

main().then((rc) => process.exit(rc), (err) => { console.error(`engine.js: ${err.message}`); process.exit(1); });
