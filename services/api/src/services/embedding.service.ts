/** Embeddings: one upstream embed call per request (batched), on the embedding model's lane. */
import { UpstreamError } from '../errors';
import type { Config } from '../config';
import type { GenerationService, RunOptions } from './generation.service';
import type { UpstreamPool } from './upstream-pool';

export interface EmbeddingResult {
  model: string;
  embeddings: number[][];
  dimensions: number;
  usage: { prompt_tokens: number; total_ms: number; load_ms: number };
}

export class EmbeddingService {
  constructor(
    private readonly generation: GenerationService,
    private readonly pool: UpstreamPool,
    private readonly config: Config,
  ) {}

  /** What identifies a cached answer: embeddings are deterministic, so every request is cacheable. */
  cacheParts(requestedModel: string | undefined, input: string | string[]): unknown {
    return { model: this.generation.resolveModel(requestedModel, 'embed'), input };
  }

  async embed(input: string | string[], requestedModel: string | undefined, signal: AbortSignal, run: RunOptions = {}): Promise<EmbeddingResult> {
    const admission = await this.generation.admit(requestedModel, 'embed', signal, run.priority);
    const { value: res, upstream } = await this.pool.run(admission, signal, run.hooks ?? {}, async (member) =>
      member.client.embed(
        { model: admission.model, input, keep_alive: this.config.ollama.keepAlive, options: { num_ctx: this.config.models.numCtx } },
        await this.generation.timeoutsFor(admission.model, signal, member),
      ),
    );
    const expected = Array.isArray(input) ? input.length : 1;
    if (!Array.isArray(res.embeddings) || res.embeddings.length !== expected) {
      const who = this.pool.member(upstream)?.local ? 'Ollama' : `The upstream '${upstream}'`;
      throw new UpstreamError(`${who} returned ${res.embeddings?.length ?? 0} embeddings for ${expected} input(s)`);
    }
    return {
      model: admission.model,
      embeddings: res.embeddings,
      dimensions: res.embeddings[0]?.length ?? 0,
      usage: {
        prompt_tokens: res.prompt_eval_count ?? 0,
        total_ms: Math.round((res.total_duration ?? 0) / 1e6),
        load_ms: Math.round((res.load_duration ?? 0) / 1e6),
      },
    };
  }
}
