/**
 * Docker HEALTHCHECK for the api container: the slim Node image has no curl, so node does it.
 * Exit 0 when GET /health answers 200 within 3 s, 1 otherwise.
 */
import http from 'node:http';

const port = Number(process.env.PORT) || 3000;
const req = http.get({ host: '127.0.0.1', port, path: '/health', timeout: 3000 }, (res) => {
  res.resume();
  process.exit(res.statusCode === 200 ? 0 : 1);
});
req.on('timeout', () => req.destroy(new Error('timeout')));
req.on('error', () => process.exit(1));
