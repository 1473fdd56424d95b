'use strict';
// `make up` refuses to publish the plain-HTTP port beyond loopback (basic-auth passwords would cross
// the LAN in clear text) unless ALLOW_LAN_BIND=1; `make init` keeps making strong passwords. Run in a
// scratch copy of the scripts with a stand-in compose command that records its arguments.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { ROOT, run, tmpDir } = require('../lib/helpers');

function scratchRepo(envLines = '') {
  const dir = tmpDir('sec-bind-');
  fs.mkdirSync(path.join(dir, 'scripts'));
  for (const f of ['scripts/init-env.sh', 'scripts/compose.sh', 'scripts/env.sh', 'scripts/up.sh', '.env.example', 'Makefile']) {
    fs.copyFileSync(path.join(ROOT, f), path.join(dir, f));
  }
  assert.equal(run('make', ['-s', 'init'], { cwd: dir }).status, 0);
  if (envLines) fs.appendFileSync(path.join(dir, '.env'), envLines);
  return dir;
}

async function makeUp(dir, env = {}) {
  const calls = path.join(dir, 'compose-calls.log');
  const stub = path.join(dir, 'compose-stub');
  fs.writeFileSync(stub, `#!/bin/sh\necho "DOCKER_GID=\${DOCKER_GID:-unset} $*" >> "${calls}"\n`, { mode: 0o755 });
  const server = http.createServer((req, res) => res.end(req.url === '/health' ? '{"status":"ok"}' : ''));
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  try {
    const child = spawn('make', ['-s', 'up'], {
      cwd: dir,
      env: { ...process.env, COMPOSE_BIN: stub, HTTP_PORT: String(server.address().port), GPU: '', TUNNEL: '', TUNNEL_TOKEN: '',
        AUTH_USERS: undefined, COMPOSE_PROJECT_NAME: '', HTTP_BIND: undefined, ALLOW_LAN_BIND: undefined, DOCKER_GID: undefined, DOCKER_SOCK_PATH: undefined,
        UP_DOCTOR: '0', // the doctor has its own suite (tests/doctor.test.js); here compose is a stand-in
        ...env },
    });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    const status = await new Promise((r) => child.on('exit', r));
    return { status, out, calls: fs.existsSync(calls) ? fs.readFileSync(calls, 'utf8').trim().split('\n').filter(Boolean) : [] };
  } finally {
    server.close();
  }
}

test('make up: loopback binds start; a LAN bind is refused with the reason, unless ALLOW_LAN_BIND=1', async () => {
  for (const bind of ['127.0.0.1', '127.0.0.2', 'localhost', '::1']) {
    const r = await makeUp(scratchRepo(), { HTTP_BIND: bind });
    assert.equal(r.status, 0, `${bind}: ${r.out}`);
    assert.equal(r.calls.length, 1);
  }
  for (const bind of ['0.0.0.0', '192.168.1.20', '::', '10.0.0.5']) {
    const r = await makeUp(scratchRepo(), { HTTP_BIND: bind });
    assert.notEqual(r.status, 0, `${bind} was accepted`);
    assert.deepEqual(r.calls, [], `${bind}: compose was run`);
    assert.match(r.out, new RegExp(`refusing HTTP_BIND=${bind.replace(/\./g, '\\.')}: the port is plain HTTP`));
    assert.match(r.out, /basic-auth passwords would cross the network in clear/);
    assert.match(r.out, /ALLOW_LAN_BIND=1/);
  }
  // from .env as well as from the environment, and the opt-in from either
  const fromEnvFile = await makeUp(scratchRepo('HTTP_BIND=0.0.0.0\n'));
  assert.notEqual(fromEnvFile.status, 0);
  assert.deepEqual(fromEnvFile.calls, []);
  const optIn = await makeUp(scratchRepo('HTTP_BIND=0.0.0.0\nALLOW_LAN_BIND=1\n'));
  assert.equal(optIn.status, 0, optIn.out);
  assert.match(optIn.out, /WARNING: HTTP_BIND=0\.0\.0\.0 publishes plain HTTP/);
  assert.equal(optIn.calls.length, 1);
  const optInEnv = await makeUp(scratchRepo(), { HTTP_BIND: '192.168.1.20', ALLOW_LAN_BIND: '1' });
  assert.equal(optInEnv.status, 0, optInEnv.out);
  // .env.example: loopback by default, the opt-in documented and off
  const example = fs.readFileSync(path.join(ROOT, '.env.example'), 'utf8');
  assert.match(example, /^HTTP_BIND=127\.0\.0\.1$/m);
  assert.match(example, /^ALLOW_LAN_BIND=0$/m);
  assert.match(example, /^ALLOW_WEAK_PASSWORDS=0$/m);
});

test('make up passes the Docker socket\'s group to compose when .env does not set DOCKER_GID', async () => {
  const dir = scratchRepo();
  const sockDir = tmpDir('sec-sock-');
  const sock = path.join(sockDir, 'docker.sock');
  const srv = require('node:net').createServer().listen(sock);
  await new Promise((r) => srv.once('listening', r));
  try {
    const gid = fs.statSync(sock).gid;
    const r = await makeUp(dir, { DOCKER_SOCK_PATH: sock });
    assert.equal(r.status, 0, r.out);
    assert.match(r.calls[0], new RegExp(`^DOCKER_GID=${gid} `));
    const set = await makeUp(scratchRepo('DOCKER_GID=4242\n'), { DOCKER_SOCK_PATH: sock });
    assert.match(set.calls[0], /^DOCKER_GID=unset /, '.env wins (compose reads it there)');
  } finally {
    srv.close();
  }
});

test('make init passwords are strong enough for the door (16+ characters, nginx accepts them)', () => {
  const dir = scratchRepo();
  const users = /^AUTH_USERS=(.*)$/m.exec(fs.readFileSync(path.join(dir, '.env'), 'utf8'))[1];
  for (const entry of users.split(',')) assert.ok(entry.split(':')[1].length >= 16, `${entry.split(':')[0]}: short password`);
  const r = run(path.join(ROOT, 'docker', 'nginx', '05-auth-files.sh'), [], { env: { ...process.env, NGINX_AUTH_DIR: tmpDir('sec-auth-'), AUTH_USERS: users, ADMIN_USERS: 'admin', ALLOW_WEAK_PASSWORDS: '0' } });
  assert.equal(r.status, 0, r.stderr);
});
