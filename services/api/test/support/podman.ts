/**
 * A real Docker-compatible engine for tests: podman's Docker API service on a unix socket of its
 * own, and an "ollama" stand-in container carrying the compose labels.
 *
 * Needs root and these Debian packages (.ci/run installs them):
 *   podman runc netavark aardvark-dns iptables busybox-static
 * (iptables: netavark publishes ports with it; podman only suggests it; crun cannot set rlimits in
 * some sandboxes, so podman is pointed at runc with default ulimits cleared.)
 * Without them, describeWithPodman() skips the suite with one line saying what is missing (off CI,
 * by scripts/test-skip.sh); under CI=true the suite runs and fails with the list instead.
 *
 * The stand-in is a tiny local image (a static busybox, imported, no registry) that, started,
 * waits `startDelayS` and then serves `GET /api/version` and `GET /api/ps` with busybox httpd on
 * container port 11434, published on 127.0.0.1 only. It exits at once on SIGTERM, so a restart
 * is quick, and the "until Ollama answers again" wait after a restart ends for real.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  accessSync,
  constants,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readSync,
  closeSync,
  rmSync,
  symlinkSync,
  copyFileSync,
  writeFileSync,
  unlinkSync,
} from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const APT_PACKAGES = ['podman', 'runc', 'netavark', 'aardvark-dns', 'iptables', 'busybox-static'];
const INSTALL = `apt-get install -y ${APT_PACKAGES.join(' ')}`;
export const STANDIN_IMAGE = 'localhost/ai-local-core-test/busybox:1';
const CONTAINERS_CONF = '/etc/containers/containers.conf';
/** crun cannot set rlimits in this sandbox; runc can, once default ulimits are cleared. */
const CONTAINERS_CONF_TEXT = '[containers]\ndefault_ulimits = []\n[engine]\nruntime = "runc"\n';
/** Containers made by these helpers carry it, with the pid of the jest worker that made them. */
export const TEST_LABEL = 'ai-local-core.test';

function which(cmd: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(':').filter(Boolean)) {
    const p = path.join(dir, cmd);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return null;
}

/** Runs podman; rejects with its stderr (minus podman's CNI noise) on a non-zero exit. */
export function podman(args: string[], opts: { input?: Buffer | NodeJS.ReadableStream; timeoutMs?: number } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile('podman', args, { timeout: opts.timeoutMs ?? 60_000, maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) {
        const text = String(stderr)
          .split('\n')
          .filter((l) => l && !/CNI config|level=warning/.test(l))
          .join('\n');
        reject(new Error(`podman ${args.join(' ')} failed: ${text || err.message}`));
        return;
      }
      resolve(String(stdout).trim());
    });
    if (opts.input && child.stdin) {
      if (Buffer.isBuffer(opts.input)) child.stdin.end(opts.input);
      else opts.input.pipe(child.stdin);
    }
  });
}

/** The pieces podman needs that are not installed. */
function missingPieces(): string[] {
  const missing: string[] = [];
  if (!which('podman')) missing.push('podman');
  if (!which('runc') && !existsSync('/usr/sbin/runc')) missing.push('runc');
  if (!which('netavark') && !existsSync('/usr/lib/podman/netavark') && !existsSync('/usr/libexec/podman/netavark')) missing.push('netavark');
  if (!which('iptables') && !existsSync('/usr/sbin/iptables')) missing.push('iptables');
  if (!findStaticBusybox()) missing.push('a statically linked busybox (busybox-static)');
  return missing;
}

/** Throws when podman or the pieces it needs are not installed, or when not root. */
export function requirePodman(): void {
  const missing = missingPieces();
  if (missing.length) {
    throw new Error(
      `The admin Docker tests need a real Docker-compatible engine (podman's API service), but ${missing.join(', ')} ${missing.length > 1 ? 'are' : 'is'} missing.\n` +
        `Install them (as root, Debian 12): apt-get update && ${INSTALL}`,
    );
  }
  if (process.getuid?.() !== 0) throw new Error('The admin Docker tests run podman as root (rootful networking for -p 127.0.0.1:...): run them as root.');
}

/**
 * `describe` when podman can run here. Otherwise scripts/test-skip.sh decides: off CI the suite is
 * skipped with one line naming what is missing; under CI=true it runs, and requirePodman() fails it.
 */
export function describeWithPodman(name: string, fn: () => void): void {
  const missing = missingPieces();
  const reasons = missing.length ? [`${missing.join(', ')} not installed`] : [];
  if (process.getuid?.() !== 0) reasons.push(`not root (uid ${process.getuid?.()})`);
  if (!reasons.length) return describe(name, fn);
  const apiDir = path.resolve(__dirname, '..', '..');
  const testPath = expect.getState().testPath;
  const suite = testPath ? `services/api/${path.relative(apiDir, testPath)}` : name;
  const skip = spawnSync(
    path.resolve(apiDir, '..', '..', 'scripts', 'test-skip.sh'),
    [
      suite,
      `needs a real engine (podman's Docker API, as root): ${reasons.join('; ')}`,
      `apt-get install ${APT_PACKAGES.join(' ')}, then as root: cd services/api && npx jest ${path.basename(suite)}`,
    ],
    { stdio: 'inherit' },
  );
  if (skip.status === 0) describe.skip(name, fn);
  else describe(name, fn);
}

/** PT_INTERP in the ELF program headers = dynamically linked (useless in an empty image). */
function isStaticElf(file: string): boolean {
  const fd = openSync(file, 'r');
  try {
    const h = Buffer.alloc(64);
    readSync(fd, h, 0, 64, 0);
    if (h.readUInt32BE(0) !== 0x7f454c46 || h[4] !== 2) return false; // ELF, 64-bit
    const phoff = Number(h.readBigUInt64LE(32));
    const phentsize = h.readUInt16LE(54);
    const phnum = h.readUInt16LE(56);
    const ph = Buffer.alloc(phentsize * phnum);
    readSync(fd, ph, 0, ph.length, phoff);
    for (let i = 0; i < phnum; i++) if (ph.readUInt32LE(i * phentsize) === 3) return false;
    return true;
  } finally {
    closeSync(fd);
  }
}

function findStaticBusybox(): string | null {
  for (const p of ['/bin/busybox', '/usr/bin/busybox', '/usr/lib/initramfs-tools/bin/busybox']) {
    try {
      if (existsSync(p) && isStaticElf(p)) return p;
    } catch {
      /* unreadable: next */
    }
  }
  return null;
}

/** Writes /etc/containers/containers.conf when absent (an existing one is left alone). */
export function ensureContainersConf(): void {
  if (existsSync(CONTAINERS_CONF)) return;
  mkdirSync(path.dirname(CONTAINERS_CONF), { recursive: true });
  writeFileSync(CONTAINERS_CONF, CONTAINERS_CONF_TEXT);
}

/** Imports the busybox image (a root filesystem with /bin/busybox and a few applet links) if missing. */
export async function ensureStandinImage(): Promise<string> {
  const present = await podman(['image', 'exists', STANDIN_IMAGE]).then(
    () => true,
    () => false,
  );
  if (present) return STANDIN_IMAGE;
  const busybox = findStaticBusybox();
  if (!busybox) throw new Error(`No static busybox: ${INSTALL}`);
  const root = mkdtempSync(path.join(os.tmpdir(), 'alc-busybox-'));
  try {
    mkdirSync(path.join(root, 'bin'));
    copyFileSync(busybox, path.join(root, 'bin', 'busybox'));
    for (const applet of ['sh', 'sleep', 'httpd', 'wget', 'mkdir', 'cat', 'echo']) symlinkSync('busybox', path.join(root, 'bin', applet));
    const tar = spawn('tar', ['-C', root, '-c', '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
    await podman(['import', '-', STANDIN_IMAGE], { input: tar.stdout });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  return STANDIN_IMAGE;
}

/** GET /_ping on a unix socket: resolves true when the engine answers 200. */
function pingSocket(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ socketPath, path: '/_ping', timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
  });
}

export interface PodmanService {
  socketPath: string;
  /** `unix:///tmp/...sock`, for DOCKER_HOST. */
  dockerHost: string;
  stop(): Promise<void>;
}

/**
 * Everything the Docker tests need, idempotent: checks the packages, writes containers.conf,
 * imports the image, and starts `podman system service` on a socket of this run only.
 */
export async function startPodmanService(): Promise<PodmanService> {
  requirePodman();
  ensureContainersConf();
  await ensureStandinImage();
  await removeOrphans();
  const socketPath = path.join(os.tmpdir(), `alc-podman-${process.pid}-${Date.now().toString(36)}.sock`);
  const child: ChildProcess = spawn('podman', ['system', 'service', '--time=0', `unix://${socketPath}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => {
    stderr = (stderr + c.toString('utf8')).slice(-4000);
  });
  let exited: number | null | undefined;
  child.on('exit', (code) => {
    exited = code;
  });
  const deadline = Date.now() + 15_000;
  while (!(await pingSocket(socketPath))) {
    if (exited !== undefined) throw new Error(`podman system service exited (${exited}): ${stderr}`);
    if (Date.now() > deadline) {
      child.kill('SIGTERM');
      throw new Error(`podman system service did not answer on ${socketPath} within 15 s: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    socketPath,
    dockerHost: `unix://${socketPath}`,
    stop: async () => {
      if (exited === undefined) {
        const gone = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([gone, new Promise((r) => (timer = setTimeout(r, 5000)))]);
        clearTimeout(timer);
        if (exited === undefined) child.kill('SIGKILL');
      }
      try {
        unlinkSync(socketPath);
      } catch {
        /* podman removed it */
      }
    },
  };
}

/** Removes stand-ins left by test processes that no longer exist (a crashed run). */
async function removeOrphans(): Promise<void> {
  const out = await podman(['ps', '-a', '--filter', `label=${TEST_LABEL}`, '--format', `{{.ID}} {{index .Labels "${TEST_LABEL}.pid"}}`]).catch(() => '');
  const dead = out
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter(([id, pid]) => id && pid && !processAlive(Number(pid)))
    .map(([id]) => id);
  if (dead.length) await podman(['rm', '-f', '-t', '0', ...dead]).catch(() => undefined);
}

function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A loopback port nothing listens on right now. */
export async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as AddressInfo;
  await new Promise((r) => srv.close(r));
  return port;
}

export interface StandIn {
  id: string;
  name: string;
  project: string;
  /** http://127.0.0.1:<port>: OLLAMA_BASE_URL for the API under test. */
  url: string;
  startDelayS: number;
  /** State.StartedAt straight from `podman inspect`. */
  startedAt(): Promise<string>;
  /** Resolves once GET /api/version answers 200. */
  waitUntilAnswering(timeoutMs?: number): Promise<void>;
  remove(): Promise<void>;
}

export interface StandInOptions {
  /** com.docker.compose.project label. */
  project: string;
  /** com.docker.compose.service label (default `ollama`). */
  service?: string;
  /** Seconds between the container start and httpd answering (default 1). */
  startDelayS?: number;
  version?: string;
  /** Body of GET /api/ps. */
  ps?: unknown;
}

const STANDIN_SCRIPT = [
  'trap "exit 0" TERM INT',
  '/bin/busybox mkdir -p /www/api',
  'printf "%s" "$STANDIN_VERSION" > /www/api/version',
  'printf "%s" "$STANDIN_PS" > /www/api/ps',
  'sleep "$STANDIN_DELAY" & wait $!',
  'httpd -f -p 11434 -h /www & wait $!',
].join('; ');

/** Starts an "ollama" stand-in container (compose labels, 127.0.0.1 published port). */
export async function startOllamaStandIn(opts: StandInOptions): Promise<StandIn> {
  const port = await freePort();
  const name = `alc-test-ollama-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const delay = opts.startDelayS ?? 1;
  const id = await podman([
    'run',
    '-d',
    '--name',
    name,
    '--label',
    `com.docker.compose.service=${opts.service ?? 'ollama'}`,
    '--label',
    `com.docker.compose.project=${opts.project}`,
    '--label',
    `${TEST_LABEL}=1`,
    '--label',
    `${TEST_LABEL}.pid=${process.pid}`,
    '-p',
    `127.0.0.1:${port}:11434`,
    '-e',
    `STANDIN_DELAY=${delay}`,
    '-e',
    `STANDIN_VERSION=${JSON.stringify({ version: opts.version ?? '0.0.0-standin' })}`,
    '-e',
    `STANDIN_PS=${JSON.stringify(opts.ps ?? { models: [] })}`,
    STANDIN_IMAGE,
    '/bin/sh',
    '-c',
    STANDIN_SCRIPT,
  ]);
  const url = `http://127.0.0.1:${port}`;
  return {
    id: id.split('\n').pop()!.trim(),
    name,
    project: opts.project,
    url,
    startDelayS: delay,
    startedAt: async () => {
      const [info] = JSON.parse(await podman(['inspect', '--type', 'container', name])) as Array<{ State: { StartedAt: string } }>;
      return info.State.StartedAt;
    },
    waitUntilAnswering: async (timeoutMs = 15_000) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const ok = await fetch(`${url}/api/version`, { signal: AbortSignal.timeout(1000) }).then(
          (r) => r.ok,
          () => false,
        );
        if (ok) return;
        if (Date.now() > deadline) throw new Error(`stand-in ${name} did not answer on ${url} within ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    remove: async () => {
      await podman(['rm', '-f', '-t', '0', name]).catch(() => undefined);
    },
  };
}
