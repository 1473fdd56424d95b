import request from 'supertest';
import { createOllamaClient } from '../../src/clients/ollama.client';
import { loadConfig } from '../../src/config';
import { createSilentLogger } from '../../src/logger';
import { ModelCatalog } from '../../src/services/model-catalog';
import { OllamaState } from '../../src/services/ollama-state';
import { WarmKeeper } from '../../src/services/warm-keeper';
import { FakeOllama } from '../fakes/fake-ollama';
import { startHarness } from '../support/harness';

describe('warm GPU', () => {
  test('When the keeper runs and the default model is cold, then /ready says warming until it is loaded with the pinned options', async () => {
    const h = await startHarness({ HEALTH_CACHE_TTL_S: '0' }, { loadDelayMs: 300 });
    try {
      const warm = h.services.warm;
      warm.active = true; // what start() sets, without its timer
      const before = await request(h.app).get('/ready').expect(503);
      expect(before.body).toMatchObject({ status: 'warming', code: 'WARMING', defaultModel: { loaded: false } });
      expect(before.headers['retry-after']).toBe('5');
      await warm.warm();
      expect(h.fake.loadedModels()).toContain('llama3.1:8b');
      const load = h.fake.requests.find((r) => r.path === '/api/generate')?.body;
      expect(load).toMatchObject({ model: 'llama3.1:8b', prompt: '', keep_alive: '24h', options: { num_ctx: 4096 } });
      const after = await request(h.app).get('/ready?force=true').expect(200);
      expect(after.body).toMatchObject({ status: 'ready', defaultModel: { loaded: true } });
    } finally {
      await h.close();
    }
  });

  test('When nobody generates for IDLE_UNLOAD_MIN, then models are unloaded; a request wakes it again', async () => {
    const fake = await FakeOllama.start();
    let now = 0;
    try {
      const config = loadConfig({ OLLAMA_BASE_URL: fake.url, IDLE_UNLOAD_MIN: '30' });
      const ollama = createOllamaClient({ baseUrl: fake.url, requestTimeoutMs: 5000, retries: 0 });
      const catalog = new ModelCatalog(ollama, config.models, () => now);
      const keeper = new WarmKeeper({ config, ollama, catalog, state: new OllamaState(), logger: createSilentLogger(), now: () => now });
      expect(await keeper.tick()).toBe('warm');
      expect(fake.loadedModels()).toEqual(['llama3.1:8b']);
      now += 29 * 60_000;
      expect(await keeper.tick()).toBe('warm');
      now += 2 * 60_000;
      expect(await keeper.tick()).toBe('idle');
      expect(fake.loadedModels()).toEqual([]);
      expect(keeper.isIdle).toBe(true);
      expect(await keeper.tick()).toBe('idle'); // stays unloaded, no re-warm at night
      expect(fake.loadedModels()).toEqual([]);
      keeper.touch(); // a generation came in
      now += 6_000; // past the model list cache
      expect(await keeper.tick()).toBe('warm');
      expect(fake.loadedModels()).toEqual(['llama3.1:8b']);
    } finally {
      await fake.close();
    }
  });

  test('When Ollama is down, then a check reports warming and does not throw', async () => {
    const config = loadConfig({ OLLAMA_BASE_URL: 'http://127.0.0.1:9' });
    const ollama = createOllamaClient({ baseUrl: config.ollama.baseUrl, requestTimeoutMs: 1000, retries: 0 });
    const keeper = new WarmKeeper({ config, ollama, catalog: new ModelCatalog(ollama, config.models), state: new OllamaState(), logger: createSilentLogger() });
    await expect(keeper.tick()).resolves.toBe('warming');
  });
});
