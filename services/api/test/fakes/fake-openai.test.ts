/**
 * The fake OpenAI-compatible upstream speaks the real protocol: the official `openai` npm client
 * (which parses SSE, errors and retries itself) works against it unchanged.
 */
import OpenAI, { AuthenticationError, BadRequestError, InternalServerError, NotFoundError, RateLimitError } from 'openai';
import { FakeOpenAi } from './fake-openai';

const KEY = 'sk-fake-Vq3mZ8pR1xT6wK9n';
const MODEL = 'meta-llama/Llama-3.1-8B-Instruct';

describe('FakeOpenAi with the official openai client', () => {
  let fake: FakeOpenAi;
  let openai: OpenAI;

  beforeAll(async () => {
    fake = await FakeOpenAi.start({ apiKey: KEY, reply: 'one two three four', embeddingDims: 16 });
    openai = new OpenAI({ baseURL: `${fake.url}/v1`, apiKey: KEY, maxRetries: 0, timeout: 10_000 });
  });
  afterAll(() => fake.close());

  test('When models are listed and retrieved, then the ids come back', async () => {
    const ids: string[] = [];
    for await (const m of openai.models.list()) ids.push(m.id);
    expect(ids).toEqual([MODEL, 'BAAI/bge-small-en-v1.5']);
    expect((await openai.models.retrieve(MODEL)).id).toBe(MODEL);
  });

  test('When a chat is not streamed, then one completion with usage comes back', async () => {
    const before = fake.stats.generations;
    const r = await openai.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'say hi' }] });
    expect(r.object).toBe('chat.completion');
    expect(r.choices[0].message.content).toBe('one two three four');
    expect(r.choices[0].finish_reason).toBe('stop');
    expect(r.usage).toEqual({ prompt_tokens: 2, completion_tokens: 4, total_tokens: 6 });
    expect(fake.stats.generations).toBe(before + 1);
  });

  test('When a chat is streamed with include_usage, then deltas, a finish chunk and a usage chunk arrive', async () => {
    const stream = await openai.chat.completions.create({
      model: MODEL,
      messages: [{ role: 'user', content: 'hi' }],
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: 3,
    });
    let text = '';
    let finish: string | null = null;
    let usage: unknown;
    for await (const c of stream) {
      text += c.choices[0]?.delta?.content ?? '';
      finish = c.choices[0]?.finish_reason ?? finish;
      if (c.usage) usage = c.usage;
    }
    expect(text).toBe('one two three');
    expect(finish).toBe('length');
    expect(usage).toEqual({ prompt_tokens: 1, completion_tokens: 3, total_tokens: 4 });
  });

  test('When a tool call is queued, then the streamed fragments assemble into one call', async () => {
    fake.queueToolCall(MODEL, { name: 'get_weather', arguments: { city: 'Bern' } });
    const runner = openai.chat.completions.stream({
      model: MODEL,
      messages: [{ role: 'user', content: 'weather?' }],
      tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }],
    });
    const final = await runner.finalChatCompletion();
    const call = final.choices[0].message.tool_calls?.[0];
    expect(call?.type === 'function' && call.function.name).toBe('get_weather');
    expect(call?.type === 'function' && JSON.parse(call.function.arguments)).toEqual({ city: 'Bern' });
    expect(final.choices[0].finish_reason).toBe('tool_calls');
  });

  test('When embeddings are asked for, then one vector per input in order', async () => {
    const r = await openai.embeddings.create({ model: 'BAAI/bge-small-en-v1.5', input: ['a', 'b c'] });
    expect(r.data.map((d) => d.index)).toEqual([0, 1]);
    expect(r.data[0].embedding).toHaveLength(16);
    expect(r.usage.prompt_tokens).toBe(3);
    // the client asked for base64 and decoded it: the same vector as the float form
    const floats = (await fetch(`${fake.url}/v1/embeddings`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ model: 'BAAI/bge-small-en-v1.5', input: 'a' }),
    }).then((x) => x.json())) as { data: Array<{ embedding: number[] }> };
    expect(r.data[0].embedding).toEqual(floats.data[0].embedding);
  });

  test('When things go wrong, then the client raises its typed errors from real statuses and bodies', async () => {
    const bad = new OpenAI({ baseURL: `${fake.url}/v1`, apiKey: 'sk-wrong-Xb7cQ2m9LkP4', maxRetries: 0 });
    await expect(bad.models.list()).rejects.toBeInstanceOf(AuthenticationError);
    const nf = await openai.chat.completions.create({ model: 'gpt-nope', messages: [{ role: 'user', content: 'x' }] }).catch((e: unknown) => e);
    expect(nf).toBeInstanceOf(NotFoundError);
    expect((nf as NotFoundError).code).toBe('model_not_found');
    await expect(openai.chat.completions.create({ model: MODEL, messages: [] })).rejects.toBeInstanceOf(BadRequestError);
    fake.setBehaviour(MODEL, { kind: 'error', status: 429 });
    await expect(openai.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'x' }] })).rejects.toBeInstanceOf(RateLimitError);
    fake.setBehaviour(MODEL, { kind: 'error', status: 503 });
    await expect(openai.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'x' }] })).rejects.toBeInstanceOf(InternalServerError);
    fake.setBehaviour(MODEL, { kind: 'normal' });
  });
});
