/** POST /v1/generate and /v1/chat: thin — validate, admit, stream or collect. */
import { Router, type Request, type Response } from 'express';
import Joi from 'joi';
import type { OllamaMessage } from '../clients/ollama.types';
import {
  collect,
  deterministic,
  type Admission,
  type ChatInput,
  type GenerateInput,
  type GenerationService,
  type GenRequest,
} from '../services/generation.service';
import { nativeLane } from '../services/passthrough.service';
import { laneOf, rawModel, refuseWhenFull, runOptions, type QueueTarget } from '../middleware/lanes';
import { clientGone } from '../middleware/request-context';
import { validate } from '../middleware/validate';
import type { JobStore } from '../services/job-store';
import type { Metrics } from '../services/metrics';
import type { ResponseCache } from '../services/response-cache';
import { respond } from './support/respond';
import { formatSchema, imageSchema, messageSchema, modelName, optionsSchema, stripDataUrl } from './support/schemas';
import { endWithErrorLine, NDJSON, runLazyStream, writeLine } from './support/streams';

const asyncFlag = Joi.boolean()
  .default(false)
  .when('stream', { is: true, then: Joi.valid(false).messages({ 'any.only': 'async cannot be combined with stream' }) });

const generateBody = Joi.object({
  prompt: Joi.string().min(1).max(1_000_000).required(),
  model: modelName,
  system: Joi.string().allow('').max(100_000),
  images: Joi.array().items(imageSchema).max(8),
  options: optionsSchema,
  format: formatSchema,
  stream: Joi.boolean().default(false),
  async: asyncFlag,
}).required();

const chatBody = Joi.object({
  messages: Joi.array().items(messageSchema).min(1).max(500).required(),
  model: modelName,
  options: optionsSchema,
  format: formatSchema,
  tools: Joi.array().items(Joi.object().unknown(true)).max(64),
  stream: Joi.boolean().default(false),
  async: asyncFlag,
}).required();

/**
 * What a generate/chat body queues for, for the early refusal (its images as on Ollama's own
 * surface: `images`, or `messages[].images`). A deterministic request may be answered from the
 * cache without a queue place: it is not refused early.
 */
function queueTarget(b: Record<string, unknown>, kind: 'generate' | 'chat'): QueueTarget | undefined {
  const model = rawModel(b);
  if (model === null || deterministic(b.options as Parameters<typeof deterministic>[0])) return undefined;
  return { model, kind: nativeLane(kind, b) };
}

/** The bodies as validated (joi applied defaults). */
interface GenerateBody extends GenerateInput {
  model?: string;
  stream: boolean;
}
interface ChatBody extends ChatInput {
  model?: string;
  stream: boolean;
}

export function generationRoutes(generation: GenerationService, jobs: JobStore, cache: ResponseCache, metrics?: Metrics): Router {
  const router = Router();

  const shape = (genReq: GenRequest, text: string) => (genReq.kind === 'generate' ? { response: text } : { message: { role: 'assistant', content: text } });

  /** The whole answer as one JSON body (stream:false callers and async jobs). */
  async function answer(res: Response, admission: Admission, genReq: GenRequest, signal: AbortSignal, onRunning: () => void) {
    const r = await collect(generation.run(admission, genReq, signal, runOptions(res, { onRunning }).hooks));
    res.locals.log = { ...res.locals.log, tokens: r.usage.completion_tokens, doneReason: r.doneReason };
    const model = admission.model;
    const body =
      genReq.kind === 'generate'
        ? { model, response: r.text, ...(r.thinking ? { thinking: r.thinking } : {}) }
        : {
            model,
            message: {
              role: 'assistant',
              content: r.text,
              ...(r.thinking ? { thinking: r.thinking } : {}),
              ...(r.toolCalls.length ? { tool_calls: r.toolCalls } : {}),
            },
          };
    return { ...body, done_reason: r.doneReason, usage: r.usage };
  }

  /**
   * NDJSON: headers once an upstream took the request (before that, "nobody reachable" is a real
   * 503), or after HOLD_HEADERS_MS in the queue (a caller behind Cloudflare must see bytes before 100 s).
   */
  async function stream(req: Request, res: Response, genReq: GenRequest, requestedModel: string | undefined, hasImages: boolean) {
    const signal = clientGone(res);
    const admission = await generation.admit(requestedModel, hasImages ? 'vision' : 'chat', signal, laneOf(res));
    const model = admission.model;
    res.locals.log = { model, queuePosition: admission.ticket.position, stream: true };
    await runLazyStream(
      res,
      NDJSON,
      signal,
      async (start) => {
        for await (const ev of generation.run(admission, genReq, signal, runOptions(res, { onStart: start }).hooks)) {
          if (ev.type === 'delta') {
            const line: Record<string, unknown> = { model, ...shape(genReq, ev.text), done: false };
            if (ev.thinking) line.thinking = ev.thinking;
            if (ev.toolCalls?.length) (line.message as Record<string, unknown>).tool_calls = ev.toolCalls;
            writeLine(res, line);
          } else {
            res.locals.log = { ...res.locals.log, tokens: ev.usage.completion_tokens, doneReason: ev.doneReason };
            writeLine(res, { model, ...shape(genReq, ''), done: true, done_reason: ev.doneReason, usage: ev.usage });
          }
        }
      },
      (err) => endWithErrorLine(res, err, req.id),
    );
  }

  async function serve(req: Request, res: Response, genReq: GenRequest, requestedModel: string | undefined, hasImages: boolean) {
    if ((req.body as { stream: boolean }).stream) return stream(req, res, genReq, requestedModel, hasImages);
    const kind = hasImages ? 'vision' : 'chat';
    const parts = generation.cacheParts(requestedModel, kind, genReq);
    await respond(
      req,
      res,
      jobs,
      genReq.kind,
      async (signal, onRunning) => {
        const admission = await generation.admit(requestedModel, kind, signal, laneOf(res));
        res.locals.log = { model: admission.model, queuePosition: admission.ticket.position, stream: false };
        return () => answer(res, admission, genReq, signal, onRunning);
      },
      { cache, metrics, kind: genReq.kind, parts },
    );
  }

  const generateFull = refuseWhenFull(generation, (b) => queueTarget(b, 'generate'));
  router.post('/generate', generateFull, validate({ body: generateBody }), async (req, res) => {
    const b = req.body as GenerateBody;
    const images = b.images?.map(stripDataUrl);
    await serve(
      req,
      res,
      { kind: 'generate', input: { prompt: b.prompt, system: b.system || undefined, images, options: b.options, format: b.format } },
      b.model,
      Boolean(images?.length),
    );
  });

  const chatFull = refuseWhenFull(generation, (b) => queueTarget(b, 'chat'));
  router.post('/chat', chatFull, validate({ body: chatBody }), async (req, res) => {
    const b = req.body as ChatBody;
    const messages: OllamaMessage[] = b.messages.map((m) => (m.images ? { ...m, images: m.images.map(stripDataUrl) } : m));
    const hasImages = messages.some((m) => m.images?.length);
    await serve(req, res, { kind: 'chat', input: { messages, options: b.options, format: b.format, tools: b.tools } }, b.model, hasImages);
  });

  return router;
}
