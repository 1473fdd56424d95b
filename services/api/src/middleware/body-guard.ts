/**
 * Checks on a JSON body's raw bytes, run by express.json's `verify` before JSON.parse: a body that
 * nests deeper than MAX_JSON_DEPTH (a 10,000-deep array would overflow the stack further on, in
 * validation or forwarding) or is not valid UTF-8 (it would reach Ollama as U+FFFD) is refused 400.
 * One pass over the bytes (strings skipped with native indexOf), no allocation: on a 25 MB body it
 * costs a few percent of the JSON.parse that follows (test/bench/body-guard.bench.ts).
 */
import { isUtf8 } from 'node:buffer';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ValidationError } from '../errors';

/** Deepest nesting of objects/arrays a body may have. Real requests (tool and format schemas) stay far below. */
export const MAX_JSON_DEPTH = 128;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJECT = 0x7b;
const OPEN_ARRAY = 0x5b;
const CLOSE_OBJECT = 0x7d;
const CLOSE_ARRAY = 0x5d;

/**
 * The deepest nesting of `{`/`[` outside strings, stopping as soon as it passes `limit`. Works on
 * UTF-8 bytes: the bytes of a multi-byte character never equal an ASCII one.
 */
export function jsonDepthExceeds(buf: Buffer, limit: number): boolean {
  let depth = 0;
  for (let i = 0; i < buf.length; i++) {
    const b = buf[i];
    if (b === QUOTE) {
      i = stringEnd(buf, i);
    } else if (b === OPEN_OBJECT || b === OPEN_ARRAY) {
      if (++depth > limit) return true;
    } else if (b === CLOSE_OBJECT || b === CLOSE_ARRAY) {
      depth--;
    }
  }
  return false;
}

/** Index of the quote closing the string opened at `open` (buffer end if none): memchr-fast jumps. */
function stringEnd(buf: Buffer, open: number): number {
  let at = open;
  for (;;) {
    at = buf.indexOf(QUOTE, at + 1);
    if (at < 0) return buf.length;
    let slashes = 0;
    while (buf[at - 1 - slashes] === BACKSLASH) slashes++;
    if (slashes % 2 === 0) return at;
  }
}

/** express.json's `verify`: throws a 400 ValidationError (the error handler sends it as JSON). */
export function verifyJsonBody(_req: IncomingMessage, _res: ServerResponse, buf: Buffer, encoding: string): void {
  // body-parser only accepts utf-* charsets; the byte checks below hold for UTF-8, the default.
  let bytes = buf;
  if (/^utf-?8$/i.test(encoding)) {
    if (!isUtf8(buf)) {
      throw new ValidationError('The request body is not valid UTF-8', [{ field: 'body', message: 'contains bytes that are not valid UTF-8' }]);
    }
  } else {
    let text: string;
    try {
      text = new TextDecoder(encoding, { fatal: true }).decode(buf);
    } catch {
      throw new ValidationError(`The request body is not valid ${encoding}`, [{ field: 'body', message: `is not valid ${encoding}` }]);
    }
    bytes = Buffer.from(text, 'utf8');
  }
  if (jsonDepthExceeds(bytes, MAX_JSON_DEPTH)) {
    throw new ValidationError(`The request body nests deeper than ${MAX_JSON_DEPTH} levels`, [
      { field: 'body', message: `objects and arrays may nest at most ${MAX_JSON_DEPTH} levels deep` },
    ]);
  }
}
