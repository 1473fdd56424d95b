'use strict';
// scripts/doctor.sh (`make doctor`, and its --quick subset in `make up`) with stand-in commands on
// PATH: docker, docker-compose, nvidia-smi, nvidia-ctk, timedatectl, ss, df, free, uname, id, curl,
// pgrep, ollama. PATH holds only those stand-ins plus a few real basics (bash, sed, awk, ...), so
// nothing of this machine (its docker CLI, its missing systemd) leaks into the result.
// One test per failure the doctor reports, and one run where everything is fine.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { ROOT, run, tmpDir } = require('./lib/helpers');

const BASICS = ['bash', 'sh', 'sed', 'awk', 'grep', 'tr', 'cut', 'stat', 'cat', 'head', 'tail', 'sort',
  'wc', 'date', 'env', 'timeout', 'rm', 'mkdir', 'dirname', 'basename', 'readlink', 'tee', 'ls', 'sleep',
  'mktemp', 'chmod', 'cp', 'mv', 'make', 'tar', 'gzip', 'find', 'touch', 'seq', 'uniq', 'xargs'];
const basicsDir = tmpDir('doctor-basics-');
for (const b of BASICS) {
  const r = run('bash', ['-c', `command -v ${b}`]);
  if (r.status === 0) fs.symlinkSync(r.stdout.trim(), path.join(basicsDir, b));
}

const PW_A = 'Zq4mT9vLx2Rb7NcK8pWd';   // 20 characters
const PW_W = 'Hf3Ks8Lm2Qx9Vb4Nz7Tr';

/** A scratch repo: the doctor plus the files it reads, and a .env. */
function scratch({ env = {}, mode = 0o600, noEnv = false } = {}) {
  const dir = tmpDir('doctor-repo-');
  fs.mkdirSync(path.join(dir, 'scripts'));
  fs.mkdirSync(path.join(dir, 'compose'));
  for (const f of ['scripts/doctor.sh', 'scripts/up.sh', 'scripts/init-env.sh', 'scripts/compose.sh', 'scripts/env.sh',
    'docker-compose.yml', 'compose/dev-cpu.yml', '.env.example', 'Makefile']) {
    fs.copyFileSync(path.join(ROOT, f), path.join(dir, f));
  }
  fs.mkdirSync(path.join(dir, 'data-root'));
  if (!noEnv) {
    const vals = { COMPOSE_PROJECT_NAME: 'alc', HTTP_PORT: '8080', GPU: '1', TUNNEL: '1',
      AUTH_USERS: `admin:${PW_A},waldus:${PW_W}`, ADMIN_USERS: 'admin',
      MODELS: 'qwen2.5:0.5b,all-minilm', DEV_MODELS: 'qwen2.5:0.5b', ...env };
    const text = Object.entries(vals).map(([k, v]) => `${k}=${v}`).join('\n') + '\n';
    fs.writeFileSync(path.join(dir, '.env'), text);
    fs.chmodSync(path.join(dir, '.env'), mode);
  }
  return dir;
}

const q = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`;
/** bash body: print OUT (when given) and exit CODE */
const say = (out, code = 0, err = '') => `${out ? `printf '%s\\n' ${q(out)}; ` : ''}${err ? `printf '%s\\n' ${q(err)} >&2; ` : ''}exit ${code}`;

/** The stand-in `docker`: every engine call the doctor makes, one case each; o overrides. */
function dockerStub(dir, o = {}) {
  const d = {
    version: say('27.5.1'),
    compose: say('2.39.1'),
    psProject: say('c0ffee'),
    psOllama: say('0llama'),
    psTunnel: say('c1oud'),
    ports: say('127.0.0.1:8080->80/tcp'),
    runtimes: say('{"io.containerd.runc.v2":{"path":"runc"},"nvidia":{"path":"nvidia-container-runtime"},"runc":{"path":"runc"}}'),
    rootDir: say(path.join(dir, 'data-root')),
    images: say('5eed'),
    gpuRun: say('GPU 0: NVIDIA GeForce RTX 3060 (UUID: GPU-6d1f2c3a)'),
    ollamaList: say('NAME                ID              SIZE      MODIFIED\nqwen2.5:0.5b        a8b0c5157701    397 MB    2 days ago\nall-minilm:latest   1b226e2802db    45 MB     2 days ago'),
    inspect: say('healthy'),
    tsStatus: say('{\n  "Version": "1.86.2",\n  "BackendState": "Running",\n  "Self": {\n    "HostName": "ai-box", "DNSName": "ai-box.example-tailnet.ts.net."\n  }\n}'),
    ...o,
  };
  return `#!/bin/bash
echo "docker $*" >> "${dir}/calls.log"
a="$*"
case "$a" in
  "version --format {{.Server.Version}}") ${d.version} ;;
  "compose version --short") ${d.compose} ;;
  "ps -q --filter label=com.docker.compose.project="*" --filter label=com.docker.compose.service=ollama") ${d.psOllama} ;;
  "ps -q --filter label=com.docker.compose.project="*" --filter label=com.docker.compose.service="*) ${d.psTunnel} ;;
  "ps -q --filter label=com.docker.compose.project="*) ${d.psProject} ;;
  "ps --filter label=com.docker.compose.project="*" --format {{.Ports}}") ${d.ports} ;;
  "info --format {{json .Runtimes}}") ${d.runtimes} ;;
  "info --format {{.DockerRootDir}}") ${d.rootDir} ;;
  "images -q "*) ${d.images} ;;
  "run --rm --gpus all --entrypoint nvidia-smi "*" -L") ${d.gpuRun} ;;
  "exec 0llama ollama list") ${d.ollamaList} ;;
  "inspect -f "*) ${d.inspect} ;;
  "exec c1oud tailscale status --json") ${d.tsStatus} ;;
  *) echo "docker stand-in: unexpected call: $a" >&2; exit 99 ;;
esac
`;
}

const DF_BIG = 'Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/sda2 960000000 100000000 860000000 11% /';

/** Stand-ins for everything but docker; o overrides (null = the command is absent). */
function stubs(dir, o = {}) {
  const s = {
    docker: dockerStub(dir, o.dockerOpts),
    'docker-compose': `#!/bin/bash\necho "docker-compose $*" >> "${dir}/calls.log"\ncase "$*" in "version --short") echo 1.29.2 ;; *) exit 0 ;; esac`,
    'nvidia-smi': `#!/bin/bash\n${say('NVIDIA GeForce RTX 3060, 570.133.07, 12288 MiB')}`,
    'nvidia-ctk': `#!/bin/bash\n${say('NVIDIA Container Toolkit CLI version 1.17.8')}`,
    timedatectl: `#!/bin/bash\ncase "$*" in "show -p NTPSynchronized --value") echo yes ;; *) exit 1 ;; esac`,
    ss: `#!/bin/bash\n${say('LISTEN 0      4096       127.0.0.1:8080       0.0.0.0:*')}`,
    df: `#!/bin/bash\n${say(DF_BIG)}`,
    free: `#!/bin/bash\n${say('               total        used        free      shared  buff/cache   available\nMem:           15890        3000        9000         100        3890       12500\nSwap:              0           0           0')}`,
    uname: '#!/bin/bash\necho Linux',
    id: '#!/bin/bash\ncase "$*" in -u) echo 1000 ;; -un) echo owner ;; -nG) echo "owner adm docker" ;; *) echo "uid=1000(owner)" ;; esac',
    curl: `#!/bin/bash\necho "curl $*" >> "${dir}/calls.log"\nexit 7`,
    ...o,
  };
  delete s.dockerOpts;
  const bin = path.join(dir, 'stand-ins');
  fs.mkdirSync(bin, { recursive: true });
  for (const [name, body] of Object.entries(s)) {
    if (body !== null) fs.writeFileSync(path.join(bin, name), body.endsWith('\n') ? body : `${body}\n`, { mode: 0o755 });
  }
  return `${bin}:${basicsDir}`;
}

function doctor(dir, { args = [], stub = {}, env = {} } = {}) {
  const PATH = stubs(dir, stub);
  const r = run(path.join(dir, 'scripts', 'doctor.sh'), args, {
    cwd: dir, env: { PATH, HOME: dir, TMPDIR: dir, DOCTOR_TIMEOUT: '5', ...env },
  });
  const lines = r.stdout.split('\n').filter(Boolean);
  const find = (level, check) => lines.filter((l) => l.startsWith(level.padEnd(4)) && l.slice(6).startsWith(check.padEnd(9)));
  return { ...r, lines, find, out: r.stdout + r.stderr };
}

/** Exactly one FAIL line, for CHECK, naming FIX (a regex); exit 1. */
function expectOnlyFail(r, check, text, fix) {
  const fails = r.lines.filter((l) => l.startsWith('FAIL'));
  assert.equal(fails.length, 1, `expected one FAIL (${check}), got:\n${r.out}`);
  assert.ok(fails[0].slice(6).startsWith(check.padEnd(9)), fails[0]);
  assert.match(fails[0], text);
  assert.match(fails[0].split(' -> fix: ')[1] || '', fix, `fix of: ${fails[0]}`);
  assert.equal(r.status, 1, r.out);
}

test('all ok: every check passes on a healthy server (GPU, tunnel, models present)', () => {
  const dir = scratch();
  const r = doctor(dir);
  assert.equal(r.status, 0, r.out);
  const expectOk = { engine: /engine 27\.5\.1 answers/, group: /owner is in the docker group/, compose: /docker compose 2\.39\.1/,
    env: /2 user\(s\).*16\+/, port: /held by this stack \(project alc\)/, gpu: /RTX 3060, 570/, toolkit: /1\.17\.8.*runtime nvidia/,
    disk: /MB free on .*data-root/, ram: /15890 MB/, clock: /synchronized/, tunnel: /cloudflared healthy/,
    models: /all present: qwen2\.5:0\.5b all-minilm/ };
  for (const [check, re] of Object.entries(expectOk)) {
    assert.ok(r.find('ok', check).some((l) => re.test(l)), `${check} ${re}:\n${r.out}`);
  }
  assert.ok(r.find('ok', 'gpu').some((l) => /inside a container: GPU 0: NVIDIA GeForce RTX 3060/.test(l)), r.out);
  assert.deepEqual(r.lines.filter((l) => !l.startsWith('ok  ')), ['doctor: 0 FAIL, 0 warn']);
  // the disk line counts nothing for models already present: 3000 MB of images only
  assert.match(r.find('ok', 'disk')[0], /need about 3000 MB for no missing models/);
});

test('quick subset (make up): docker-compose 1.29 and an engine through DOCKER_HOST pass, with a warning', () => {
  const dir = scratch({ env: { GPU: '0' } });
  const r = doctor(dir, {
    args: ['--quick', 'server'],
    env: { DOCKER_HOST: 'unix:///run/podman/podman.sock' },
    stub: { dockerOpts: { compose: say('', 1, "docker: 'compose' is not a docker command.") },
      id: '#!/bin/bash\ncase "$*" in -u) echo 1000 ;; -un) echo owner ;; -nG) echo owner ;; esac',
      'nvidia-smi': null, 'nvidia-ctk': null, ss: `#!/bin/bash\nexit 0` },
  });
  assert.equal(r.status, 0, r.out);
  assert.match(r.find('ok', 'engine')[0], /answers \(unix:\/\/\/run\/podman\/podman\.sock\)/);
  assert.match(r.find('ok', 'group')[0], /not in the docker group, but the engine answers \(unix:/);
  assert.match(r.find('warn', 'compose')[0], /docker-compose 1\.29\.2 \(Compose v1.*-> fix: sudo apt-get install docker-compose-plugin/);
  assert.ok(!r.lines.some((l) => /^(ok|warn|FAIL) +(gpu|toolkit|disk|ram|clock|models)/.test(l)), 'quick runs no slow checks');
});

test('quick subset: a weak password and a .env readable by others warn, but do not stop make up', () => {
  const dir = scratch({ env: { AUTH_USERS: `admin:${PW_A},waldus:short1` }, mode: 0o644 });
  const r = doctor(dir, { args: ['--quick', 'server'] });
  assert.equal(r.status, 0, r.out);
  assert.match(r.find('warn', 'env').join('\n'), /weak password .*: waldus -> fix: set 16\+ random characters/);
  assert.match(r.find('warn', 'env').join('\n'), /mode 644 .*-> fix: chmod 600 \.env/);
  assert.ok(!r.out.includes('short1') && !r.out.includes(PW_A), 'passwords never printed');
});

test('FAIL engine: no docker CLI at all', () => {
  const r = doctor(scratch(), { args: ['--quick'], stub: { docker: null } });
  expectOnlyFail(r, 'engine', /no docker CLI/, /sudo scripts\/setup-ubuntu\.sh/);
});

test('FAIL engine: permission denied on the socket (user not in the docker group)', () => {
  const r = doctor(scratch(), {
    args: ['--quick'],
    stub: { dockerOpts: { version: say('', 1, 'permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock: Get "http://%2Fvar%2Frun%2Fdocker.sock/v1.47/version": dial unix /var/run/docker.sock: connect: permission denied') },
      id: '#!/bin/bash\ncase "$*" in -u) echo 1000 ;; -un) echo owner ;; -nG) echo owner ;; esac' },
  });
  expectOnlyFail(r, 'engine', /no permission on unix:\/\/\/var\/run\/docker\.sock/, /sudo usermod -aG docker \$USER, then log out and in again/);
  assert.match(r.find('warn', 'group')[0], /owner is not in the docker group -> fix: sudo usermod -aG docker/);
});

test('FAIL engine: DOCKER_HOST points at a missing socket (the docker-compose traceback case)', () => {
  const r = doctor(scratch(), {
    args: ['--quick'], env: { DOCKER_HOST: 'unix:///tmp/gone.sock' },
    stub: { dockerOpts: { version: say('', 1, 'Cannot connect to the Docker daemon at unix:///tmp/gone.sock. Is the docker daemon running?') } },
  });
  expectOnlyFail(r, 'engine', /nothing answers at DOCKER_HOST=unix:\/\/\/tmp\/gone\.sock/, /start that engine, or `unset DOCKER_HOST`/);
});

test('FAIL engine: DOCKER_HOST engine without a docker CLI is asked over curl', () => {
  const dir = scratch();
  const r = doctor(dir, { args: ['--quick'], env: { DOCKER_HOST: 'unix:///tmp/podman.sock' }, stub: { docker: null } });
  expectOnlyFail(r, 'engine', /nothing answers at DOCKER_HOST=unix:\/\/\/tmp\/podman\.sock/, /unset DOCKER_HOST/);
  assert.match(fs.readFileSync(path.join(dir, 'calls.log'), 'utf8'), /curl .*--unix-socket \/tmp\/podman\.sock http:\/\/d\/version/);
  // and when it answers, that counts as an engine
  const ok = doctor(dir, { args: ['--quick'], env: { DOCKER_HOST: 'unix:///tmp/podman.sock' },
    stub: { docker: null, curl: `#!/bin/bash
case "$*" in
  *http://d/version) echo '{"Platform":{"Name":"linux/amd64/debian-12"},"Version":"4.3.1","ApiVersion":"1.41"}' ;;
  *http://d/containers/json*com.docker.compose.project%3Dalc*) echo '[{"Id":"c0ffee","Ports":[{"IP":"127.0.0.1","PrivatePort":80,"PublicPort":8080,"Type":"tcp"}]}]' ;;
  *) exit 22 ;;
esac` } });
  assert.equal(ok.status, 0, ok.out);
  assert.match(ok.find('ok', 'engine')[0], /engine 4\.3\.1 answers \(unix:\/\/\/tmp\/podman\.sock\)/);
  assert.match(ok.find('ok', 'port')[0], /HTTP_PORT 8080 is held by this stack/);
});

test('FAIL engine: the Docker daemon is stopped', () => {
  const r = doctor(scratch(), { args: ['--quick'],
    stub: { dockerOpts: { version: say('', 1, 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?') } } });
  expectOnlyFail(r, 'engine', /the Docker engine does not answer/, /sudo systemctl enable --now docker/);
});

test('FAIL engine (Mac): Docker Desktop is not running', () => {
  const r = doctor(scratch(), { args: ['--quick', 'dev-cpu'],
    stub: { uname: '#!/bin/bash\necho Darwin', dockerOpts: { version: say('', 1, 'Cannot connect to the Docker daemon at unix:///Users/o/.docker/run/docker.sock.') } } });
  expectOnlyFail(r, 'engine', /Docker Desktop does not answer/, /open -a Docker/);
});

test('FAIL compose: neither docker compose nor docker-compose', () => {
  const r = doctor(scratch(), { args: ['--quick'], stub: { 'docker-compose': null, dockerOpts: { compose: say('', 1, "unknown command: docker compose") } } });
  expectOnlyFail(r, 'compose', /neither `docker compose` nor `docker-compose`/, /sudo apt-get install docker-compose-plugin/);
});

test('FAIL env: no .env', () => {
  const r = doctor(scratch({ noEnv: true }), { args: ['--quick'] });
  expectOnlyFail(r, 'env', /\.env missing/, /^make init$/);
});

test('FAIL env: AUTH_USERS empty', () => {
  const r = doctor(scratch({ env: { AUTH_USERS: '' } }), { args: ['--quick'] });
  expectOnlyFail(r, 'env', /AUTH_USERS is empty/, /make init .*AUTH_USERS/);
});

test('FAIL env (full run): weak password; FAIL env: mode 644', () => {
  const weak = doctor(scratch({ env: { AUTH_USERS: `admin:${PW_A},waldus:hunter2` } }));
  expectOnlyFail(weak, 'env', /weak password \(under 16 characters, or none\) for: waldus/, /16\+ random characters/);
  assert.ok(!weak.out.includes('hunter2'), 'the password is not printed');
  const open = doctor(scratch({ mode: 0o644 }));
  expectOnlyFail(open, 'env', /\.env is mode 644/, /^chmod 600 \.env$/);
});

test('FAIL port: HTTP_PORT taken by another program', () => {
  const r = doctor(scratch(), { args: ['--quick'], stub: {
    ss: `#!/bin/bash\n${say('LISTEN 0      511        0.0.0.0:8080       0.0.0.0:*')}`,
    dockerOpts: { ports: say('') } } });
  expectOnlyFail(r, 'port', /HTTP_PORT 8080 is taken by another program \(LISTEN 0 511 0\.0\.0\.0:8080/, /set HTTP_PORT to a free port in \.env/);
});

test('FAIL ollama (Mac, make dev): Ollama.app not running; running but not answering; ok with its version', () => {
  const mac = { uname: '#!/bin/bash\necho Darwin' };
  const r = doctor(scratch(), { args: ['--quick'], stub: { ...mac, pgrep: '#!/bin/bash\nexit 1' } });
  expectOnlyFail(r, 'ollama', /Ollama\.app is not running/, /open -a Ollama/);
  const hung = doctor(scratch(), { args: ['--quick'], stub: { ...mac, pgrep: '#!/bin/bash\necho 4242' } });
  expectOnlyFail(hung, 'ollama', /runs but 127\.0\.0\.1:11434 does not answer/, /open -a Ollama/);
  const good = doctor(scratch(), { args: ['--quick'], stub: { ...mac, pgrep: '#!/bin/bash\necho 4242',
    curl: `#!/bin/bash\ncase "$*" in *11434/api/version*) echo '{"version":"0.12.6"}' ;; *) exit 7 ;; esac` } });
  assert.equal(good.status, 0, good.out);
  assert.match(good.find('ok', 'ollama')[0], /Ollama\.app 0\.12\.6 answers on 127\.0\.0\.1:11434$/);
});

test('FAIL gpu: no NVIDIA driver; nvidia-smi failing', () => {
  const none = doctor(scratch(), { stub: { 'nvidia-smi': null } });
  expectOnlyFail(none, 'gpu', /no nvidia-smi/, /sudo ubuntu-drivers install && sudo reboot.*GPU=0/);
  const broken = doctor(scratch(), { stub: { 'nvidia-smi': `#!/bin/bash\n${say('NVIDIA-SMI has failed because it couldn\'t communicate with the NVIDIA driver.', 9)}` } });
  expectOnlyFail(broken, 'gpu', /nvidia-smi fails: NVIDIA-SMI has failed/, /sudo ubuntu-drivers install/);
  // GPU=0: none of it is checked
  const cpu = doctor(scratch({ env: { GPU: '0' } }), { stub: { 'nvidia-smi': null, 'nvidia-ctk': null } });
  assert.equal(cpu.status, 0, cpu.out);
  assert.match(cpu.find('ok', 'gpu')[0], /GPU=0: CPU only/);
});

test('FAIL toolkit: missing; installed but not registered with the engine', () => {
  const noRt = { runtimes: say('{"runc":{"path":"runc"}}') };
  const none = doctor(scratch(), { stub: { 'nvidia-ctk': null, dockerOpts: noRt } });
  expectOnlyFail(none, 'toolkit', /NVIDIA Container Toolkit missing/, /sudo scripts\/setup-ubuntu\.sh/);
  const unreg = doctor(scratch(), { stub: { dockerOpts: noRt } });
  expectOnlyFail(unreg, 'toolkit', /nvidia-ctk installed but the engine has no nvidia runtime/, /sudo nvidia-ctk runtime configure --runtime=docker && sudo systemctl restart docker/);
});

test('FAIL gpu: no GPU inside a container; warn when the image is not pulled yet', () => {
  const r = doctor(scratch(), { stub: { dockerOpts: { gpuRun: say('', 125, 'docker: Error response from daemon: could not select device driver "" with capabilities: [[gpu]].') } } });
  expectOnlyFail(r, 'gpu', /no GPU inside a container \(docker: Error response from daemon: could not select device driver/, /nvidia-ctk runtime configure/);
  const notPulled = doctor(scratch(), { stub: { dockerOpts: { images: say('') } } });
  assert.equal(notPulled.status, 0, notPulled.out);
  assert.match(notPulled.find('warn', 'gpu')[0], /not checked \(ollama\/ollama:[0-9.]+ not pulled yet\) -> fix: docker pull ollama\/ollama:/);
});

test('FAIL disk: not enough free space for the missing models (sizes from the table)', () => {
  const dir = scratch({ env: { MODELS: 'llama3.1:8b,nomic-embed-text,qwen2.5:0.5b' } });
  const r = doctor(dir, { stub: { df: `#!/bin/bash\n${say('Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/sda2 960000000 955000000 5120000 99% /')}` } });
  // missing: llama3.1:8b 4900 + nomic-embed-text 274, + 3000 for images = 8174 MB; 5000 MB free
  expectOnlyFail(r, 'disk', /5000 MB free on .*data-root \(Docker's data root\), need about 8174 MB for llama3\.1:8b nomic-embed-text \+ images/, /docker system prune/);
  assert.match(r.find('warn', 'models')[0], /not present: llama3\.1:8b nomic-embed-text -> fix: make up/);
  // a model the table does not know: a warning that names it
  const unk = doctor(scratch({ env: { MODELS: 'qwen2.5:0.5b,some/custom:13b' } }));
  assert.match(unk.find('warn', 'disk')[0], /size unknown: some\/custom:13b/);
});

test('FAIL ram: under 4 GB; warn under 16 GB on the server', () => {
  const mem = (mb) => `#!/bin/bash\n${say(`               total        used        free\nMem:           ${mb}        1000        1000`)}`;
  expectOnlyFail(doctor(scratch(), { stub: { free: mem(3800) } }), 'ram', /3800 MB of RAM: too little/, /8 GB or more/);
  const w = doctor(scratch(), { stub: { free: mem(7900) } });
  assert.equal(w.status, 0, w.out);
  assert.match(w.find('warn', 'ram')[0], /7900 MB of RAM.*16 GB.*-> fix: lower OLLAMA_MEM_LIMIT/);
});

test('warn clock: not synchronized', () => {
  const r = doctor(scratch(), { stub: { timedatectl: '#!/bin/bash\necho no' } });
  assert.equal(r.status, 0, r.out);
  assert.match(r.find('warn', 'clock')[0], /not synchronized .* -> fix: sudo timedatectl set-ntp true/);
});

test('FAIL tunnel: cloudflared unhealthy; not running; tailscale logged out', () => {
  const bad = doctor(scratch(), { stub: { dockerOpts: { inspect: say('unhealthy') } } });
  expectOnlyFail(bad, 'tunnel', /cloudflared is unhealthy/, /TUNNEL_TOKEN/);
  const gone = doctor(scratch(), { stub: { dockerOpts: { psTunnel: say('') } } });
  expectOnlyFail(gone, 'tunnel', /cloudflared is not running although TUNNEL=1/, /make up/);
  const ts = doctor(scratch({ env: { TUNNEL: 'tailscale' } }), { stub: { dockerOpts: {
    inspect: say('unhealthy'), tsStatus: say('{"BackendState": "NeedsLogin", "Self": {"DNSName": ""}}') } } });
  expectOnlyFail(ts, 'tunnel', /tailscale is unhealthy\/NeedsLogin/, /TS_AUTHKEY/);
  const tsOk = doctor(scratch({ env: { TUNNEL: 'tailscale' } }));
  assert.equal(tsOk.status, 0, tsOk.out);
  assert.match(tsOk.find('ok', 'tunnel')[0], /tailscale healthy, Running, https:\/\/ai-box\.example-tailnet\.ts\.net$/);
  // stack not running: not checked, and the models neither
  const down = doctor(scratch(), { stub: { dockerOpts: { psProject: say(''), psOllama: say(''), psTunnel: say(''), ports: say('') }, ss: '#!/bin/bash\nexit 0' } });
  assert.equal(down.status, 0, down.out);
  assert.match(down.find('ok', 'tunnel')[0], /stack not running, not checked/);
  assert.match(down.find('ok', 'port')[0], /HTTP_PORT 8080 is free/);
});

test('make up stops at the doctor with its message, before compose is called', () => {
  const dir = scratch();
  const PATH = stubs(dir, { dockerOpts: { version: say('', 1, 'Cannot connect to the Docker daemon at unix:///tmp/gone.sock. Is the docker daemon running?') } });
  const r = run('make', ['-s', 'up'], { cwd: dir, env: { PATH, HOME: dir, TMPDIR: dir, DOCKER_HOST: 'unix:///tmp/gone.sock', DOCTOR_TIMEOUT: '5' } });
  assert.notEqual(r.status, 0);
  assert.match(r.stdout, /^FAIL  engine    nothing answers at DOCKER_HOST=unix:\/\/\/tmp\/gone\.sock/m);
  assert.match(r.stderr, /up: stopped before compose/);
  assert.doesNotMatch(r.stdout + r.stderr, /Traceback|DockerException/);
  const calls = fs.readFileSync(path.join(dir, 'calls.log'), 'utf8');
  assert.doesNotMatch(calls, /docker-compose (?!version)|docker compose (?!version)/, calls);
});

test('FAIL engine / compose (Mac): no docker CLI, no compose -> Docker Desktop', () => {
  const mac = { uname: '#!/bin/bash\necho Darwin', pgrep: '#!/bin/bash\necho 1',
    curl: `#!/bin/bash\ncase "$*" in *11434/api/version*) echo '{"version":"0.12.6"}' ;; *) exit 7 ;; esac` };
  const r = doctor(scratch(), { args: ['--quick', 'dev'], stub: { ...mac, docker: null, 'docker-compose': null } });
  const fails = r.lines.filter((l) => l.startsWith('FAIL'));
  assert.equal(fails.length, 2, r.out);
  assert.match(fails[0], /^FAIL  engine    no docker CLI -> fix: install Docker Desktop/);
  assert.match(fails[1], /^FAIL  compose   neither .* -> fix: install Docker Desktop \(it ships Compose v2\)/);
  assert.equal(r.status, 1);
});

test('every FAIL the doctor can print is exercised by a test in this file', () => {
  // the check names of the fail/advise calls in doctor.sh, each must appear in a FAIL expectation here
  const src = fs.readFileSync(path.join(ROOT, 'scripts', 'doctor.sh'), 'utf8');
  const checks = new Set([...src.matchAll(/^\s*(?:.*(?:then|else|;|&&|\|\|)\s+)?(?:fail|advise) (\w+) "/gm)].map((m) => m[1]));
  const me = fs.readFileSync(__filename, 'utf8');
  assert.ok(checks.size >= 10, [...checks].join(' '));
  for (const c of checks) assert.ok(me.includes(`'${c}', /`) || me.includes(`FAIL  ${c}`), `no test for FAIL ${c}`);
});

test('a slow engine gets a second, longer try; one that never answers FAILs with the time waited', () => {
  const dir = scratch();
  // first `docker version` hangs past DOCTOR_TIMEOUT (1 s), the second answers
  const slow = `[ -f "${dir}/tried" ] || { touch "${dir}/tried"; sleep 5; }; echo 27.5.1`;
  const r = doctor(dir, { args: ['--quick'], env: { DOCTOR_TIMEOUT: '1' }, stub: { dockerOpts: { version: slow } } });
  assert.equal(r.status, 0, r.out);
  assert.match(r.find('ok', 'engine')[0], /engine 27\.5\.1 answers/);
  const hung = doctor(scratch(), { args: ['--quick'], env: { DOCTOR_TIMEOUT: '1' }, stub: { dockerOpts: { version: 'sleep 10' } } });
  expectOnlyFail(hung, 'engine', /the Docker engine does not answer \(no answer within 3 s\)/, /systemctl enable --now docker/);
});
