'use strict';
// scripts/setup-ubuntu.sh with stand-in commands on PATH (ufw, apt-get, docker, sshd, systemctl, dpkg,
// nvidia-smi, ...): each records its argv, and the stateful ones (ufw, dpkg, systemctl) keep their
// state in files, so a second run sees what the first one did. Nothing on this machine is changed:
// the files the script writes go under SETUP_ROOT.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { ROOT, run, tmpDir } = require('./lib/helpers');

const SCRIPT = path.join(ROOT, 'scripts', 'setup-ubuntu.sh');

// Each stand-in: `rec` appends "name argv..." to $CALLS, then the body runs (sh).
const STUBS = {
  id: 'if [ "$1" = -u ]; then echo 0; else echo root; fi',
  'apt-get': 'case " $* " in *" install "*) for a in "$@"; do case $a in -*|install) ;; *) touch "$STATE/pkg-$a";; esac; done;; esac',
  dpkg: `case $1 in
  --print-architecture) echo amd64 ;;
  -s) [ -f "$STATE/pkg-$2" ] && printf 'Package: %s\\nStatus: install ok installed\\n' "$2" || { echo "dpkg-query: package '$2' is not installed" >&2; exit 1; } ;;
esac`,
  ufw: `case $1 in
  status)
    if [ -f "$STATE/ufw-active" ]; then
      echo "Status: active"; echo "Logging: on (low)"
      echo "Default: $(cat "$STATE/ufw-in" 2>/dev/null || echo allow) (incoming), $(cat "$STATE/ufw-out" 2>/dev/null || echo allow) (outgoing), disabled (routed)"
      echo; echo "To                         Action      From"; echo "--                         ------      ----"
      cat "$STATE/ufw-rules" 2>/dev/null
    else echo "Status: inactive"; fi ;;
  default) echo "$2" > "$STATE/ufw-$([ "$3" = incoming ] && echo in || echo out)" ;;
  limit) printf '%-26s LIMIT IN    Anywhere                   # %s\\n' "$2" "$4" >> "$STATE/ufw-rules" ;;
  --force) [ "$2" = enable ] && touch "$STATE/ufw-active" ;;
esac`,
  sshd: '[ "$1" = -T ] && cat "$STATE/sshd-T"',
  systemctl: `case $1 in
  is-enabled) [ -f "$STATE/enabled-$3" ] ;;
  enable) for a in "$@"; do case $a in enable|--now) ;; *) touch "$STATE/enabled-$a";; esac; done ;;
esac`,
  docker: `case "$1 $2" in
  "compose version") echo "Docker Compose version v2.39.1" ;;
  "ps --format") cat "$STATE/docker-ps" ;;
esac`,
  usermod: '', curl: 'exit 1', gpg: '',
  'nvidia-smi': 'echo "NVIDIA GeForce RTX 3060, 595.71.05, 12288 MiB"',
  'nvidia-ctk': '',
};

function setup({ sshd, dockerPs }) {
  const dir = tmpDir('setup-ubuntu-');
  const bin = path.join(dir, 'bin');
  const state = path.join(dir, 'state');
  fs.mkdirSync(bin);
  fs.mkdirSync(state);
  for (const [name, body] of Object.entries(STUBS)) {
    fs.writeFileSync(path.join(bin, name), `#!/bin/sh\nprintf '%s\\n' "${name} $*" >> "$CALLS"\n${body}\n`, { mode: 0o755 });
  }
  fs.writeFileSync(path.join(state, 'sshd-T'), sshd);
  fs.writeFileSync(path.join(state, 'docker-ps'), dockerPs);
  fs.writeFileSync(path.join(state, 'pkg-ca-certificates'), ''); // a few already there, as on a fresh Ubuntu
  return { dir, bin, state, root: path.join(dir, 'root') };
}

function runSetup(ctx, n) {
  const calls = path.join(ctx.dir, `calls-${n}.log`);
  fs.writeFileSync(calls, '');
  const r = run('bash', [SCRIPT], {
    env: { PATH: `${ctx.bin}:/usr/bin:/bin`, CALLS: calls, STATE: ctx.state, SETUP_ROOT: ctx.root, HOME: ctx.dir },
  });
  return { ...r, calls: fs.readFileSync(calls, 'utf8').trim().split('\n') };
}

const SSHD_PASSWORDS = 'port 2222\npermitrootlogin yes\npasswordauthentication yes\nkbdinteractiveauthentication no\npubkeyauthentication yes\n';
const SSHD_KEYS = 'port 22\npermitrootlogin prohibit-password\npasswordauthentication no\nkbdinteractiveauthentication no\n';
const PS = 'alc_nginx_1\t127.0.0.1:8080->80/tcp\nportainer\t0.0.0.0:9000->9000/tcp, :::9000->9000/tcp\nbuilder\t\nredis\t6379/tcp\n';

test('first run: ufw deny incoming + SSH rate-limited + enabled, unattended upgrades on, warnings for Docker ports and SSH passwords', () => {
  const ctx = setup({ sshd: SSHD_PASSWORDS, dockerPs: PS });
  const r = runSetup(ctx, 1);
  assert.equal(r.status, 0, r.stderr + r.stdout);
  const c = r.calls;
  const idx = (line) => c.indexOf(line);
  for (const line of ['ufw default deny incoming', 'ufw default allow outgoing', "ufw limit 2222/tcp comment ssh, rate-limited", 'ufw --force enable']) {
    assert.ok(idx(line) >= 0, `ran: ${line}\n${c.join('\n')}`);
  }
  assert.ok(idx("ufw limit 2222/tcp comment ssh, rate-limited") < idx('ufw --force enable'), 'SSH allowed before the firewall goes up');
  assert.ok(!c.some((l) => /^ufw (allow|limit) (22|80|443|8080)\b/.test(l)), 'no other port opened');
  assert.ok(idx('apt-get install -y -qq ufw') >= 0 && idx('apt-get install -y -qq unattended-upgrades') >= 0);
  assert.ok(idx('systemctl enable --now unattended-upgrades') >= 0);
  assert.equal(fs.readFileSync(path.join(ctx.root, 'etc/apt/apt.conf.d/20auto-upgrades'), 'utf8'),
    'APT::Periodic::Update-Package-Lists "1";\nAPT::Periodic::Unattended-Upgrade "1";\n');
  assert.ok(idx("docker ps --format {{.Names}}\\t{{.Ports}}") >= 0, 'checks the running containers');
  assert.match(r.stdout, /ufw does not filter Docker's published ports/);
  assert.match(r.stderr, /publish ports on every interface/);
  assert.match(r.stderr, /portainer\t0\.0\.0\.0:9000/);
  assert.doesNotMatch(r.stderr, /alc_nginx_1|redis|builder/, 'loopback-only and unpublished containers are fine');
  assert.match(r.stderr, /sshd allows password logins \(passwordauthentication yes\)/);
  assert.doesNotMatch(r.stderr, /kbdinteractiveauthentication yes/);
  assert.match(r.stderr, /PermitRootLogin yes/);
  // the rest of the script still ran (GPU part with the stand-ins)
  assert.ok(idx('nvidia-ctk runtime configure --runtime=docker') >= 0);
});

test('second run: nothing added, nothing reinstalled; keys-only SSH and no exposed port: no warning', () => {
  const ctx = setup({ sshd: SSHD_KEYS, dockerPs: 'alc_nginx_1\t127.0.0.1:8080->80/tcp\n' });
  const first = runSetup(ctx, 1);
  assert.equal(first.status, 0, first.stderr);
  assert.ok(first.calls.includes('ufw limit 22/tcp comment ssh, rate-limited'), 'default SSH port 22 from sshd -T');
  const auto = path.join(ctx.root, 'etc/apt/apt.conf.d/20auto-upgrades');
  const mtime = fs.statSync(auto).mtimeMs;
  const second = runSetup(ctx, 2);
  assert.equal(second.status, 0, second.stderr);
  const changes = second.calls.filter((l) => /^ufw (default|limit|allow|--force|enable)|^apt-get install .*(ufw|unattended)|^systemctl enable .*unattended/.test(l));
  assert.deepEqual(changes, [], 'the second run changes nothing');
  assert.ok(second.calls.includes('ufw status verbose'), 'it looked');
  assert.equal(fs.readFileSync(path.join(ctx.state, 'ufw-rules'), 'utf8').trim().split('\n').length, 1, 'one SSH rule, not two');
  assert.equal(fs.statSync(auto).mtimeMs, mtime, '20auto-upgrades not rewritten');
  assert.doesNotMatch(second.stdout, /turned on/);
  assert.doesNotMatch(second.stderr, /WARNING/);
});

test('ufw already active with other defaults: only what is missing is added', () => {
  const ctx = setup({ sshd: SSHD_KEYS, dockerPs: '' });
  fs.writeFileSync(path.join(ctx.state, 'ufw-active'), '');
  fs.writeFileSync(path.join(ctx.state, 'ufw-in'), 'allow');
  const r = runSetup(ctx, 1);
  assert.equal(r.status, 0, r.stderr);
  const ufw = r.calls.filter((l) => l.startsWith('ufw ') && l !== 'ufw status verbose');
  assert.deepEqual(ufw, ['ufw default deny incoming', 'ufw limit 22/tcp comment ssh, rate-limited']);
});

test('sshd -T unreadable: a warning to check by hand, not a failure', () => {
  const ctx = setup({ sshd: '', dockerPs: '' });
  fs.writeFileSync(path.join(ctx.bin, 'sshd'), `#!/bin/sh\nprintf '%s\\n' "sshd $*" >> "$CALLS"\necho "sshd: no hostkeys available -- exiting." >&2; exit 1\n`, { mode: 0o755 });
  const r = runSetup(ctx, 1);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /could not read sshd's configuration/);
  assert.ok(r.calls.includes('ufw limit 22/tcp comment ssh, rate-limited'));
});
