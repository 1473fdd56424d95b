/**
 * Reading Ollama's answers as text: line splitting (NDJSON and SSE are both line framed), a whole
 * body as text, and the message inside an error body.
 */

export const NEWLINE = 0x0a;

/** Splits a byte stream into lines as its chunks arrive; a line may span chunks. */
export class LineSplitter {
  private buffered = '';

  /** The lines this chunk completed (without their newline). */
  push(piece: unknown): string[] {
    this.buffered += Buffer.isBuffer(piece) ? piece.toString('utf8') : String(piece);
    const done: string[] = [];
    let nl: number;
    while ((nl = this.buffered.indexOf('\n')) >= 0) {
      done.push(this.buffered.slice(0, nl));
      this.buffered = this.buffered.slice(nl + 1);
    }
    return done;
  }

  /** What is left after the last newline: the final line of a body that does not end with one. */
  rest(): string {
    const rest = this.buffered;
    this.buffered = '';
    return rest;
  }
}

/**
 * Feeds every line of `body` (the unterminated last one included) to `take` until it returns a
 * verdict; the body is then destroyed (the rest is not needed) and the verdict returned.
 */
export async function scanLines<V>(body: AsyncIterable<unknown> & { destroy(): void }, take: (line: string) => V | undefined): Promise<V | undefined> {
  const lines = new LineSplitter();
  for await (const piece of body) {
    for (const line of lines.push(piece)) {
      const verdict = take(line);
      if (verdict !== undefined) {
        body.destroy();
        return verdict;
      }
    }
  }
  return take(lines.rest());
}

export async function readText(body: AsyncIterable<unknown>): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(String(c)));
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * The message inside an error body: Ollama's `{"error":"..."}` or OpenAI's `{"error":{"message"}}`;
 * any other body as text (at most 500 characters, '' when empty).
 */
export function errorText(body: string): string {
  try {
    const parsed = JSON.parse(body) as { error?: unknown };
    if (typeof parsed.error === 'string') return parsed.error;
    if (parsed.error && typeof parsed.error === 'object' && 'message' in parsed.error) return String(parsed.error.message);
  } catch {
    /* not JSON: use the text */
  }
  return body.trim().slice(0, 500);
}

/** errorText, never empty: an empty body names the status instead. */
export function upstreamErrorText(body: string, status: number): string {
  return errorText(body) || `Ollama answered HTTP ${status}`;
}

/** The frame that ends a started stream with an error: on a fresh line, whatever came before. */
export function errorFrame(framed: string, lastByte: number | undefined, separator: string): string {
  return `${lastByte !== undefined && lastByte !== NEWLINE ? separator : ''}${framed}`;
}
