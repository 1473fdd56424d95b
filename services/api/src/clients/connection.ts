/**
 * The sockets to Ollama: one keep-alive pool, and two bounds a stock agent lacks.
 * - Name lookups go through c-ares (dns.Resolver: asynchronous, with its own timeout) instead of
 *   getaddrinfo, which runs on libuv's 4-thread pool and cannot be cancelled: when a container
 *   engine's DNS drops queries (seen on podman right after the ollama container restarts), hung
 *   getaddrinfo calls fill that pool and every later lookup waits behind them for tens of seconds.
 *   Names DNS does not know (/etc/hosts, mDNS) fall back to the system resolver.
 * - A connect timeout (lookup + TCP connect): an unreachable Ollama is reported in seconds as
 *   ECONNECTTIMEOUT (mapped to 503 OLLAMA_UNAVAILABLE), not after the generation timeout.
 * Idle pooled sockets are dropped after IDLE_SOCKET_MS, so none outlives an Ollama restart for long.
 */
import dns from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { Duplex } from 'node:stream';

const IDLE_SOCKET_MS = 5_000;

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => void;

export function createLookup(timeoutMs: number) {
  const resolver = new dns.Resolver({ timeout: Math.max(200, Math.floor(timeoutMs / 2)), tries: 2 });
  return (hostname: string, options: dns.LookupOptions, callback: LookupCallback): void => {
    if (net.isIP(hostname) || hostname === 'localhost' || options.family === 6) {
      dns.lookup(hostname, { ...options, all: Boolean(options.all) } as dns.LookupAllOptions, callback as never);
      return;
    }
    resolver.resolve4(hostname, (err, addresses) => {
      if (err || addresses.length === 0) {
        // Not in DNS (a hosts-file or mDNS name): the system resolver knows those. A DNS that did
        // not answer (ETIMEOUT) is not retried through getaddrinfo, which would hang the same way.
        if (err && err.code === dns.TIMEOUT) {
          callback(Object.assign(new Error(`DNS lookup of ${hostname} timed out`), { code: 'EAI_AGAIN' }), '', 4);
          return;
        }
        dns.lookup(hostname, { ...options, all: Boolean(options.all) } as dns.LookupAllOptions, callback as never);
        return;
      }
      if (options.all)
        callback(
          null,
          addresses.map((address) => ({ address, family: 4 })),
        );
      else callback(null, addresses[0], 4);
    });
  };
}

export function withConnectTimeout<T extends Duplex>(socket: T, timeoutMs: number): T {
  const timer = setTimeout(() => {
    socket.destroy(Object.assign(new Error(`could not connect within ${timeoutMs} ms`), { code: 'ECONNECTTIMEOUT' }));
  }, timeoutMs);
  timer.unref();
  const clear = () => clearTimeout(timer);
  socket.once('connect', clear);
  socket.once('secureConnect', clear);
  socket.once('close', clear);
  return socket;
}

/** Agent options; `lookup` is passed on to net.connect for every new socket. */
function agentOptions(connectTimeoutMs: number): http.AgentOptions {
  return { keepAlive: true, maxSockets: 64, keepAliveMsecs: 10_000, timeout: IDLE_SOCKET_MS, lookup: createLookup(connectTimeoutMs) };
}

/** The agent's sockets get the connect timeout (an agent creates each socket through createConnection). */
function withBoundedConnect<T extends http.Agent>(agent: T, connectTimeoutMs: number): T {
  const create = agent.createConnection.bind(agent);
  agent.createConnection = (options: http.ClientRequestArgs, cb?: (err: Error | null, socket: Duplex) => void) => {
    const socket = create(options, cb);
    return socket && withConnectTimeout(socket, connectTimeoutMs);
  };
  return agent;
}

export function createAgents(connectTimeoutMs: number): { httpAgent: http.Agent; httpsAgent: https.Agent } {
  return {
    httpAgent: withBoundedConnect(new http.Agent(agentOptions(connectTimeoutMs)), connectTimeoutMs),
    httpsAgent: withBoundedConnect(new https.Agent(agentOptions(connectTimeoutMs)), connectTimeoutMs),
  };
}
