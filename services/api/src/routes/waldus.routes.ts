/** Waldus compatibility: POST /v1/complete, /v1/images/describe, /v1/translate (sync or async). */
import { Router } from 'express';
import Joi from 'joi';
import { refuseWhenModelFull as full, runOptions, type EarlyRefusal } from '../middleware/lanes';
import { validate } from '../middleware/validate';
import type { JobStore } from '../services/job-store';
import type { CompleteInput, DescribeInput, TranslateInput, WaldusService } from '../services/waldus.service';
import { respond } from './support/respond';
import { imageSchema, modelName, stripDataUrl } from './support/schemas';

/** Exactly what ollama_complete.py took on its command line. */
const completeBody = Joi.object({
  user: Joi.string().min(1).max(1_000_000).required(),
  system: Joi.string().allow('').max(100_000),
  model: modelName,
  temperature: Joi.number().min(0).max(2),
  max_tokens: Joi.number().integer().min(1).max(131072),
  async: Joi.boolean().default(false),
}).required();

/** A language, by name or code ("German", "de"). */
const languageName = Joi.string()
  .trim()
  .min(2)
  .max(40)
  .pattern(/^[\p{L} -]+$/u, 'language name or code');

const describeBody = Joi.object({
  image_url: Joi.string()
    .uri({ scheme: ['http', 'https'] })
    .max(4096),
  image_base64: imageSchema,
  max_length: Joi.number().integer().min(5).max(500).default(50),
  language: languageName,
  model: modelName,
  async: Joi.boolean().default(false),
})
  .xor('image_url', 'image_base64')
  .required();

const translateBody = Joi.object({
  text: Joi.string().min(1).max(100_000).required(),
  target: languageName.required(),
  source: languageName,
  model: modelName,
  async: Joi.boolean().default(false),
}).required();

export function waldusRoutes(waldus: WaldusService, early: EarlyRefusal, jobs: JobStore): Router {
  const router = Router();

  router.post('/complete', full(early, 'chat'), validate({ body: completeBody }), async (req, res) => {
    await respond(req, res, jobs, 'complete', (signal, onRunning) => waldus.prepareComplete(req.body as CompleteInput, signal, runOptions(res, { onRunning })));
  });

  router.post('/images/describe', full(early, 'vision'), validate({ body: describeBody }), async (req, res) => {
    const b = req.body as DescribeInput;
    const body = { ...b, image_base64: b.image_base64 ? stripDataUrl(b.image_base64) : undefined };
    await respond(req, res, jobs, 'describe', (signal, onRunning) => waldus.prepareDescribe(body, signal, runOptions(res, { onRunning })));
  });

  router.post('/translate', full(early, 'chat'), validate({ body: translateBody }), async (req, res) => {
    await respond(req, res, jobs, 'translate', (signal, onRunning) =>
      waldus.prepareTranslate(req.body as TranslateInput, signal, runOptions(res, { onRunning })),
    );
  });

  return router;
}
