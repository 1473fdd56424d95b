/**
 * Structured output: an answer guaranteed valid against a JSON Schema (ajv, JSON Schema draft-07).
 * The schema goes to Ollama as `format` AND into the system prompt (models ignore `format` at
 * times); the answer is parsed tolerantly (code fences, prose around the JSON); an invalid answer
 * gets a bounded corrective retry that tells the model what was wrong.
 */
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { InvalidSchemaError, SchemaValidationFailedError } from '../errors';
import type { OllamaMessage } from '../clients/ollama.types';
import { collect, type GenerationService, type RunOptions, type Usage } from './generation.service';
import type { PoolMember } from './upstream-pool';

export interface StructuredInput {
  prompt?: string;
  messages?: OllamaMessage[];
  system?: string;
  schema: Record<string, unknown>;
  model?: string;
  options?: Record<string, unknown>;
}

export interface StructuredResult {
  data: unknown;
  attempts: number;
  model: string;
  usage: Usage;
}

/** Finds the JSON value in a model's answer: bare, fenced, or wrapped in prose. */
export function extractJson(text: string): { ok: true; value: unknown } | { ok: false; error: string } {
  const candidates: string[] = [];
  const trimmed = text.trim();
  candidates.push(trimmed);
  for (const m of trimmed.matchAll(/```(?:json|JSON)?\s*\n?([\s\S]*?)```/g)) candidates.push(m[1].trim());
  const firstObj = trimmed.search(/[{[]/);
  if (firstObj >= 0) {
    const open = trimmed[firstObj];
    const close = open === '{' ? '}' : ']';
    const last = trimmed.lastIndexOf(close);
    if (last > firstObj) candidates.push(trimmed.slice(firstObj, last + 1));
  }
  let lastError = 'the answer contains no JSON value';
  for (const c of candidates) {
    if (!c) continue;
    try {
      return { ok: true, value: JSON.parse(c) };
    } catch (err) {
      lastError = `the answer is not valid JSON (${(err as Error).message})`;
    }
  }
  return { ok: false, error: lastError };
}

function describe(errors: ErrorObject[] | null | undefined): string[] {
  return (errors ?? []).map(
    (e) =>
      `${e.instancePath || '(root)'} ${e.message ?? 'is invalid'}${e.params && 'additionalProperty' in e.params ? `: '${String(e.params.additionalProperty)}'` : ''}`,
  );
}

const CACHE_MAX = 100;

export class StructuredService {
  private readonly ajv: Ajv;
  private readonly compiled = new Map<string, ValidateFunction>();

  constructor(
    private readonly generation: GenerationService,
    private readonly maxAttempts: number,
  ) {
    this.ajv = new Ajv({ allErrors: true, strict: false });
    addFormats(this.ajv);
  }

  /** Compiles (and caches) a schema; an invalid schema is the caller's 400. */
  compile(schema: Record<string, unknown>): ValidateFunction {
    const key = JSON.stringify(schema);
    const hit = this.compiled.get(key);
    if (hit) return hit;
    let fn: ValidateFunction;
    try {
      fn = this.ajv.compile(schema);
    } catch (err) {
      throw new InvalidSchemaError([(err as Error).message]);
    }
    if (this.compiled.size >= CACHE_MAX) this.compiled.delete(this.compiled.keys().next().value as string);
    this.compiled.set(key, fn);
    return fn;
  }

  async run(input: StructuredInput, signal: AbortSignal): Promise<StructuredResult> {
    return (await this.prepare(input, signal))();
  }

  /**
   * Everything that can refuse the request up front (bad schema, unknown model, full queue);
   * returns the function that waits for the GPU and produces the validated answer. The attempts
   * share one slot at one upstream; only a failure before the first attempt's first byte moves
   * the request to another upstream.
   */
  async prepare(input: StructuredInput, signal: AbortSignal, run: RunOptions = {}): Promise<() => Promise<StructuredResult>> {
    const validate = this.compile(input.schema);
    const admission = await this.generation.admit(input.model, 'chat', signal, run.priority);
    return async () => {
      const { value } = await this.generation.runOn(admission, signal, run.hooks ?? {}, (member, onAccepted, commit) =>
        this.attempts(member, admission.model, input, validate, signal, onAccepted, commit),
      );
      return value;
    };
  }

  /** `commit` once the first answer's first event came: later failures stay with this upstream. */
  private async attempts(
    member: PoolMember,
    model: string,
    input: StructuredInput,
    validate: ValidateFunction,
    signal: AbortSignal,
    onAccepted?: () => void,
    commit?: () => void,
  ): Promise<StructuredResult> {
    const schemaText = JSON.stringify(input.schema);
    const instruction =
      `${input.system ? `${input.system}\n\n` : ''}Answer with a single JSON value that is valid against this JSON Schema, ` +
      `and nothing else (no prose, no code fences):\n${schemaText}`;
    const messages: OllamaMessage[] = [
      { role: 'system', content: instruction },
      ...(input.messages ?? [{ role: 'user' as const, content: input.prompt ?? '' }]),
    ];
    const total: Usage = {
      prompt_tokens: 0,
      completion_tokens: 0,
      total_tokens: 0,
      total_ms: 0,
      load_ms: 0,
      prompt_eval_ms: 0,
      eval_ms: 0,
      tokens_per_second: null,
    };
    let problems: string[] = [];
    for (let attempt = 1; attempt <= this.maxAttempts; attempt++) {
      const answer = await collect(
        tapFirst(
          this.generation.upstream(member, model, { kind: 'chat', input: { messages, format: input.schema, options: input.options } }, signal, onAccepted),
          commit,
        ),
      );
      addUsage(total, answer.usage);
      const parsed = extractJson(answer.text);
      if (parsed.ok && validate(parsed.value)) return { data: parsed.value, attempts: attempt, model, usage: total };
      problems = parsed.ok ? describe(validate.errors) : [parsed.error];
      messages.push(
        { role: 'assistant', content: answer.text },
        {
          role: 'user',
          content: `That answer is not valid: ${problems.join('; ')}. Reply again with only the corrected JSON value, valid against the schema.`,
        },
      );
    }
    throw new SchemaValidationFailedError(this.maxAttempts, problems, { details: { model } });
  }
}

function addUsage(total: Usage, u: Usage): void {
  total.prompt_tokens += u.prompt_tokens;
  total.completion_tokens += u.completion_tokens;
  total.total_tokens += u.total_tokens;
  total.total_ms += u.total_ms;
  total.load_ms += u.load_ms;
  total.prompt_eval_ms += u.prompt_eval_ms;
  total.eval_ms += u.eval_ms;
  total.tokens_per_second = total.eval_ms ? Math.round((total.completion_tokens / total.eval_ms) * 1000 * 10) / 10 : null;
}

/** Calls `onFirst` when the first event passes. */
async function* tapFirst<T>(events: AsyncIterable<T>, onFirst?: () => void): AsyncGenerator<T> {
  let first = true;
  for await (const ev of events) {
    if (first) {
      first = false;
      onFirst?.();
    }
    yield ev;
  }
}
