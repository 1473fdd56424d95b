import { Readable } from 'node:stream';
import { upstreamErrorText } from '../../src/wire/lines';
import { collectNdjson } from '../../src/wire/ndjson';
import { collectChatCompletion } from '../../src/wire/openai-sse';
import { ollamaErrorBody, openaiErrorBody } from '../../src/middleware/surface-errors';

/** A body that arrives in awkward pieces: lines split across chunks. */
const pieces = (text: string, size = 7) =>
  Readable.from(Array.from({ length: Math.ceil(text.length / size) }, (_, i) => Buffer.from(text.slice(i * size, (i + 1) * size))));
const ndjson = (...objs: unknown[]) => objs.map((o) => JSON.stringify(o)).join('\n') + '\n';
const sse = (...objs: unknown[]) => objs.map((o) => `data: ${typeof o === 'string' ? o : JSON.stringify(o)}\n\n`).join('');

describe('collectNdjson (stream:false callers of /ollama)', () => {
  test('When a chat streams text, thinking and tool calls, then one message holds them all with the final metrics', async () => {
    const r = await collectNdjson(
      'chat',
      pieces(
        ndjson(
          { model: 'm', message: { role: 'assistant', content: '', thinking: 'hmm ' }, done: false },
          { model: 'm', message: { role: 'assistant', content: 'Hel' }, done: false },
          { model: 'm', message: { role: 'assistant', content: 'lo', tool_calls: [{ function: { name: 'f', arguments: { a: 1 } } }] }, done: false },
          { model: 'm', message: { role: 'assistant', content: '' }, done: true, done_reason: 'stop', eval_count: 3 },
        ),
      ),
    );
    expect(r).toEqual({
      ok: true,
      value: {
        model: 'm',
        message: { role: 'assistant', content: 'Hello', thinking: 'hmm ', tool_calls: [{ function: { name: 'f', arguments: { a: 1 } } }] },
        done: true,
        done_reason: 'stop',
        eval_count: 3,
      },
    });
  });

  test('When generate streams, then the response is joined and the context kept', async () => {
    const r = await collectNdjson(
      'generate',
      pieces(ndjson({ response: 'a', done: false }, { response: 'b', done: false }, { response: '', done: true, context: [1, 2] })),
    );
    expect(r).toEqual({ ok: true, value: { response: 'ab', done: true, context: [1, 2] } });
  });

  test('When an error line comes, then it is returned (not thrown) for a 500 in Ollama shape', async () => {
    expect(await collectNdjson('generate', pieces(ndjson({ response: 'a', done: false }, { error: 'boom' })))).toEqual({ ok: false, error: 'boom' });
    expect(await collectNdjson('progress', pieces(ndjson({ status: 'pulling manifest' }, { error: 'pull model manifest: file does not exist' })))).toEqual({
      ok: false,
      error: 'pull model manifest: file does not exist',
    });
  });

  test('When the stream ends without done / success, then UPSTREAM_ERROR', async () => {
    await expect(collectNdjson('generate', pieces(ndjson({ response: 'a', done: false })))).rejects.toMatchObject({ code: 'UPSTREAM_ERROR' });
    await expect(collectNdjson('progress', pieces(ndjson({ status: 'pulling manifest' })))).rejects.toMatchObject({ code: 'UPSTREAM_ERROR' });
  });

  test('When the answer is a single JSON object without a newline (a load request), then it is the result', async () => {
    expect(await collectNdjson('generate', pieces('{"model":"m","response":"","done":true,"done_reason":"load"}'))).toEqual({
      ok: true,
      value: { model: 'm', response: '', done: true, done_reason: 'load' },
    });
  });
});

describe('collectChatCompletion (stream:false callers of /openai/v1)', () => {
  const head = { id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1700000000, model: 'm', system_fingerprint: 'fp_ollama' };
  test('When content, reasoning, split tool-call arguments and usage stream in, then one chat.completion comes out', async () => {
    const r = await collectChatCompletion(
      pieces(
        sse(
          { ...head, choices: [{ index: 0, delta: { role: 'assistant', reasoning: 'think ' }, finish_reason: null }] },
          { ...head, choices: [{ index: 0, delta: { content: 'It is ' }, finish_reason: null }] },
          {
            ...head,
            choices: [
              {
                index: 0,
                delta: { content: 'sunny', tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'weather', arguments: '{"city":' } }] },
                finish_reason: null,
              },
            ],
          },
          { ...head, choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: '"Paris"}' } }] }, finish_reason: 'tool_calls' }] },
          { ...head, choices: [], usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 } },
          '[DONE]',
        ),
        11,
      ),
    );
    expect(r).toEqual({
      ok: true,
      value: {
        id: 'chatcmpl-1',
        object: 'chat.completion',
        created: 1700000000,
        model: 'm',
        system_fingerprint: 'fp_ollama',
        choices: [
          {
            index: 0,
            message: {
              role: 'assistant',
              content: 'It is sunny',
              reasoning: 'think ',
              tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'weather', arguments: '{"city":"Paris"}' } }],
            },
            finish_reason: 'tool_calls',
          },
        ],
        usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 },
      },
    });
  });

  test('When an error event comes, then its OpenAI-shaped error is returned', async () => {
    const error = { message: 'boom', type: 'api_error', param: null, code: null };
    expect(await collectChatCompletion(pieces(sse({ ...head, choices: [{ index: 0, delta: { content: 'x' } }] }, { error })))).toEqual({ ok: false, error });
  });

  test('When the stream ends without [DONE], then UPSTREAM_ERROR', async () => {
    await expect(collectChatCompletion(pieces(sse({ ...head, choices: [{ index: 0, delta: { content: 'x' } }] })))).rejects.toMatchObject({
      code: 'UPSTREAM_ERROR',
    });
  });
});

describe('surface error shapes', () => {
  test.each([
    [{ status: 404, code: 'MODEL_NOT_FOUND', message: "Model 'x:1b' is not installed on this server", model: 'x:1b' }, { error: "model 'x:1b' not found" }],
    [{ status: 503, code: 'QUEUE_FULL', message: 'The queue is full' }, { error: 'The queue is full' }],
  ])('Ollama shape: %j → %j', (e, body) => {
    expect(ollamaErrorBody(e)).toEqual(body);
  });

  test.each([
    [400, 'invalid_request_error'],
    [401, 'authentication_error'],
    [403, 'permission_error'],
    [404, 'not_found_error'],
    [413, 'invalid_request_error'],
    [429, 'rate_limit_error'],
    [503, 'api_error'],
    [504, 'api_error'],
  ])('OpenAI shape: status %i → type %s, our code kept, param null', (status, type) => {
    expect(openaiErrorBody({ status, code: 'SOME_CODE', message: 'm' })).toEqual({ error: { message: 'm', type, param: null, code: 'SOME_CODE' } });
  });

  test('upstreamErrorText reads both Ollama shapes and falls back to the text', () => {
    expect(upstreamErrorText('{"error":"native"}', 400)).toBe('native');
    expect(upstreamErrorText('{"error":{"message":"compat","type":"api_error"}}', 500)).toBe('compat');
    expect(upstreamErrorText('404 page not found', 404)).toBe('404 page not found');
    expect(upstreamErrorText('', 403)).toBe('Ollama answered HTTP 403');
  });
});
