import { loadConfig } from '../../src/config';
import { ConfigError } from '../../src/errors';

describe('loadConfig', () => {
  test('When the environment is empty, then every key has its documented default', () => {
    const c = loadConfig({});
    expect(c.port).toBe(3000);
    expect(c.ollama.baseUrl).toBe('http://ollama:11434');
    expect(c.models.default).toBe('llama3.1:8b');
    expect(c.models.embed).toBe('nomic-embed-text');
    expect(c.models.numCtx).toBe(4096);
    expect(c.queue).toEqual({ maxConcurrent: 1, maxQueue: 16, timeoutS: 120 });
    expect(c.health.cacheTtlS).toBe(30);
    expect(c.defaults).toEqual({ temperature: 0.3, topP: 0.9, topK: 40 });
    expect(c.auth.users).toEqual([]);
    expect(Object.isFrozen(c.ollama)).toBe(true);
  });

  test('When lists are given, then aliases, per-model timeouts and users are parsed', () => {
    const c = loadConfig({
      MODEL_ALIASES: 'fast=mistral:7b, accurate=llama3.1:8b',
      MODEL_TIMEOUTS: 'mistral:7b=15,llama3.1:8b=60,nomic-embed-text=30',
      AUTH_USERS: 'waldus:s3cret:with:colons-Vk8,owner:Ow3-rM9tQ2xL6nB4',
      ADMIN_USERS: 'owner',
      OLLAMA_BASE_URL: 'http://127.0.0.1:11434/',
    });
    expect(c.models.aliases).toEqual({ fast: 'mistral:7b', accurate: 'llama3.1:8b' });
    expect(c.ollama.modelTimeoutsS).toEqual({ 'mistral:7b': 15, 'llama3.1:8b': 60, 'nomic-embed-text': 30 });
    expect(c.auth.users).toEqual([
      { name: 'waldus', password: 's3cret:with:colons-Vk8' },
      { name: 'owner', password: 'Ow3-rM9tQ2xL6nB4' },
    ]);
    expect(c.auth.adminUsers).toEqual(['owner']);
    expect(c.ollama.baseUrl).toBe('http://127.0.0.1:11434');
  });

  test('When several keys are bad, then one ConfigError lists every one of them and no secret', () => {
    let caught: unknown;
    try {
      loadConfig({
        PORT: 'eighty',
        MAX_CONCURRENT: '0',
        OLLAMA_BASE_URL: 'ftp://x',
        MODEL_TIMEOUTS: 'mistral:7b=fast',
        AUTH_USERS: 'nopasswordhere-SECRET',
        ADMIN_USERS: 'ghost',
        LOG_LEVEL: 'loud',
      });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const problems = (caught as ConfigError).problems.join('\n');
    for (const key of ['PORT', 'MAX_CONCURRENT', 'OLLAMA_BASE_URL', 'MODEL_TIMEOUTS', 'AUTH_USERS', 'ADMIN_USERS', 'LOG_LEVEL']) {
      expect(problems).toContain(key);
    }
    expect(problems).not.toContain('SECRET');
  });

  test('When a password is shorter than 16 characters, then start-up fails naming the user, never the password', () => {
    let caught: unknown;
    try {
      loadConfig({ AUTH_USERS: 'owner:Ow3-rM9tQ2xL6nB4,waldus:Tiny-Secret-1,guest:Gu7-ShortPw', ADMIN_USERS: 'owner' });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const problems = (caught as ConfigError).problems.join('\n');
    expect(problems).toContain('"waldus", "guest"');
    expect(problems).toContain('shorter than 16 characters');
    expect(problems).toContain('ALLOW_WEAK_PASSWORDS=1');
    expect(problems).not.toContain('owner');
    expect(problems).not.toContain('Tiny-Secret-1');
    expect(problems).not.toContain('Gu7-ShortPw');
  });

  test('When a password has exactly 16 characters (counted as characters, not bytes), then it is accepted', () => {
    expect(loadConfig({ AUTH_USERS: 'a:0123456789abcdef' }).auth.users).toHaveLength(1);
    expect(() => loadConfig({ AUTH_USERS: 'a:0123456789abcde' })).toThrow(ConfigError);
    expect(() => loadConfig({ AUTH_USERS: 'a:ééééééééééééééé' })).toThrow(/"a"/); // 15 characters, 30 bytes
  });

  test('When ALLOW_WEAK_PASSWORDS=1 (the explicit opt-in), then a short password is accepted; 0 keeps the refusal', () => {
    for (const yes of ['1', 'true', 'YES']) {
      expect(loadConfig({ AUTH_USERS: 'waldus:short', ALLOW_WEAK_PASSWORDS: yes }).auth.users).toEqual([{ name: 'waldus', password: 'short' }]);
    }
    for (const no of ['0', 'false', '']) {
      expect(() => loadConfig({ AUTH_USERS: 'waldus:short', ALLOW_WEAK_PASSWORDS: no })).toThrow(ConfigError);
    }
  });

  test('When GPU_EXPORTER_URL is unset it is empty (no GPU telemetry); an http(s) URL is kept; anything else is refused', () => {
    expect(loadConfig({}).gpuExporterUrl).toBe('');
    expect(loadConfig({ GPU_EXPORTER_URL: 'http://gpu-exporter:9835/metrics' }).gpuExporterUrl).toBe('http://gpu-exporter:9835/metrics');
    expect(() => loadConfig({ GPU_EXPORTER_URL: 'gpu-exporter:9835' })).toThrow(/GPU_EXPORTER_URL/);
  });
});
