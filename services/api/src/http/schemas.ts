/** joi schemas shared by the routes: generation options, messages, images. */
import Joi from 'joi';

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

export const modelName = Joi.string().trim().min(1).max(200).pattern(/^[A-Za-z0-9][A-Za-z0-9._:/-]*$/, 'model name');

export const formatSchema = Joi.alternatives(Joi.string().valid('json'), Joi.object().unknown(true));

export const messageSchema = Joi.object({
  role: Joi.string().valid('system', 'user', 'assistant', 'tool').required(),
  content: Joi.string().allow('').max(1_000_000).required(),
  images: Joi.array().items(imageSchema).max(8),
  tool_calls: Joi.array().items(Joi.object().unknown(true)),
  tool_name: Joi.string(),
  thinking: Joi.string().allow(''),
});
