/** joi schemas shared by the routes: generation options, messages, images, passthrough bodies. */
import Joi from 'joi';
import type { FieldProblem } from '../../errors';

const runnerOption = Joi.any()
  .forbidden()
  .messages({ 'any.unknown': '{{#label}} is fixed by the server (a per-request runner option makes Ollama reload the model)' });

export const optionsSchema = Joi.object({
  temperature: Joi.number().min(0).max(2),
  top_p: Joi.number().min(0).max(1),
  top_k: Joi.number().integer().min(0),
  min_p: Joi.number().min(0).max(1),
  typical_p: Joi.number().min(0).max(1),
  seed: Joi.number().integer(),
  num_predict: Joi.number().integer().min(-2).max(131072),
  num_keep: Joi.number().integer().min(-1),
  stop: Joi.alternatives(Joi.string(), Joi.array().items(Joi.string()).max(16)),
  repeat_penalty: Joi.number().min(0),
  repeat_last_n: Joi.number().integer().min(-1),
  presence_penalty: Joi.number(),
  frequency_penalty: Joi.number(),
  num_ctx: runnerOption,
  num_batch: runnerOption,
  num_gpu: runnerOption,
  main_gpu: runnerOption,
  use_mmap: runnerOption,
  num_thread: runnerOption,
}).unknown(false);

/** Raw base64 image, or a data URL (its prefix is stripped by `stripDataUrl`). */
export const imageSchema = Joi.string()
  .pattern(/^(data:image\/[a-z0-9.+-]+;base64,)?[A-Za-z0-9+/\r\n]+={0,2}$/, 'base64 image')
  .messages({ 'string.pattern.name': '{{#label}} must be a base64-encoded image' });

export function stripDataUrl(image: string): string {
  const comma = image.startsWith('data:') ? image.indexOf(',') : -1;
  return comma >= 0 ? image.slice(comma + 1) : image;
}

export const modelName = Joi.string()
  .trim()
  .min(1)
  .max(200)
  .pattern(/^[A-Za-z0-9][A-Za-z0-9._:/-]*$/, 'model name');

export const formatSchema = Joi.alternatives(Joi.string().valid('json'), Joi.object().unknown(true));

export const messageSchema = Joi.object({
  role: Joi.string().valid('system', 'user', 'assistant', 'tool').required(),
  content: Joi.string().allow('').max(1_000_000).required(),
  images: Joi.array().items(imageSchema).max(8),
  tool_calls: Joi.array().items(Joi.object().unknown(true)),
  tool_name: Joi.string(),
  thinking: Joi.string().allow(''),
});

/** `?force=true` bypasses a cache. */
export const forceQuery = Joi.object({ force: Joi.boolean().default(false) });

// --- bodies passed on to Ollama (/ollama, /openai/v1): only what the gateway itself reads --------

/** A model name the gateway reads (absent, null and '' mean "not given"). */
const givenName = Joi.string().allow('', null).messages({ 'string.base': 'must be a string' });
/** Checked only when the fields before it named nothing (the first one given is the target). */
const fallbackName = (...before: string[]) =>
  before.reduceRight<Joi.Schema>((otherwise, key) => Joi.when(key, { is: Joi.string().min(1).required(), then: Joi.any(), otherwise }), givenName);

const jsonObject = (keys: Record<string, Joi.Schema>) =>
  Joi.object(keys).unknown(true).required().messages({ 'object.base': 'must be a JSON object', 'any.required': 'must be a JSON object' });

/** generate, chat, embed, embeddings, chat/completions, completions. */
export const inferenceBody = jsonObject({ model: givenName });
/** show: the model is `model` or (legacy) `name`. */
export const showBody = jsonObject({ model: givenName, name: fallbackName('model') });
/** copy, delete: the target (for the audit log) is `model`, `name` or `source`. */
export const manageBody = jsonObject({ model: givenName, name: fallbackName('model'), source: fallbackName('model', 'name') });
/** pull, push, create: as manage, and never from an insecure registry. */
export const progressBody = jsonObject({
  insecure: Joi.any().invalid(true).messages({ 'any.invalid': 'must be false' }),
  model: givenName,
  name: fallbackName('model'),
  source: fallbackName('model', 'name'),
});

const passthroughMessages: Record<string, string> = {
  body: 'The request body must be a JSON object',
  'body.insecure': 'insecure registries are not allowed through the API',
};

/** validate() options for passthrough bodies: one problem, said as the surfaces have always said it. */
export const passthrough = {
  passthrough: { message: (p: FieldProblem) => passthroughMessages[p.field] ?? `"${p.field.replace(/^body\./, '')}" ${p.message}` },
};
