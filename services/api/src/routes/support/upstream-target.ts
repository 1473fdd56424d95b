/**
 * `?upstream=<name>` on model management (pull, delete, load, unload, the /ollama management
 * routes): which Ollama it acts on. Default: the first `ollama` upstream. Only an Ollama can pull or
 * load models: an `openai` upstream, or a pool without any Ollama, is a 400 that says so.
 */
import type { Request } from 'express';
import type { OllamaClient } from '../../clients/ollama.types';
import { AppError, NotFoundError } from '../../errors';
import type { UpstreamPool } from '../../services/upstream-pool';

/** The client to act on, or undefined for the default Ollama (the services' own client). */
export function modelTarget(pool: UpstreamPool, req: Request): OllamaClient | undefined {
  const asked = typeof req.query.upstream === 'string' && req.query.upstream !== '' ? req.query.upstream : undefined;
  const member = pool.ollamaMember(asked);
  if (asked !== undefined && !member) {
    throw new NotFoundError(`No upstream is named '${asked}' (there are: ${pool.members.map((m) => m.name).join(', ')})`);
  }
  if (!member || member.kind !== 'ollama') {
    const which = member ? `'${member.name}' is an ${member.kind} upstream` : 'no upstream is an Ollama';
    throw new AppError('UPSTREAM_KIND_UNSUPPORTED', 400, `Model management needs an ollama upstream: ${which}`, {
      hint: 'Pull, delete, load and unload work on ollama upstreams only (?upstream=<name>); an OpenAI-compatible server manages its own models.',
    });
  }
  // An ollama member's client is an OllamaClient (composition.ts builds it by kind).
  return member.local ? undefined : (member.client as OllamaClient);
}
