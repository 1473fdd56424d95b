import { ConfigError } from '../../src/errors';
import { loadUpstreamsConfig, parseUpstreamsConfig, priorityFor, type UpstreamDefaults } from '../../src/config/upstreams';

const base: UpstreamDefaults = {
  ollamaBaseUrl: 'http://ollama:11434',
  maxConcurrent: 2,
  requestTimeoutS: 120,
  connectTimeoutMs: 2000,
  loadAllowanceS: 90,
};

const KEY = 'sk-Zq8vN3xR7tLw2mPk5yHd';

function problemsOf(env: NodeJS.ProcessEnv): string[] {
  try {
    loadUpstreamsConfig(env, base);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

describe('parseUpstreamsConfig', () => {
  test('When UPSTREAMS is unset, then there is one ollama upstream at OLLAMA_BASE_URL as before', () => {
    for (const UPSTREAMS of [undefined, '', '   ']) {
      const c = loadUpstreamsConfig({ UPSTREAMS }, base);
      expect(c.implicit).toBe(true);
      expect(c.upstreams).toEqual([
        { name: 'ollama', url: 'http://ollama:11434', kind: 'ollama', priority: 1, maxConcurrent: 2, timeouts: { requestS: 120, connectMs: 2000, loadS: 90 } },
      ]);
    }
  });

  test('When the lane keys are unset, then aging is 30 s, spill 10 s and nobody has a default lane', () => {
    const c = loadUpstreamsConfig({}, base);
    expect(c.agingMs).toBe(30_000);
    expect(c.spillAfterMs).toBe(10_000);
    expect(c.userPriority).toEqual({});
  });

  test('When UPSTREAMS lists two good entries, then defaults fill in and per-upstream values win', () => {
    const c = loadUpstreamsConfig(
      {
        UPSTREAMS: JSON.stringify([
          { name: 'gpu', url: 'http://ollama:11434/', kind: 'ollama' },
          {
            name: 'vllm',
            url: 'https://vllm.example.test',
            kind: 'openai',
            priority: 2,
            maxConcurrent: 8,
            models: ['meta-llama/Llama-3.1-8B-Instruct'],
            apiKey: KEY,
            timeouts: { requestS: 30, connectMs: 500 },
          },
        ]),
        USER_PRIORITY: 'waldus=high, batch=LOW',
        PRIORITY_AGING_S: '2.5',
        SPILL_AFTER_MS: '4000',
      },
      base,
    );
    expect(c.implicit).toBe(false);
    expect(c.upstreams[0]).toEqual({
      name: 'gpu',
      url: 'http://ollama:11434',
      kind: 'ollama',
      priority: 1,
      maxConcurrent: 2,
      timeouts: { requestS: 120, connectMs: 2000, loadS: 90 },
    });
    expect(c.upstreams[1]).toEqual({
      name: 'vllm',
      url: 'https://vllm.example.test',
      kind: 'openai',
      priority: 2,
      maxConcurrent: 8,
      models: ['meta-llama/Llama-3.1-8B-Instruct'],
      apiKey: KEY,
      timeouts: { requestS: 30, connectMs: 500, loadS: 90 },
    });
    expect(c.userPriority).toEqual({ waldus: 'high', batch: 'low' });
    expect(c.agingMs).toBe(2500);
    expect(c.spillAfterMs).toBe(4000);
  });

  test('When several entries are bad, then every one is listed with its index and name and no value is echoed', () => {
    const problems = problemsOf({
      UPSTREAMS: JSON.stringify([
        { name: 'gpu', url: 'http://ollama:11434', kind: 'ollama' },
        { name: 'mac', url: 'http://mac.tail1234.ts.net:11434', kind: 'llama' },
        { name: 'gpu', url: 'ftp://user:hunter2pass@host', kind: 'openai', apiKey: KEY },
        { url: 'http://x:1', kind: 'ollama', priority: 0, maxConcurrent: 1.5 },
        { name: 'keyed', url: 'http://y:1', kind: 'ollama', apiKey: KEY },
        { name: 'odd', url: 'http://z:1', kind: 'openai', colour: 'red', timeouts: { requestS: -1 } },
      ]),
    });
    const text = problems.join('\n');
    expect(problems).toContain('UPSTREAMS[1] (mac).kind must be one of ollama, openai');
    expect(problems).toContain('UPSTREAMS[2] (gpu).url must be an http:// or https:// URL');
    expect(problems).toContain('UPSTREAMS[3].name is required');
    expect(problems).toContain('UPSTREAMS[3].priority must be ≥ 1');
    expect(problems).toContain('UPSTREAMS[3].maxConcurrent must be an integer');
    expect(problems).toContain('UPSTREAMS[4] (keyed).apiKey is only for kind openai (Ollama has no API keys)');
    expect(text).toMatch(/UPSTREAMS\[5\] \(odd\)\.colour is not a known field/);
    expect(problems).toContain('UPSTREAMS[5] (odd).timeouts.requestS must be > 0');
    expect(text).not.toContain(KEY);
    expect(text).not.toContain('hunter2pass');
    expect(text).not.toContain('tail1234');
  });

  test('When two entries share a name, then the second is refused naming the first', () => {
    const problems = problemsOf({
      UPSTREAMS: JSON.stringify([
        { name: 'gpu', url: 'http://a:1', kind: 'ollama' },
        { name: 'GPU', url: 'http://b:1', kind: 'ollama' },
      ]),
    });
    expect(problems).toEqual(['UPSTREAMS[1] (GPU).name is already used by UPSTREAMS[0] (names must be unique)']);
  });

  test('When UPSTREAMS is not a JSON array, then the message says so without quoting the text', () => {
    expect(problemsOf({ UPSTREAMS: `[{"name":"x","apiKey":"${KEY}"` })).toEqual(['UPSTREAMS is not valid JSON: it must be a JSON array of upstream objects']);
    expect(problemsOf({ UPSTREAMS: '{"name":"x"}' })).toEqual(['UPSTREAMS must be a JSON array of upstream objects']);
    expect(problemsOf({ UPSTREAMS: '[]' })[0]).toMatch(/at least one upstream/);
    expect(problemsOf({ UPSTREAMS: '[42]' })).toEqual(['UPSTREAMS[0] must be an object']);
  });

  test('When the lane keys are bad, then each is reported along with bad entries', () => {
    const { problems } = parseUpstreamsConfig(
      {
        USER_PRIORITY: 'waldus=urgent,batch,owner=low,owner=high',
        PRIORITY_AGING_S: '-1',
        SPILL_AFTER_MS: 'soon',
        UPSTREAMS: '[{"name":"a","url":"http://a:1"}]',
      },
      base,
    );
    expect(problems).toEqual(
      expect.arrayContaining([
        'USER_PRIORITY: "waldus" must be high, normal or low',
        'USER_PRIORITY: entry "batch" must look like user=high|normal|low',
        'USER_PRIORITY: "owner" is listed twice',
        'PRIORITY_AGING_S must be ≥ 0',
        'SPILL_AFTER_MS must be a number',
        'UPSTREAMS[0] (a).kind is required',
      ]),
    );
    expect(problems).toHaveLength(6);
  });
});

describe('priorityFor', () => {
  const users = { waldus: 'high' as const, batch: 'low' as const };
  test('When X-Priority is given, then it wins over the user default; an unknown value is undefined (a 400)', () => {
    expect(priorityFor('LOW', 'waldus', users)).toBe('low');
    expect(priorityFor(' high ', undefined, users)).toBe('high');
    expect(priorityFor('urgent', 'waldus', users)).toBeUndefined();
  });
  test('When X-Priority is absent, then the user default applies, else normal', () => {
    expect(priorityFor(undefined, 'waldus', users)).toBe('high');
    expect(priorityFor('', 'batch', users)).toBe('low');
    expect(priorityFor(undefined, 'someone', users)).toBe('normal');
    expect(priorityFor(undefined, undefined, users)).toBe('normal');
  });
});
