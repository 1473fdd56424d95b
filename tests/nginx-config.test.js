'use strict';
// The nginx template rendered as the container renders it, checked by the real nginx binary (`nginx -t`),
// and the auth step that writes the htpasswd at container start.
const { missingTools, skipSuite } = require('./lib/skip');
// off CI a machine without these tools skips this file with one line (scripts/test-skip.sh)
if (skipSuite(__filename, missingTools(['nginx', 'envsubst', 'perl', 'docker-compose', 'python3-yaml']), 'apt-get install nginx-light gettext-base perl-base docker-compose python3-yaml')) return;
const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { ROOT, run, composeConfig, tmpDir, freePort, request, stop } = require('./lib/helpers');

const TEMPLATES = path.join(ROOT, 'nginx', 'templates');
const AUTH_SCRIPT = path.join(ROOT, 'docker', 'nginx', '05-auth-files.sh');
const USERS = 'admin:Adm1n-s3cret!-9fK2qLz,waldus:w4ldus:with:colons-Qx7,bob:b0b pass with spaces 4T';

function nginxT(dir) {
  return run('nginx', ['-t', '-e', 'stderr', '-p', dir, '-c', path.join(dir, 'nginx.conf')]);
}
function readAll(dir) {
  return fs.readdirSync(dir, { recursive: true })
    .map((f) => path.join(dir, f))
    .filter((f) => fs.statSync(f).isFile())
    .map((f) => fs.readFileSync(f, 'utf8'))
    .join('\n');
}

test('the rendered config (scripts/render-nginx.sh) passes nginx -t and holds no plaintext password', () => {
  const dir = tmpDir('nginx-render-');
  const r = run(path.join(ROOT, 'scripts', 'render-nginx.sh'), [dir], { env: { ...process.env, AUTH_USERS: USERS, ADMIN_USERS: 'admin' } });
  assert.equal(r.status, 0, r.stderr);
  const t = nginxT(dir);
  assert.equal(t.status, 0, t.stderr);
  assert.match(t.stderr, /test is successful/);
  const everything = readAll(dir);
  for (const pw of ['Adm1n-s3cret!-9fK2qLz', 'w4ldus:with:colons-Qx7', 'b0b pass with spaces 4T']) assert.ok(!everything.includes(pw), `plaintext password ${pw} in a rendered file`);
  const conf = ['default.conf', 'ai-local-core/routes.conf'].map((f) => fs.readFileSync(path.join(dir, 'conf.d', f), 'utf8')).join('\n');
  assert.doesNotMatch(conf.replace(/#.*$/gm, ''), /\$\{/, 'every ${NGINX_*} was substituted');
  assert.match(conf, /\$remote_user|\$binary_remote_addr/, "nginx's own variables survived envsubst");
  for (const d of ['server_tokens off;', 'proxy_buffering off;', 'limit_req_status 429;', 'limit_conn_status 429;', 'real_ip_header CF-Connecting-IP;']) {
    assert.ok(conf.includes(d), d);
  }
});

test('the config exactly as the container renders it (compose environment) passes nginx -t', () => {
  const nginxEnv = composeConfig('server').services.nginx.environment;
  const dir = tmpDir('nginx-container-');
  const authDir = path.join(dir, 'auth');
  // the template uses only ${NGINX_*} variables that compose sets (or the image's 15-local-resolvers.envsh)
  const text = ['default.conf', 'ai-local-core/routes.conf'].map((f) => fs.readFileSync(path.join(TEMPLATES, `${f}.template`), 'utf8')).join('\n');
  const used = [...text.matchAll(/\$\{([A-Za-z0-9_]+)\}/g)].map((m) => m[1]);
  for (const v of new Set(used)) {
    assert.match(v, /^NGINX_/, `${v}: only NGINX_* variables pass NGINX_ENVSUBST_FILTER`);
    if (v === 'NGINX_LOCAL_RESOLVERS') assert.equal(nginxEnv.NGINX_ENTRYPOINT_LOCAL_RESOLVERS, '1');
    else assert.ok(v in nginxEnv, `${v} is set in the nginx service's environment`);
  }
  assert.equal(nginxEnv.NGINX_ENVSUBST_FILTER, '^NGINX_');
  const env = { ...process.env, ...nginxEnv, NGINX_AUTH_DIR: authDir, NGINX_LOCAL_RESOLVERS: '127.0.0.11', AUTH_USERS: USERS, ADMIN_USERS: 'admin' };
  assert.equal(run(AUTH_SCRIPT, [], { env }).status, 0);
  const vars = Object.keys(env).filter((k) => /^NGINX_/.test(k)).map((k) => '${' + k + '}').join(' ');
  const render = (rel) => {
    const r = run('envsubst', [vars], { env, input: fs.readFileSync(path.join(TEMPLATES, `${rel}.template`), 'utf8') });
    assert.equal(r.status, 0);
    fs.mkdirSync(path.dirname(path.join(dir, 'conf.d', rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, 'conf.d', rel), r.stdout);
    return r.stdout;
  };
  const main = render('default.conf');
  const routes = render('ai-local-core/routes.conf');
  // the official image's nginx.conf: conf.d/*.conf (not subdirectories) inside http {}
  fs.writeFileSync(path.join(dir, 'nginx.conf'),
    `worker_processes 1; pid ${dir}/nginx.pid; events {} http { include ${dir}/conf.d/*.conf; }\n`);
  assert.match(main, /listen 80;/);
  assert.match(main, /listen 8081;[^}]*real_ip_header CF-Connecting-IP;/);
  assert.doesNotMatch(main.split('listen 8081;')[0], /real_ip_header/, 'the published listener ignores CF-Connecting-IP');
  assert.match(routes, /set \$api_upstream http:\/\/api:3000;/);
  const t = nginxT(dir);
  assert.equal(t.status, 0, t.stderr);
});

/** Checks user:{SSHA}base64(sha1(password . salt) . salt) lines against the passwords. */
function assertSsha(lines, passwords) {
  const salts = new Set();
  lines.forEach((l, i) => {
    const m = /^[a-z]+:\{SSHA\}([A-Za-z0-9+/]{38}==)$/.exec(l);
    assert.ok(m, `not an {SSHA} line: ${l}`);
    const raw = Buffer.from(m[1], 'base64');
    const salt = raw.subarray(20);
    assert.equal(salt.length, 8);
    assert.deepEqual(raw.subarray(0, 20), crypto.createHash('sha1').update(Buffer.concat([Buffer.from(passwords[i]), salt])).digest());
    salts.add(salt.toString('hex'));
  });
  assert.equal(salts.size, lines.length, 'a fresh salt per user');
}

test('auth step: {SSHA} hashes (the default) with random salts, admins map, owner-readable files', () => {
  const dir = tmpDir('nginx-auth-');
  const r = run(AUTH_SCRIPT, [], { env: { ...process.env, NGINX_AUTH_DIR: dir, AUTH_USERS: USERS, ADMIN_USERS: ' admin ' } });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /3 user\(s\), admin\(s\): admin/);
  const lines = fs.readFileSync(path.join(dir, 'htpasswd'), 'utf8').trim().split('\n');
  assert.deepEqual(lines.map((l) => l.split(':')[0]), ['admin', 'waldus', 'bob']);
  assertSsha(lines, ['Adm1n-s3cret!-9fK2qLz', 'w4ldus:with:colons-Qx7', 'b0b pass with spaces 4T']);
  assert.equal(fs.readFileSync(path.join(dir, 'admins.map'), 'utf8'), '"admin" 1;\n');
});

test('auth step: plain-Perl SHA-1 and base64 where perl has no Digest::SHA / MIME::Base64 (the nginx image\'s perl-base)', () => {
  const dir = tmpDir('nginx-auth-pp-');
  const hide = tmpDir('nginx-auth-hide-');
  for (const m of ['Digest/SHA.pm', 'MIME/Base64.pm']) {
    fs.mkdirSync(path.join(hide, path.dirname(m)), { recursive: true });
    fs.writeFileSync(path.join(hide, m), 'die "hidden for the test\\n";\n');
  }
  const pws = ['Adm1n-s3cret!-9fK2qLz', 'x', 'a-rather-long-password-of-more-than-one-sha1-block-'.repeat(3)];
  const r = run(AUTH_SCRIPT, [], { env: { ...process.env, PERL5LIB: hide, NGINX_AUTH_DIR: dir, AUTH_USERS: pws.map((p, i) => `u${'abc'[i]}:${p}`).join(','), ADMIN_USERS: '', ALLOW_WEAK_PASSWORDS: '1' } });
  assert.equal(r.status, 0, r.stderr);
  assertSsha(fs.readFileSync(path.join(dir, 'htpasswd'), 'utf8').trim().split('\n'), pws);
});

test('auth step: NGINX_AUTH_HASH=sha512 writes SHA-512 crypt; an unknown kind is refused', () => {
  const dir = tmpDir('nginx-auth-512-');
  const r = run(AUTH_SCRIPT, [], { env: { ...process.env, NGINX_AUTH_HASH: 'sha512', NGINX_AUTH_DIR: dir, AUTH_USERS: USERS, ADMIN_USERS: '' } });
  assert.equal(r.status, 0, r.stderr);
  const lines = fs.readFileSync(path.join(dir, 'htpasswd'), 'utf8').trim().split('\n');
  for (const l of lines) assert.match(l, /^[a-z]+:\$6\$[A-Za-z0-9./]{16}\$[A-Za-z0-9./]{86}$/);
  assert.equal(new Set(lines.map((l) => l.split('$')[2])).size, 3, 'a fresh salt per user');
  const bad = run(AUTH_SCRIPT, [], { env: { ...process.env, NGINX_AUTH_HASH: 'md5', NGINX_AUTH_DIR: dir, AUTH_USERS: USERS, ADMIN_USERS: '' } });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /NGINX_AUTH_HASH must be ssha or sha512/);
});

test('auth step refuses to let nginx start without users or with an admin who is no user', () => {
  const dir = tmpDir('nginx-auth-bad-');
  const cases = [
    [{ AUTH_USERS: '' }, /AUTH_USERS is empty/],
    [{ AUTH_USERS: ' , ' }, /AUTH_USERS is empty/],
    [{ AUTH_USERS: 'nopassword' }, /entry #1 must look like user:password/],
    [{ AUTH_USERS: 'a:', ADMIN_USERS: '' }, /empty password/],
    [{ AUTH_USERS: 'a:x,a:y' }, /listed twice/],
    [{ AUTH_USERS: 'bad name:x' }, /user name must match/],
    [{ AUTH_USERS: 'a:0123456789abcdefXYZ', ADMIN_USERS: 'root' }, /"root" is not a user/],
  ];
  for (const [env, msg] of cases) {
    const r = run(AUTH_SCRIPT, [], { env: { ...process.env, NGINX_AUTH_DIR: dir, ADMIN_USERS: '', ...env } });
    assert.equal(r.status, 1, JSON.stringify(env));
    assert.match(r.stderr, msg);
    assert.ok(!r.stderr.includes('nopassword'), 'never echoes an entry (it may be a password)');
  }
});

test('{SSHA} from the plain-Perl SHA-1 (as in the nginx image) is accepted by nginx', async () => {
  const dir = tmpDir('nginx-ssha-');
  const [port, deadPort] = [await freePort(), await freePort()];
  const hide = tmpDir('nginx-ssha-hide-');
  fs.mkdirSync(path.join(hide, 'Digest'));
  fs.writeFileSync(path.join(hide, 'Digest', 'SHA.pm'), 'die "hidden for the test\\n";\n');
  const env = { ...process.env, PERL5LIB: hide, AUTH_USERS: 'mac:M4c-pw-5hR8wT2nYq', NGINX_PORT: String(port), NGINX_TUNNEL_PORT: String(await freePort()), NGINX_API_UPSTREAM: `127.0.0.1:${deadPort}` };
  assert.equal(run(path.join(ROOT, 'scripts', 'render-nginx.sh'), [dir], { env }).status, 0);
  assert.match(fs.readFileSync(path.join(dir, 'auth', 'htpasswd'), 'utf8'), /^mac:\{SSHA\}/);
  const nginx = spawn('nginx', ['-e', 'stderr', '-p', dir, '-c', path.join(dir, 'nginx.conf'), '-g', 'daemon off;'], { stdio: 'ignore' });
  try {
    const base = `http://127.0.0.1:${port}`;
    for (let i = 0; i < 50; i++) {
      try { if ((await request(`${base}/nginx-health`)).status === 200) break; } catch { /* not up yet */ }
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal((await request(`${base}/v1/models`, { user: 'mac:wrong' })).status, 401);
    // the password is right: nginx lets it through to the (absent) api
    assert.equal((await request(`${base}/v1/models`, { user: 'mac:M4c-pw-5hR8wT2nYq' })).status, 502);
  } finally {
    await stop(nginx);
  }
});

test('16-engine-resolver.envsh leaves nginx only the engine DNS (podman lists the host resolvers too)', () => {
  const script = path.join(ROOT, 'docker', 'nginx', '16-engine-resolver.envsh');
  assert.ok(fs.statSync(script).mode & 0o111, 'executable: the image entrypoint ignores a non-executable *.envsh');
  const nginx = composeConfig('server').services.nginx;
  assert.ok(nginx.volumes.some((v) => String(v.target || v).includes('/docker-entrypoint.d/16-engine-resolver.envsh')), 'mounted into the nginx container');
  // sourced by sh like the official entrypoint does, after 15-local-resolvers.envsh set the variable
  const source = (value) => run('sh', ['-c', `. "${script}"; printf '[%s]' "\${NGINX_LOCAL_RESOLVERS-unset}"`],
    { env: value === undefined ? { PATH: process.env.PATH } : { PATH: process.env.PATH, NGINX_LOCAL_RESOLVERS: value } }).stdout;
  assert.equal(source('10.89.2.1 10.89.0.1 10.255.255.53'), '[10.89.2.1]', 'podman: aardvark-dns first, then the host resolvers (NXDOMAIN for api)');
  assert.equal(source('127.0.0.11'), '[127.0.0.11]', "Docker's embedded DNS");
  assert.equal(source('[fd00::1] 10.0.0.1'), '[[fd00::1]]');
  assert.equal(source(undefined), '[unset]', 'NGINX_ENTRYPOINT_LOCAL_RESOLVERS off: left alone');
});

test('auth step: a password under 16 characters stops nginx naming the user, never the password, unless ALLOW_WEAK_PASSWORDS=1', () => {
  const dir = tmpDir('nginx-auth-weak-');
  const strong = 'Str0ng-and-long-9qZ';
  const users = `admin:${strong},bob:fifteen-chars-x,eve:\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9`;
  const r = run(AUTH_SCRIPT, [], { env: { ...process.env, NGINX_AUTH_DIR: dir, AUTH_USERS: users, ADMIN_USERS: 'admin' } });
  assert.equal(r.status, 1, r.stdout);
  assert.match(r.stderr, /user\(s\) "bob" is shorter than 16 characters/);
  assert.match(r.stderr, /ALLOW_WEAK_PASSWORDS=1/);
  assert.ok(!r.stderr.includes('eve'), '16 characters (32 bytes of UTF-8) are enough: counted in characters');
  for (const secret of ['fifteen-chars-x', strong]) assert.ok(!(r.stderr + r.stdout).includes(secret), 'no password in the message');
  assert.ok(!fs.existsSync(path.join(dir, 'htpasswd')), 'no htpasswd written: nginx cannot start');
  for (const yes of ['1', 'true']) {
    const ok = run(AUTH_SCRIPT, [], { env: { ...process.env, NGINX_AUTH_DIR: dir, AUTH_USERS: users, ADMIN_USERS: 'admin', ALLOW_WEAK_PASSWORDS: yes } });
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stderr, /WARNING: password shorter than 16 characters for user\(s\) "bob"/);
    assert.ok(!ok.stderr.includes('fifteen-chars-x'));
  }
  const no = run(AUTH_SCRIPT, [], { env: { ...process.env, NGINX_AUTH_DIR: dir, AUTH_USERS: users, ALLOW_WEAK_PASSWORDS: '0' } });
  assert.equal(no.status, 1);
  // compose passes the opt-in to the nginx container, default off
  assert.equal(composeConfig('server').services.nginx.environment.ALLOW_WEAK_PASSWORDS, '0');
});
