/** POST /v1/structured and /v1/embeddings. */
import { Router } from 'express';
import Joi from 'joi';
import { clientGone } from '../middleware/request-context';
import { refuseWhenModelFull, runOptions, type EarlyRefusal } from '../middleware/lanes';
import { validate } from '../middleware/validate';
import type { EmbeddingService } from '../services/embedding.service';
import type { JobStore } from '../services/job-store';
import type { Metrics } from '../services/metrics';
import type { ResponseCache } from '../services/response-cache';
import type { StructuredInput, StructuredService } from '../services/structured.service';
import { cachedJson } from './support/cached-json';
import { respond } from './support/respond';
import { messageSchema, modelName, optionsSchema } from './support/schemas';

const structuredBody = Joi.object({
  prompt: Joi.string().min(1).max(1_000_000),
  messages: Joi.array().items(messageSchema).min(1).max(500),
  schema: Joi.object().unknown(true).required(),
  model: modelName,
  system: Joi.string().allow('').max(100_000),
  options: optionsSchema,
  async: Joi.boolean().default(false),
})
  .xor('prompt', 'messages')
  .required();

const embeddingsBody = Joi.object({
  input: Joi.alternatives(Joi.string().min(1).max(1_000_000), Joi.array().items(Joi.string().min(1).max(1_000_000)).min(1).max(512)).required(),
  model: modelName,
}).required();

export function inferenceRoutes(
  structured: StructuredService,
  embeddings: EmbeddingService,
  early: EarlyRefusal,
  jobs: JobStore,
  cache: ResponseCache,
  metrics?: Metrics,
): Router {
  const router = Router();
  // Embeddings are not refused early: the cache may answer them without a queue place.
  const structuredFull = refuseWhenModelFull(early, 'chat');

  router.post('/structured', structuredFull, validate({ body: structuredBody }), async (req, res) => {
    await respond(req, res, jobs, 'structured', async (signal, onRunning) => {
      const produce = await structured.prepare(req.body as StructuredInput, signal, runOptions(res, { onRunning }));
      return async () => {
        const r = await produce();
        res.locals.log = { ...res.locals.log, model: r.model, attempts: r.attempts, tokens: r.usage.completion_tokens };
        return { data: r.data, attempts: r.attempts, model: r.model, usage: r.usage };
      };
    });
  });

  router.post('/embeddings', validate({ body: embeddingsBody }), async (req, res) => {
    const b = req.body as { input: string | string[]; model?: string };
    const parts = embeddings.cacheParts(b.model, b.input);
    await cachedJson(req, res, { cache, metrics, kind: 'embeddings', parts }, async () => {
      const r = await embeddings.embed(b.input, b.model, clientGone(res), runOptions(res));
      res.locals.log = { ...res.locals.log, model: r.model, inputs: r.embeddings.length };
      return r;
    });
  });

  return router;
}
