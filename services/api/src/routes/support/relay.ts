/** The inference answers of the standard client surfaces (/ollama, /openai/v1), streamed or collected. */
import type { Response } from 'express';
import type { Admission } from '../../services/generation.service';
import type { Slot } from '../../services/gpu-queue';
import type { PassthroughService, UpstreamCall } from '../../services/passthrough.service';
import { readText } from '../../wire/lines';
import { lastObjectWithUsage, type CollectedStream } from '../../wire/ndjson';
import { pump, type Pumped } from './streams';

/**
 * The body of an admitted, started stream: waits for the GPU slot inside it, pipes Ollama's answer
 * through, logs its usage; an upstream error status is handed to `onUpstreamError` in the
 * surface's own framing.
 */
export async function relay(
  res: Response,
  svc: PassthroughService,
  admission: Admission,
  call: UpstreamCall,
  signal: AbortSignal,
  onSlot: (slot: Slot) => void,
  progress: Pumped,
  onUpstreamError: (text: string, status: number) => void,
): Promise<void> {
  const up = await svc.inference(admission, call, signal, onSlot);
  if (up.status >= 400) {
    const text = await readText(up.body);
    res.locals.log = { ...res.locals.log, upstreamStatus: up.status };
    onUpstreamError(text, up.status);
    return;
  }
  await pump(up.body, res, progress);
  res.locals.log = { ...res.locals.log, ...svc.account(admission.model, lastObjectWithUsage(progress.tail)) };
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
