/**
 * Requests Node's HTTP parser refuses before Express sees them (a Content-Length together with
 * Transfer-Encoding, a malformed request line or header, headers too large): answered with the
 * API's JSON error body instead of Node's bare `400 Bad Request` and close.
 */
import { randomUUID } from 'node:crypto';
import { STATUS_CODES, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { AppError } from './errors';
import type { Logger } from './logger';
import { errorBody } from './middleware/error-handler';

interface ClientError extends Error {
  code?: string;
}

function refusal(err: ClientError): AppError {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return new AppError('HEADERS_TOO_LARGE', 431, 'The request headers are too large');
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new AppError('REQUEST_TIMEOUT', 408, 'The request took too long to arrive');
    case 'HPE_UNEXPECTED_CONTENT_LENGTH':
    case 'HPE_INVALID_TRANSFER_ENCODING':
      return new AppError('BAD_REQUEST', 400, 'The request has both Content-Length and Transfer-Encoding, or an invalid Transfer-Encoding', {
        hint: 'Send one of them: this is how requests are smuggled.',
      });
    default:
      return new AppError('BAD_REQUEST', 400, 'The request is not valid HTTP/1.1');
  }
}

/** Installs the 'clientError' handler on `server`. */
export function answerClientErrors(server: Server, logger: Logger): void {
  server.on('clientError', (err: ClientError, socket: Duplex) => {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const appErr = refusal(err);
    const requestId = randomUUID();
    logger.warn('bad request refused by the HTTP parser', { code: err.code, status: appErr.status, requestId });
    const body = JSON.stringify(errorBody(appErr, requestId));
    socket.end(
      `HTTP/1.1 ${appErr.status} ${STATUS_CODES[appErr.status] ?? 'Bad Request'}\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nX-Request-Id: ${requestId}\r\nConnection: close\r\n\r\n${body}`,
    );
  });
}
