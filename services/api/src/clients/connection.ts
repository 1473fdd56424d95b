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
import axios, { type AxiosError, type AxiosInstance, type AxiosRequestConfig, type AxiosResponse } from 'axios';
import axiosRetry, { exponentialDelay } from 'axios-retry';

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

/** First TCP keep-alive probe after this long idle (the agent's keepAliveMsecs). */
const KEEPALIVE_MS = 10_000;

/** Agent options; `lookup` is passed on to net.connect for every new socket. */
function agentOptions(connectTimeoutMs: number): http.AgentOptions {
  return { keepAlive: true, maxSockets: 64, keepAliveMsecs: KEEPALIVE_MS, timeout: IDLE_SOCKET_MS, lookup: createLookup(connectTimeoutMs) };
}

/**
 * TCP keep-alive is switched on once per socket. Node's agent sets it again each time it hands a
 * pooled socket out, and axios on every request (with its own delay): two setsockopt system calls
 * per request that change nothing while the socket lives (`make bench`: about 40 µs a request).
 */
function keepAliveOnce(socket: Duplex & { setKeepAlive?: (enable?: boolean, delay?: number) => unknown }): void {
  if (typeof socket.setKeepAlive !== 'function') return;
  socket.setKeepAlive(true, KEEPALIVE_MS);
  socket.setKeepAlive = () => socket;
}

/**
 * The agent's sockets get the connect timeout (an agent creates each socket through
 * createConnection) and their TCP keep-alive once.
 */
function withBoundedConnect<T extends http.Agent>(agent: T, connectTimeoutMs: number): T {
  const create = agent.createConnection.bind(agent);
  agent.createConnection = (options: http.ClientRequestArgs, cb?: (err: Error | null, socket: Duplex) => void) => {
    const socket = create(options, cb);
    if (!socket) return socket;
    keepAliveOnce(socket);
    return withConnectTimeout(socket, connectTimeoutMs);
  };
  return agent;
}

export function createAgents(connectTimeoutMs: number): { httpAgent: http.Agent; httpsAgent: https.Agent } {
  return {
    httpAgent: withBoundedConnect(new http.Agent(agentOptions(connectTimeoutMs)), connectTimeoutMs),
    httpsAgent: withBoundedConnect(new https.Agent(agentOptions(connectTimeoutMs)), connectTimeoutMs),
  };
}

export interface UpstreamHttpOptions {
  baseUrl: string;
  /** Timeout for the small JSON calls; streamed calls pass their own. */
  requestTimeoutMs: number;
  connectTimeoutMs?: number;
  retries: number;
  /** Sent on every request (the OpenAI upstream's Bearer key). */
  headers?: Record<string, string>;
  /** Which failures axios-retry sends again (exponential backoff with jitter, timeout reset each time). */
  retryCondition: (err: AxiosError) => boolean;
}

/**
 * The axios instance of one upstream client, on the bounded agents above. Any status is an answer
 * (the client maps it); no proxy from the environment; no redirects: 0 makes axios use node's http
 * directly instead of follow-redirects (about a tenth of the API's CPU per request in a profile,
 * `make bench`). We never send an Origin: Ollama's CORS layer answers 403 to unknown ones.
 */
export function createUpstreamHttp(opts: UpstreamHttpOptions): AxiosInstance {
  const { httpAgent, httpsAgent } = createAgents(opts.connectTimeoutMs ?? 2_000);
  const http_ = axios.create({
    baseURL: opts.baseUrl,
    timeout: opts.requestTimeoutMs,
    httpAgent,
    httpsAgent,
    validateStatus: () => true,
    maxContentLength: Infinity,
    maxBodyLength: Infinity,
    headers: { 'User-Agent': 'ai-local-core-api', ...opts.headers },
    proxy: false,
    maxRedirects: 0,
  });
  axiosRetry(http_, {
    retries: opts.retries,
    shouldResetTimeout: true,
    retryDelay: (count, err) => exponentialDelay(count, err, 100),
    retryCondition: opts.retryCondition,
  });
  return http_;
}

/**
 * Failures to reach the upstream at all: its name does not resolve, nothing listens, the connect
 * timed out. Never retried: the upstream is down (a stopped container has no name and no port), and
 * callers must learn it at once to fall back (the pool: to the next upstream; Waldus: to its next
 * provider). Retries are for a connection that broke, not for one that never came up.
 */
const CONNECT_FAILURES = new Set(['ECONNREFUSED', 'ECONNECTTIMEOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

export function isConnectFailure(err: AxiosError): boolean {
  return err.code !== undefined && CONNECT_FAILURES.has(err.code);
}

/**
 * Axios request options that call `onConnected` once the request's socket is connected (at once
 * for a pooled keep-alive socket). Axios builds the request through `transport`; this one is
 * node's own http/https with a look at the socket.
 */
export function connectedHook(onConnected: (() => void) | undefined): Pick<AxiosRequestConfig, 'transport'> {
  if (!onConnected) return {};
  let called = false;
  const fire = () => {
    if (called) return;
    called = true;
    onConnected();
  };
  return {
    transport: {
      request(options: http.RequestOptions, cb: (res: http.IncomingMessage) => void): http.ClientRequest {
        const req = (options.protocol === 'https:' ? https : http).request(options, cb);
        req.once('socket', (socket: Duplex & { connecting?: boolean }) => {
          if (socket.connecting) socket.once('connect', fire);
          else fire();
        });
        return req;
      },
    },
  };
}

/** A request whose body comes back as the text it was (the client parses it, or maps the error in it). */
export function requestText(http_: AxiosInstance, config: AxiosRequestConfig): Promise<AxiosResponse<string>> {
  return http_.request<string>({ ...config, responseType: 'text', transformResponse: (d: string) => d });
}
