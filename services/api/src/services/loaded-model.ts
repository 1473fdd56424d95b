/** One view of a model Ollama has loaded (its /api/ps entry), for every route that shows one. */
import type { OllamaRunningModel } from '../clients/ollama.types';

export interface LoadedModel {
  name: string;
  size: number;
  sizeVram: number;
  /** size_vram / size, 0..1, three decimals; null when size is unknown. Below 1: partly on the CPU. */
  vramShare: number | null;
  /** Part of the model runs on the CPU (size_vram < size): slow, and a sign VRAM is short. */
  partlyOnCpu: boolean;
  contextLength: number | null;
  expiresAt: string | null;
}

export function loadedModel(m: OllamaRunningModel): LoadedModel {
  const size = m.size ?? 0;
  const sizeVram = m.size_vram ?? 0;
  return {
    name: m.name,
    size,
    sizeVram,
    vramShare: size > 0 ? Math.round((sizeVram / size) * 1000) / 1000 : null,
    partlyOnCpu: size > 0 && sizeVram < size,
    contextLength: m.context_length ?? null,
    expiresAt: m.expires_at ?? null,
  };
}
