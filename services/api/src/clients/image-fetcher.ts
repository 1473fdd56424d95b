/**
 * Fetches an image from a caller-given URL without letting the URL reach into the home network
 * (SSRF): every hop's host is resolved once, every address it resolves to is classified, and the
 * connection is pinned to the checked address (no second DNS answer can swap in 192.168.x).
 * Redirects are followed by hand so each hop is checked again. Size cap, overall timeout,
 * image content type. The only file that makes outbound HTTP requests to arbitrary hosts.
 */
import dns from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { AppError, ClientClosedError } from '../errors';
import { classifyAddress, type AddressVerdict } from './net-guard';

export interface ResolvedAddress {
  address: string;
  family: number;
}

export type Resolver = (hostname: string) => Promise<ResolvedAddress[]>;

export interface ImageFetcherOptions {
  timeoutMs: number;
  maxBytes: number;
  maxRedirects: number;
  /** Injected in tests; defaults to the system resolver. */
  resolve?: Resolver;
  /** Injected in tests; defaults to classifyAddress (public unicast only). */
  classify?: (address: string) => AddressVerdict;
}

export interface FetchedImage {
  data: Buffer;
  contentType: string;
  finalUrl: string;
}

export interface ImageFetcher {
  fetch(url: string, signal?: AbortSignal): Promise<FetchedImage>;
}

const systemResolve: Resolver = async (hostname) => dns.promises.lookup(hostname, { all: true, verbatim: true });

export const urlNotAllowed = (reason: string) =>
  new AppError('URL_NOT_ALLOWED', 400, `The image URL is not allowed: ${reason}`, {
    hint: 'Only public http(s) URLs can be fetched. Send the image as image_base64 instead.',
  });
const fetchFailed = (reason: string, cause?: unknown) =>
  new AppError('IMAGE_FETCH_FAILED', 422, `The image could not be fetched: ${reason}`, { cause, hint: 'Check the URL, or send the image as image_base64.' });

export function createImageFetcher(opts: ImageFetcherOptions): ImageFetcher {
  const resolve = opts.resolve ?? systemResolve;
  const classify = opts.classify ?? classifyAddress;

  async function checkedAddress(url: URL): Promise<ResolvedAddress> {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw urlNotAllowed(`scheme '${url.protocol.replace(':', '')}' (only http and https)`);
    if (url.username || url.password) throw urlNotAllowed('credentials in the URL');
    const host = url.hostname.replace(/^\[|\]$/g, '');
    let addresses: ResolvedAddress[];
    if (isIP(host)) {
      addresses = [{ address: host, family: isIP(host) }];
    } else {
      try {
        addresses = await resolve(host);
      } catch (err) {
        throw fetchFailed(`cannot resolve '${host}'`, err);
      }
      if (!addresses.length) throw fetchFailed(`'${host}' has no address`);
    }
    for (const a of addresses) {
      const verdict = classify(a.address);
      if (!verdict.allowed) throw urlNotAllowed(`'${host}' resolves to ${verdict.reason}`);
    }
    return addresses[0];
  }

  function requestOnce(url: URL, pinned: ResolvedAddress, signal: AbortSignal): Promise<http.IncomingMessage> {
    const mod = url.protocol === 'https:' ? https : http;
    return new Promise((resolvePromise, reject) => {
      const req = mod.request(
        url,
        {
          method: 'GET',
          signal,
          headers: { Accept: 'image/*', 'User-Agent': 'ai-local-core-image-fetch' },
          // Connect to the address we checked, whatever DNS would say now.
          lookup: ((_host: string, o: { all?: boolean }, cb: (...args: unknown[]) => void) =>
            o?.all ? cb(null, [pinned]) : cb(null, pinned.address, pinned.family)) as unknown as typeof dns.lookup,
          agent: false,
        },
        resolvePromise,
      );
      req.on('error', reject);
      req.end();
    });
  }

  async function readCapped(res: http.IncomingMessage): Promise<Buffer> {
    const declared = Number(res.headers['content-length']);
    if (Number.isFinite(declared) && declared > opts.maxBytes) {
      res.destroy();
      throw tooLarge(opts.maxBytes);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res) {
      size += (chunk as Buffer).length;
      if (size > opts.maxBytes) {
        res.destroy();
        throw tooLarge(opts.maxBytes);
      }
      chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks);
  }

  return {
    async fetch(rawUrl, callerSignal) {
      let url: URL;
      try {
        url = new URL(rawUrl);
      } catch {
        throw urlNotAllowed('not a valid URL');
      }
      const controller = new AbortController();
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        controller.abort();
      }, opts.timeoutMs);
      const onCaller = () => controller.abort();
      callerSignal?.addEventListener('abort', onCaller, { once: true });
      try {
        for (let hop = 0; hop <= opts.maxRedirects; hop++) {
          const pinned = await checkedAddress(url);
          let res: http.IncomingMessage;
          try {
            res = await requestOnce(url, pinned, controller.signal);
          } catch (err) {
            throw abortOr(err);
          }
          const status = res.statusCode ?? 0;
          if (status >= 300 && status < 400 && res.headers.location) {
            res.resume();
            url = new URL(res.headers.location, url);
            continue;
          }
          if (status !== 200) {
            res.resume();
            throw fetchFailed(`the server answered ${status}`);
          }
          const contentType = String(res.headers['content-type'] ?? '')
            .split(';')[0]
            .trim()
            .toLowerCase();
          if (!contentType.startsWith('image/')) {
            res.resume();
            throw new AppError('UNSUPPORTED_MEDIA_TYPE', 415, `The URL is not an image (Content-Type '${contentType || 'none'}')`);
          }
          try {
            return { data: await readCapped(res), contentType, finalUrl: url.toString() };
          } catch (err) {
            throw abortOr(err);
          }
        }
        throw fetchFailed(`more than ${opts.maxRedirects} redirects`);
      } finally {
        clearTimeout(timer);
        callerSignal?.removeEventListener('abort', onCaller);
      }

      function abortOr(err: unknown): AppError {
        if (err instanceof AppError) return err;
        if (timedOut) return fetchFailed(`no complete answer within ${Math.round(opts.timeoutMs / 1000)} s`, err);
        if (callerSignal?.aborted) return new ClientClosedError();
        return fetchFailed((err as NodeJS.ErrnoException).code ?? 'connection failed', err);
      }
    },
  };
}

function tooLarge(max: number): AppError {
  return new AppError('IMAGE_TOO_LARGE', 413, `The image is larger than ${Math.round(max / 1024 / 1024)} MB`, {
    hint: 'Resize it first, or raise IMAGE_MAX_BYTES.',
  });
}
