import {
  generateToChat,
  imageDataUrl,
  mapMessages,
  mapOptions,
  toOpenAiChatRequest,
  toOpenAiCompletionRequest,
  toOpenAiEmbeddingRequest,
} from '../../src/clients/openai-request.mapping';
import { ChatStreamMapper, chatChunkToGenerate, chatCompletionToChunks, embeddingsToOllama, modelsToTags } from '../../src/clients/openai-response.mapping';
import { usageFrom } from '../../src/services/generation.service';

const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';

describe('request mapping', () => {
  test('When Ollama options are mapped, then sampling fields carry over, num_predict becomes max_tokens and runner options are dropped', () => {
    const m = mapOptions({
      temperature: 0.2,
      top_p: 0.9,
      top_k: 40,
      min_p: 0.05,
      repeat_penalty: 1.1,
      num_predict: 64,
      stop: ['\n\n'],
      seed: 7,
      num_ctx: 8192,
      num_gpu: 99,
      mirostat: 2,
    });
    expect(m.body).toEqual({ temperature: 0.2, top_p: 0.9, top_k: 40, min_p: 0.05, repetition_penalty: 1.1, max_tokens: 64, stop: ['\n\n'], seed: 7 });
    expect(m.dropped.sort()).toEqual(['mirostat', 'num_ctx', 'num_gpu']);
  });

  test("When options say 'unbounded' or 'off' the Ollama way, then the OpenAI field is left out", () => {
    expect(mapOptions({ num_predict: -1, top_k: 0 }).body).toEqual({});
    expect(mapOptions({ num_predict: -2 }).body).toEqual({});
    expect(mapOptions({ stop: 'END' }).body).toEqual({ stop: 'END' });
  });

  test('When a chat asks for JSON or a schema, then response_format follows', () => {
    const schema = { type: 'object', properties: { a: { type: 'string' } }, required: ['a'] };
    expect(toOpenAiChatRequest({ model: 'm', messages: [], format: 'json' }, false).body.response_format).toEqual({ type: 'json_object' });
    expect(toOpenAiChatRequest({ model: 'm', messages: [], format: schema }, false).body.response_format).toEqual({
      type: 'json_schema',
      json_schema: { name: 'response', schema, strict: true },
    });
  });

  test('When a chat is streamed, then usage is asked for; keep_alive and think are reported as dropped', () => {
    const r = toOpenAiChatRequest(
      { model: 'm', messages: [{ role: 'user', content: 'hi' }], keep_alive: '24h', think: true, tools: [{ type: 'function', function: { name: 'f' } }] },
      true,
    );
    expect(r.body).toEqual({
      model: 'm',
      messages: [{ role: 'user', content: 'hi' }],
      stream: true,
      stream_options: { include_usage: true },
      tools: [{ type: 'function', function: { name: 'f' } }],
    });
    expect(r.dropped).toEqual(['keep_alive', 'think']);
  });

  test('When messages carry images and tool calls, then they become content parts and id-linked tool messages', () => {
    const out = mapMessages([
      { role: 'user', content: 'what is this?', images: [PNG, '/9j/4AAQ'] },
      { role: 'assistant', content: '', tool_calls: [{ function: { name: 'lookup', arguments: { q: 'x' } } }, { function: { name: 'clock', arguments: {} } }] },
      { role: 'tool', content: '12:00', tool_name: 'clock' },
      { role: 'tool', content: 'found', tool_name: 'lookup' },
    ]);
    expect(out[0]).toEqual({
      role: 'user',
      content: [
        { type: 'text', text: 'what is this?' },
        { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}` } },
        { type: 'image_url', image_url: { url: 'data:image/jpeg;base64,/9j/4AAQ' } },
      ],
    });
    expect(out[1]).toEqual({
      role: 'assistant',
      content: null,
      tool_calls: [
        { id: 'call_0', type: 'function', function: { name: 'lookup', arguments: '{"q":"x"}' } },
        { id: 'call_1', type: 'function', function: { name: 'clock', arguments: '{}' } },
      ],
    });
    expect(out[2]).toEqual({ role: 'tool', content: '12:00', tool_call_id: 'call_1' });
    expect(out[3]).toEqual({ role: 'tool', content: 'found', tool_call_id: 'call_0' });
    expect(imageDataUrl('data:image/gif;base64,R0lGOD')).toBe('data:image/gif;base64,R0lGOD');
  });

  test('When a generate is mapped, then system and prompt become a chat; raw goes to /v1/completions', () => {
    expect(generateToChat({ model: 'm', prompt: 'Describe', system: 'Be brief', images: [PNG], options: { temperature: 0 } })).toEqual({
      model: 'm',
      messages: [
        { role: 'system', content: 'Be brief' },
        { role: 'user', content: 'Describe', images: [PNG] },
      ],
      options: { temperature: 0 },
      format: undefined,
      keep_alive: undefined,
      think: undefined,
    });
    const raw = toOpenAiCompletionRequest({ model: 'm', prompt: '<s>[INST] hi [/INST]', raw: true, options: { num_predict: 5 } }, true);
    expect(raw.body).toEqual({ model: 'm', prompt: '<s>[INST] hi [/INST]', stream: true, stream_options: { include_usage: true }, max_tokens: 5 });
  });

  test('When embeddings are mapped, then floats are asked for and Ollama-only fields are dropped', () => {
    expect(toOpenAiEmbeddingRequest({ model: 'e', input: ['a', 'b'], truncate: true, keep_alive: '5m', options: { num_ctx: 2048 } })).toEqual({
      body: { model: 'e', input: ['a', 'b'], encoding_format: 'float' },
      dropped: ['keep_alive', 'truncate', 'num_ctx'],
    });
  });
});

describe('answer mapping', () => {
  const chunk = (delta: Record<string, unknown>, finish: string | null = null) => ({
    id: 'c1',
    object: 'chat.completion.chunk',
    model: 'm',
    choices: [{ index: 0, delta, finish_reason: finish }],
  });

  test('When a stream is mapped, then deltas become Ollama chunks and the end carries counts and durations', () => {
    const m = new ChatStreamMapper('m', 1_000);
    expect(m.push(chunk({ role: 'assistant', content: '' }), 1_050)).toEqual([]);
    const a = m.push(chunk({ content: 'Hel' }), 1_200);
    const b = m.push(chunk({ content: 'lo', reasoning_content: 'hmm' }), 1_400);
    expect(a).toEqual([{ model: 'm', created_at: new Date(1_200).toISOString(), message: { role: 'assistant', content: 'Hel' }, done: false }]);
    expect(b[0].message).toEqual({ role: 'assistant', content: 'lo', thinking: 'hmm' });
    expect(m.push(chunk({}, 'length'), 1_450)).toEqual([]);
    expect(
      m.push(
        { id: 'c1', object: 'chat.completion.chunk', model: 'm', choices: [], usage: { prompt_tokens: 11, completion_tokens: 2, total_tokens: 13 } },
        1_460,
      ),
    ).toEqual([]);
    const [end] = m.finish(1_500);
    expect(end).toMatchObject({
      done: true,
      done_reason: 'length',
      prompt_eval_count: 11,
      eval_count: 2,
      total_duration: 500e6,
      load_duration: 0,
      prompt_eval_duration: 200e6,
      eval_duration: 200e6,
    });
    // the generation service's usage figures come out right
    expect(usageFrom(end)).toEqual({
      prompt_tokens: 11,
      completion_tokens: 2,
      total_tokens: 13,
      total_ms: 500,
      load_ms: 0,
      prompt_eval_ms: 200,
      eval_ms: 200,
      tokens_per_second: 10,
    });
  });

  test('When the server sends no usage, then each content chunk counts as one token', () => {
    const m = new ChatStreamMapper('m', 0);
    m.push(chunk({ content: 'a' }), 10);
    m.push(chunk({ content: ' b' }), 20);
    m.push(chunk({ content: ' c' }, 'stop'), 30);
    const [end] = m.finish(40);
    expect(end).toMatchObject({ done: true, done_reason: 'stop', eval_count: 3, prompt_eval_count: 0 });
  });

  test('When tool calls stream in fragments, then one whole call is emitted with parsed arguments before done', () => {
    const m = new ChatStreamMapper('m', 0);
    m.push(chunk({ tool_calls: [{ index: 0, id: 'call_a', type: 'function', function: { name: 'get_weather', arguments: '{"ci' } }] }), 10);
    m.push(chunk({ tool_calls: [{ index: 0, function: { arguments: 'ty":"Bern"}' } }] }), 20);
    const calls = m.push(chunk({}, 'tool_calls'), 30);
    expect(calls).toEqual([
      {
        model: 'm',
        created_at: new Date(30).toISOString(),
        message: { role: 'assistant', content: '', tool_calls: [{ id: 'call_a', function: { name: 'get_weather', arguments: { city: 'Bern' } } }] },
        done: false,
      },
    ]);
    const end = m.finish(40);
    expect(end).toHaveLength(1);
    expect(end[0]).toMatchObject({ done: true, done_reason: 'stop' });
  });

  test('When a whole completion is mapped, then it gives the same chunks a stream would', () => {
    const chunks = chatCompletionToChunks(
      { choices: [{ message: { role: 'assistant', content: '{"a":"x"}' }, finish_reason: 'stop' }], usage: { prompt_tokens: 5, completion_tokens: 4 } },
      'm',
      { sentAt: 0, endedAt: 250 },
    );
    expect(chunks.map((c) => c.message.content)).toEqual(['{"a":"x"}', '']);
    expect(chunks[1]).toMatchObject({ done: true, done_reason: 'stop', eval_count: 4, prompt_eval_count: 5, total_duration: 250e6 });
  });

  test('When a chat chunk serves the generate surface, then message text becomes response', () => {
    expect(chatChunkToGenerate({ model: 'm', created_at: 't', message: { role: 'assistant', content: 'hi', thinking: 'th' }, done: false })).toEqual({
      model: 'm',
      created_at: 't',
      response: 'hi',
      thinking: 'th',
      done: false,
    });
  });

  test('When embeddings and models come back, then they take Ollama shapes (index order kept)', () => {
    const e = embeddingsToOllama(
      {
        data: [
          { index: 1, embedding: [2] },
          { index: 0, embedding: [1] },
        ],
        usage: { prompt_tokens: 3 },
      },
      'e',
      12,
    );
    expect(e).toEqual({ model: 'e', embeddings: [[1], [2]], total_duration: 12e6, load_duration: 0, prompt_eval_count: 3 });
    expect(modelsToTags([{ id: 'meta-llama/Llama-3.1-8B-Instruct', created: 1767225600 }])).toEqual([
      {
        name: 'meta-llama/Llama-3.1-8B-Instruct',
        model: 'meta-llama/Llama-3.1-8B-Instruct',
        modified_at: '2026-01-01T00:00:00.000Z',
        size: 0,
        digest: '',
        details: {},
      },
    ]);
  });
});
