/** The inference answers of the standard client surfaces (/ollama, /openai/v1), streamed or collected. */
import type { Response } from 'express';
import { runOptions } from '../../middleware/lanes';
import type { Admission } from '../../services/generation.service';
import type { PassthroughService, UpstreamCall } from '../../services/passthrough.service';
import { readText } from '../../wire/lines';
import { lastObjectWithUsage, type CollectedStream } from '../../wire/ndjson';
import { pump, runLazyStream, sendUpstream } from './streams';

/** An admitted inference call of a standard surface and what it needs on its way to Ollama. */
export interface Relayed {
  svc: PassthroughService;
  admission: Admission;
  call: UpstreamCall;
  signal: AbortSignal;
}

/** How a surface ends its stream: an upstream error status, or a failure of ours. */
export interface StreamEnds {
  upstreamError: (text: string, status: number) => void;
  failed: (err: unknown, lastByte: number | undefined) => void;
}

/**
 * Streams an admitted call: it waits for the slot, and the headers go out once an upstream took
 * the request (runLazyStream); it pipes the answer through and logs its usage. An error status
 * before the headers is passed on as it is; after them (Ollama's headers go out on connect), an
 * upstream error status or a failure ends the stream in the surface's own framing.
 */
export function relayStream(res: Response, contentType: string, r: Relayed, ends: StreamEnds): Promise<void> {
  return runLazyStream(
    res,
    contentType,
    r.signal,
    async (start, progress) => {
      const up = await r.svc.inference(r.admission, r.call, r.signal, runOptions(res, { onStart: start }).hooks);
      if (up.status >= 400 && !res.headersSent) {
        await sendUpstream(res, up);
        return;
      }
      if (up.status >= 400) {
        const text = await readText(up.body);
        res.locals.log = { ...res.locals.log, upstreamStatus: up.status };
        ends.upstreamError(text, up.status);
        return;
      }
      await pump(up.body, res, progress);
      res.locals.log = { ...res.locals.log, ...r.svc.account(r.admission.model, lastObjectWithUsage(progress.tail)) };
    },
    ends.failed,
  );
}

/**
 * Answers a non-streamed call whose upstream stream was collected here: the collected body with
 * its usage logged, or the error the stream ended with (500, in the surface's `error` field).
 */
export function sendCollected(res: Response, svc: PassthroughService, model: string, r: CollectedStream): void {
  if (!r.ok) {
    res.locals.log = { ...res.locals.log, upstreamError: true };
    res.status(500).json({ error: r.error });
    return;
  }
  res.locals.log = { ...res.locals.log, ...svc.account(model, r.value) };
  res.json(r.value);
}
