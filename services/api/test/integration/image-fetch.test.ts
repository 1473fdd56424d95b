/**
 * The SSRF guard end to end with loopback only: a local image server on 127.0.0.1, a resolver
 * injected for made-up names, and a classifier that lets loopback through only where a test says
 * so. Private, link-local and public addresses are never connected to: they are refused first.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createImageFetcher, type Resolver } from '../../src/clients/image-fetcher';
import { classifyAddress } from '../../src/clients/net-guard';

const PNG = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');

describe('image fetcher SSRF guard', () => {
  let server: http.Server;
  let port: number;
  const hits: string[] = [];
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      hits.push(req.url ?? '');
      if (req.url === '/cat.png') {
        res.writeHead(200, { 'content-type': 'image/png' }).end(PNG);
      } else if (req.url === '/to-private') {
        res.writeHead(302, { location: 'http://10.0.0.1/secret.png' }).end();
      } else if (req.url === '/to-nas') {
        res.writeHead(301, { location: 'http://nas.home.test/admin.png' }).end();
      } else if (req.url === '/to-cat') {
        res.writeHead(307, { location: '/cat.png' }).end();
      } else if (req.url === '/page') {
        res.writeHead(200, { 'content-type': 'text/html' }).end('<html></html>');
      } else if (req.url === '/big.png') {
        res.writeHead(200, { 'content-type': 'image/png' }).end(Buffer.alloc(5000));
      } else if (req.url === '/slow.png') {
        res.writeHead(200, { 'content-type': 'image/png' }); // never ends
        res.write(PNG);
      } else {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => {
    server.closeAllConnections();
    server.close();
  });
  beforeEach(() => {
    hits.length = 0;
  });

  const names: Record<string, string[]> = {
    'images.test': ['127.0.0.1'],
    'nas.home.test': ['192.168.1.10'],
    'metadata.test': ['169.254.169.254'],
    'mixed.test': ['93.184.216.34', '10.0.0.7'],
  };
  const resolverCalls: string[] = [];
  const resolve: Resolver = async (host) => {
    resolverCalls.push(host);
    const list = names[host];
    if (!list) throw Object.assign(new Error('ENOTFOUND'), { code: 'ENOTFOUND' });
    return list.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
  /** The production classifier, except that this test's own loopback server counts as public. */
  const classify = (address: string) => (address === '127.0.0.1' ? { allowed: true as const } : classifyAddress(address));
  const fetcher = (o: Partial<{ maxBytes: number; timeoutMs: number }> = {}) =>
    createImageFetcher({ timeoutMs: o.timeoutMs ?? 2000, maxBytes: o.maxBytes ?? 1_000_000, maxRedirects: 3, resolve, classify });

  test('When the URL is loopback, then the production guard refuses it and nothing is requested', async () => {
    const prod = createImageFetcher({ timeoutMs: 2000, maxBytes: 1_000_000, maxRedirects: 3 });
    for (const url of [`http://127.0.0.1:${port}/cat.png`, `http://[::1]:${port}/cat.png`, `http://localhost:${port}/cat.png`]) {
      await expect(prod.fetch(url)).rejects.toMatchObject({ code: 'URL_NOT_ALLOWED', status: 400 });
    }
    expect(hits).toEqual([]);
  });

  test.each([
    ['a home-network name', 'http://nas.home.test/x.png'],
    ['the cloud metadata address by name', 'http://metadata.test/latest/meta-data'],
    ['a name with one private answer among public ones', 'http://mixed.test/x.png'],
    ['a private IP literal', 'http://192.168.1.1/x.png'],
    ['a link-local IP literal', 'http://169.254.169.254/x.png'],
  ])('When the URL points at %s, then 400 URL_NOT_ALLOWED before any connection', async (_n, url) => {
    await expect(fetcher().fetch(url)).rejects.toMatchObject({ code: 'URL_NOT_ALLOWED' });
    expect(hits).toEqual([]);
  });

  test('When the host is allowed, then the image comes back over the pinned address', async () => {
    const img = await fetcher().fetch(`http://images.test:${port}/cat.png`);
    expect(img.contentType).toBe('image/png');
    expect(img.data.equals(PNG)).toBe(true);
    expect(hits).toEqual(['/cat.png']);
  });

  test('When an allowed host redirects to a private address, then the redirect is refused', async () => {
    await expect(fetcher().fetch(`http://images.test:${port}/to-private`)).rejects.toMatchObject({
      code: 'URL_NOT_ALLOWED',
      message: expect.stringContaining('10.0.0.1'),
    });
    await expect(fetcher().fetch(`http://images.test:${port}/to-nas`)).rejects.toMatchObject({
      code: 'URL_NOT_ALLOWED',
      message: expect.stringContaining('192.168.1.10'),
    });
    expect(hits).toEqual(['/to-private', '/to-nas']);
  });

  test('When an allowed host redirects within itself, then the redirect is followed', async () => {
    const img = await fetcher().fetch(`http://images.test:${port}/to-cat`);
    expect(img.finalUrl).toBe(`http://images.test:${port}/cat.png`);
  });

  test('When the answer is not an image, too large, missing or too slow, then a clear error each', async () => {
    await expect(fetcher().fetch(`http://images.test:${port}/page`)).rejects.toMatchObject({ code: 'UNSUPPORTED_MEDIA_TYPE', status: 415 });
    await expect(fetcher({ maxBytes: 1000 }).fetch(`http://images.test:${port}/big.png`)).rejects.toMatchObject({ code: 'IMAGE_TOO_LARGE', status: 413 });
    await expect(fetcher().fetch(`http://images.test:${port}/nope.png`)).rejects.toMatchObject({ code: 'IMAGE_FETCH_FAILED', status: 422 });
    await expect(fetcher({ timeoutMs: 300 }).fetch(`http://images.test:${port}/slow.png`)).rejects.toMatchObject({
      code: 'IMAGE_FETCH_FAILED',
      message: expect.stringContaining('within'),
    });
    await expect(fetcher().fetch('http://unknown.test/x.png')).rejects.toMatchObject({ code: 'IMAGE_FETCH_FAILED' });
  });

  test('When the URL has another scheme or credentials, then it is refused', async () => {
    await expect(fetcher().fetch('file:///etc/passwd')).rejects.toMatchObject({ code: 'URL_NOT_ALLOWED' });
    await expect(fetcher().fetch(`http://user:pw@images.test:${port}/cat.png`)).rejects.toMatchObject({ code: 'URL_NOT_ALLOWED' });
    expect(hits).toEqual([]);
  });
});
