/**
 * How long to wait for Ollama for one model: its MODEL_TIMEOUTS entry (a name without a tag also
 * matches `<name>:latest`) or REQUEST_TIMEOUT_S, for the first chunk plus MODEL_LOAD_TIMEOUT_S
 * when the model may have to be loaded first.
 */
import type { Config } from '../config';
import type { StreamCallOptions } from '../clients/ollama.types';

export function timeoutsFor(o: Config['ollama'], model: string, cold: boolean, signal?: AbortSignal): StreamCallOptions {
  const perModelS = o.modelTimeoutsS[model] ?? o.modelTimeoutsS[model.replace(/:latest$/, '')] ?? o.requestTimeoutS;
  return {
    signal,
    firstChunkTimeoutMs: (perModelS + (cold ? o.loadAllowanceS : 0)) * 1000,
    idleTimeoutMs: perModelS * 1000,
  };
}
