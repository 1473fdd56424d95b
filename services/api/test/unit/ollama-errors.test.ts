import { mapOllamaError } from '../../src/clients/ollama-errors';
import { extractJson } from '../../src/services/structured.service';

describe('mapOllamaError (the strings of docs/ollama-contract.md)', () => {
  test.each([
    [404, "model 'llama9' not found", 'MODEL_NOT_FOUND', 404],
    [404, 'model "llama9" not found, try pulling it first', 'MODEL_NOT_FOUND', 404],
    [503, 'server busy, please try again.  maximum pending requests exceeded', 'QUEUE_FULL', 503],
    [500, 'model requires more system memory (10.2 GiB) than is available (7.6 GiB)', 'INSUFFICIENT_MEMORY', 503],
    [500, 'llama-server reported out-of-memory during startup: cudaMalloc failed', 'INSUFFICIENT_MEMORY', 503],
    [500, 'unable to load full model on GPU', 'INSUFFICIENT_MEMORY', 503],
    [500, 'timed out waiting for llama-server to start', 'UPSTREAM_TIMEOUT', 504],
    [400, 'registry.ollama.ai/library/gemma3:4b does not support tools', 'UPSTREAM_REJECTED', 400],
    [400, 'invalid format: "xml"; expected "json" or a valid JSON Schema object', 'UPSTREAM_REJECTED', 400],
    [499, 'request canceled', 'CLIENT_CLOSED_REQUEST', 499],
    [
      500,
      'model runner has unexpectedly stopped, this may be due to resource limitations or an internal error, check ollama server logs for details',
      'UPSTREAM_ERROR',
      502,
    ],
    [403, '', 'UPSTREAM_ERROR', 502],
  ])('When Ollama answers %i "%s", then the gateway reports %s (%i)', (status, msg, code, ourStatus) => {
    const e = mapOllamaError(status, msg, 'llama9');
    expect(e.code).toBe(code);
    expect(e.status).toBe(ourStatus);
  });

  test('When the model is missing, then the hint names the exact pull command', () => {
    expect(mapOllamaError(404, "model 'qwen2:7b' not found", 'qwen2:7b').hint).toContain('make pull MODEL=qwen2:7b');
  });
});

describe('extractJson', () => {
  test.each([
    ['{"a":1}', { a: 1 }],
    ['```json\n{"a":1}\n```', { a: 1 }],
    ['Sure! Here is the JSON:\n{"a": {"b": [1,2]}}\nHope that helps.', { a: { b: [1, 2] } }],
    ['```\n[1, 2]\n```', [1, 2]],
  ])('When the answer is %j, then the JSON inside is found', (text, value) => {
    expect(extractJson(text)).toEqual({ ok: true, value });
  });

  test('When there is no JSON, then it says so', () => {
    const r = extractJson('I cannot do that.');
    expect(r.ok).toBe(false);
  });
});
