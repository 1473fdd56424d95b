import { Readable, Transform } from 'node:stream';
import type { AxiosInstance, AxiosResponse } from 'axios';
import { AppError, ClientClosedError } from '../errors';
import { connectedHook } from './connection';
import { Deadline } from './deadline';
import { isAbort } from './ollama-errors';
import type { ProxyRequest, ProxyResponse } from './ollama.types';

/** What differs between the upstream kinds: what we accept, our own headers, how failures read. */
export interface ProxyOptions {
  accept: string;
  /** Sent after the caller's (so they win): the OpenAI upstream's Bearer key. */
  headers?: Record<string, string>;
  timeoutError(model: string | undefined, timeoutS: number, cause?: unknown): AppError;
  transportError(err: unknown, model: string | undefined, timeoutS: number): AppError;
  /** Ollama sends no header while it loads: its request counts as accepted once connected. */
  acceptedOnConnect?: boolean;
}

/**
 * An upstream client's raw pass-through, on its axios instance. Only our own headers go out (never
 * the caller's Origin, Host, Authorization or Cookie: Ollama answers 403 with an empty body to
 * unknown origins). The Deadline bounds the wait for the headers, then each gap between two body
 * chunks; leaving the body unread and destroying it aborts the upstream request.
 */
export function createProxy(http_: AxiosInstance, o: ProxyOptions): (r: ProxyRequest) => Promise<ProxyResponse> {
  return async function proxy(r: ProxyRequest): Promise<ProxyResponse> {
    const deadline = new Deadline({ signal: r.signal, firstChunkTimeoutMs: r.firstByteTimeoutMs, idleTimeoutMs: r.idleTimeoutMs });
    const raw = r.body instanceof Readable;
    // identity: the bytes are passed on as they are, without a Content-Encoding of their own.
    const headers: Record<string, string> = { Accept: o.accept, 'Accept-Encoding': 'identity', ...r.headers, ...o.headers };
    if (r.body !== undefined && !raw) headers['Content-Type'] = 'application/json';
    let res: AxiosResponse<Readable>;
    try {
      res = await http_.request<Readable>({
        method: r.method,
        url: r.path,
        data: r.body,
        headers,
        responseType: 'stream',
        decompress: false,
        signal: deadline.controller.signal,
        timeout: 0, // the Deadline bounds the wait instead (a cold load sends no byte for a while)
        // A byte stream cannot be replayed; a JSON body keeps the client's dead-pooled-socket retry.
        ...(raw ? { 'axios-retry': { retries: 0 } } : {}),
        ...(o.acceptedOnConnect ? connectedHook(r.onAccepted) : {}),
      });
    } catch (err) {
      deadline.dispose();
      if (deadline.timedOut) throw o.timeoutError(r.model, Math.round(r.firstByteTimeoutMs / 1000), err);
      if (deadline.callerAborted() || isAbort(err)) throw new ClientClosedError();
      throw o.transportError(err, r.model, Math.round(r.firstByteTimeoutMs / 1000));
    }
    deadline.touch();
    if (!o.acceptedOnConnect && res.status < 400) r.onAccepted?.();

    const src = res.data;
    const tap = new Transform({
      transform(chunk, _enc, cb) {
        deadline.touch();
        cb(null, chunk);
      },
    });
    const idleS = Math.round(r.idleTimeoutMs / 1000);
    let settled = false;
    const settle = (err?: AppError) => {
      if (settled) return;
      settled = true;
      deadline.dispose();
      deadline.controller.signal.removeEventListener('abort', onAbort);
      if (err) {
        deadline.controller.abort();
        tap.destroy(err);
      }
    };
    // Our reason wins over axios's generic "canceled" (which it raises from the same abort event).
    const reason = (err?: unknown): AppError => {
      if (deadline.timedOut) return o.timeoutError(r.model, idleS, err);
      if (deadline.callerAborted() || isAbort(err)) return new ClientClosedError();
      return o.transportError(err, r.model, idleS);
    };
    const onAbort = () => settle(reason());
    deadline.controller.signal.addEventListener('abort', onAbort, { once: true });
    src.on('error', (err) => settle(err instanceof AppError ? err : reason(err)));
    src.on('end', () => settle());
    tap.on('close', () => {
      // The consumer stopped reading (caller gone, or it had what it needed): free the upstream.
      if (!src.readableEnded) {
        settle();
        deadline.controller.abort();
        src.destroy();
      }
    });
    src.pipe(tap);

    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(res.headers ?? {})) {
      if (v !== undefined && v !== null) out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : String(v);
    }
    return { status: res.status, headers: out, body: tap };
  };
}
