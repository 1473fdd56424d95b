/** Embeddings: one upstream /api/embed call per request (batched), on the embedding model's lane. */
import { UpstreamError } from '../errors';
import type { GenerationService } from './generation.service';
import type { OllamaClient } from '../clients/ollama.types';
import type { Config } from '../config';

export interface EmbeddingResult {
  model: string;
  embeddings: number[][];
  dimensions: number;
  usage: { prompt_tokens: number; total_ms: number; load_ms: number };
}

export class EmbeddingService {
  constructor(
    private readonly generation: GenerationService,
    private readonly ollama: OllamaClient,
    private readonly config: Config,
  ) {}

  /** What identifies a cached answer: embeddings are deterministic, so every request is cacheable. */
  cacheParts(requestedModel: string | undefined, input: string | string[]): unknown {
    return { model: this.generation.resolveModel(requestedModel, 'embed'), input };
  }

  async embed(input: string | string[], requestedModel: string | undefined, signal: AbortSignal): Promise<EmbeddingResult> {
    const admission = await this.generation.admit(requestedModel, 'embed', signal);
    const slot = await admission.ticket.slot;
    try {
      const timeouts = await this.generation.timeoutsFor(admission.model, signal);
      const res = await this.ollama.embed(
        { model: admission.model, input, keep_alive: this.config.ollama.keepAlive, options: { num_ctx: this.config.models.numCtx } },
        timeouts,
      );
      const expected = Array.isArray(input) ? input.length : 1;
      if (!Array.isArray(res.embeddings) || res.embeddings.length !== expected) {
        throw new UpstreamError(`Ollama returned ${res.embeddings?.length ?? 0} embeddings for ${expected} input(s)`);
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
    } finally {
      slot.release();
    }
  }
}
