import AnthropicBedrock from '@anthropic-ai/bedrock-sdk';
import { CountTokensCommand } from '@aws-sdk/client-bedrock-runtime';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  type BedrockStandIn,
  type StandInState,
  startBedrockStandIn,
} from '../../../local/bedrock/stand-in.ts';
import { answerSeconds, defaultCatalog } from '../../../shared/catalog/catalog.ts';
import { BODIES_BEDROCK_REFUSES } from '../../support/bad-inputs.ts';
import {
  bedrockClient,
  failureOf,
  invoke,
  invokeBody,
  LOCAL_CREDENTIALS,
} from '../../support/bedrock-clients.ts';
import { catalogWith } from '../../support/factories.ts';

describe('Bedrock stand-in with the AWS SDK (HTTP/2)', () => {
  let standIn: BedrockStandIn;
  beforeAll(async () => {
    standIn = await startBedrockStandIn({ speed: 0, auth: { deniedAccessKeyIds: ['AKIDNOBEDROCK'] } });
  });
  afterAll(() => standIn.close());

  it('answers InvokeModel with a realistic Messages response', async () => {
    // Act
    const response = await invoke(bedrockClient(standIn), invokeBody({ max_tokens: 1_000 }));

    // Assess
    expect(response).toMatchObject({
      id: expect.stringMatching(/^msg_bdrk_[0-9a-f]{24}$/),
      type: 'message',
      role: 'assistant',
      model: 'claude-opus-4-6',
      content: [{ type: 'text', text: expect.stringMatching(/^[A-Z].+\.$/) }],
      stop_reason: 'end_turn',
      stop_sequence: null,
      usage: { input_tokens: 8, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
    });
    expect(response.usage.output_tokens).toBe(response.content[0]?.text.split(' ').length);
  });

  it('gives the same answer to the same request, and another to another request', async () => {
    // Prepare
    const client = bedrockClient(standIn);

    // Act
    const first = await invoke(client, invokeBody());
    const again = await invoke(client, invokeBody());
    const other = await invoke(
      client,
      invokeBody({ messages: [{ role: 'user', content: 'Something else.' }] }),
    );

    // Assess
    expect(again).toEqual(first);
    expect(other.content[0]?.text).not.toBe(first.content[0]?.text);
  });

  it('stops at max_tokens with stop_reason "max_tokens"', async () => {
    // Act
    const response = await invoke(bedrockClient(standIn), invokeBody({ max_tokens: 5 }));

    // Assess
    expect(response.stop_reason).toBe('max_tokens');
    expect(response.usage.output_tokens).toBe(5);
  });

  it('counts tokens with CountTokens exactly as InvokeModel bills them', async () => {
    // Prepare
    const client = bedrockClient(standIn);
    const body = invokeBody({
      system: 'You are terse.',
      messages: [{ role: 'user', content: 'x'.repeat(4_001) }],
    });

    // Act
    const counted = await client.send(
      new CountTokensCommand({
        modelId: 'anthropic.claude-opus-4-6-v1',
        input: { invokeModel: { body: new TextEncoder().encode(JSON.stringify(body)) } },
      }),
    );
    const invoked = await invoke(client, body);

    // Assess
    expect(counted.inputTokens).toBe(invoked.usage.input_tokens);
    expect(counted.inputTokens).toBe(Math.ceil(14 / 4) + Math.ceil(4_001 / 4) + 3);
  });

  it('writes a cache_control prefix to the cache once, then reads it', async () => {
    // Prepare: Sonnet 4.5 caches prefixes of 1,024 tokens and more.
    const client = bedrockClient(standIn);
    const system = [{ type: 'text', text: 'r'.repeat(8_000), cache_control: { type: 'ephemeral' } }];
    const ask = (question: string) =>
      invoke(
        client,
        invokeBody({ system, messages: [{ role: 'user', content: question }] }),
        'global.anthropic.claude-sonnet-4-5-20250929-v1:0',
      );

    // Act
    const first = await ask('First question?');
    const second = await ask('Second question?');

    // Assess
    expect(first.usage).toMatchObject({
      cache_creation_input_tokens: 2_000,
      cache_read_input_tokens: 0,
      input_tokens: 7,
    });
    expect(second.usage).toMatchObject({
      cache_creation_input_tokens: 0,
      cache_read_input_tokens: 2_000,
      input_tokens: 7,
    });
  });

  it('caches nothing below the model minimum prefix', async () => {
    // Act
    const response = await invoke(
      bedrockClient(standIn),
      invokeBody({ system: [{ type: 'text', text: 'short', cache_control: { type: 'ephemeral' } }] }),
    );

    // Assess
    expect(response.usage).toMatchObject({ cache_creation_input_tokens: 0, cache_read_input_tokens: 0 });
  });

  it('reads an entry another request wrote at an earlier block, and writes the rest up to its own breakpoint', async () => {
    // Prepare: 2,000 tokens of policy, then 1,000 of a case file; Sonnet 4.5 caches from 1,024.
    const client = bedrockClient(standIn);
    const policy = { type: 'text', text: 'p'.repeat(8_000) };
    const caseFile = { type: 'text', text: 'c'.repeat(4_000) };
    const sonnet = 'global.anthropic.claude-sonnet-4-5-20250929-v1:0';
    await invoke(
      client,
      invokeBody({ system: [{ ...policy, cache_control: { type: 'ephemeral' } }] }),
      sonnet,
    );

    // Act
    const later = await invoke(
      client,
      invokeBody({ system: [policy, { ...caseFile, cache_control: { type: 'ephemeral' } }] }),
      sonnet,
    );

    // Assess
    expect(later.usage).toMatchObject({ cache_read_input_tokens: 2_000, cache_creation_input_tokens: 1_000 });
  });

  it.each([
    [
      'a fifth breakpoint',
      'global.anthropic.claude-sonnet-4-5-20250929-v1:0',
      Array.from({ length: 5 }, (_, index) => ({
        type: 'text',
        text: `block ${index}`,
        cache_control: { type: 'ephemeral' },
      })),
      /A maximum of 4 blocks with cache_control may be provided\. Found 5\./,
    ],
    [
      'a 1-hour TTL the model does not take',
      'us.anthropic.claude-sonnet-4-20250514-v1:0',
      [{ type: 'text', text: 'policy', cache_control: { type: 'ephemeral', ttl: '1h' } }],
      /cache_control\.ttl: "1h" is not supported for this model; use 5m/,
    ],
    [
      'a 1-hour breakpoint after a 5-minute one',
      'global.anthropic.claude-sonnet-4-5-20250929-v1:0',
      [
        { type: 'text', text: 'policy', cache_control: { type: 'ephemeral' } },
        { type: 'text', text: 'case', cache_control: { type: 'ephemeral', ttl: '1h' } },
      ],
      /a "1h" block may not come after a "5m" one/,
    ],
  ])('refuses %s as a ValidationException', async (_case, modelId, system, message) => {
    // Act
    const failure = await failureOf(invoke(bedrockClient(standIn), invokeBody({ system }), modelId));

    // Assess
    expect(failure).toMatchObject({
      name: 'ValidationException',
      status: 400,
      message: expect.stringMatching(message),
    });
  });

  it('lets requests read an entry only once the request writing it has been answered', async () => {
    // Prepare: answers take 50 ms.
    const slow = await startBedrockStandIn({ speed: 1, latency: { firstTokenMs: 50, perOutputTokenMs: 0 } });
    const client = bedrockClient(slow);
    const system = [{ type: 'text', text: 's'.repeat(8_000), cache_control: { type: 'ephemeral' } }];
    const ask = (question: string) =>
      invoke(
        client,
        invokeBody({ system, messages: [{ role: 'user', content: question }] }),
        'global.anthropic.claude-sonnet-4-5-20250929-v1:0',
      );

    // Act
    const together = await Promise.all([ask('First?'), ask('Second?')]);
    const after = await ask('Third?');

    // Assess: both concurrent requests missed and wrote; the later one read.
    expect(together.map((answer) => answer.usage.cache_creation_input_tokens)).toEqual([2_000, 2_000]);
    expect(after.usage).toMatchObject({ cache_read_input_tokens: 2_000, cache_creation_input_tokens: 0 });
    await slow.close();
  });

  it('keeps a 1-hour entry past five minutes, while a 5-minute one expires', async () => {
    // Prepare
    const clock = { now: Date.parse('2026-11-26T10:00:00Z') };
    const timed = await startBedrockStandIn({ speed: 0, now: () => clock.now });
    const client = bedrockClient(timed);
    const opus = 'global.anthropic.claude-opus-4-6-v1';
    const cached = (text: string, ttl?: string) =>
      invokeBody({
        system: [
          { type: 'text', text, cache_control: { type: 'ephemeral', ...(ttl === undefined ? {} : { ttl }) } },
        ],
      });
    const long = cached('h'.repeat(17_000), '1h');
    const short = cached('m'.repeat(17_000));
    await invoke(client, long, opus);
    await invoke(client, short, opus);

    // Act: six minutes later.
    clock.now += 6 * 60_000;
    const again = { long: await invoke(client, long, opus), short: await invoke(client, short, opus) };

    // Assess
    expect(again.long.usage).toMatchObject({
      cache_read_input_tokens: 4_250,
      cache_creation_input_tokens: 0,
    });
    expect(again.short.usage).toMatchObject({
      cache_read_input_tokens: 0,
      cache_creation_input_tokens: 4_250,
    });
    await timed.close();
  });

  describe.each([
    ['an alias instead of an id', 'opus-4.6', invokeBody(), 'The provided model identifier is invalid.'],
    [
      'an unknown id',
      'global.anthropic.claude-opus-9-v1',
      invokeBody(),
      'The provided model identifier is invalid.',
    ],
    [
      'an EU profile from us-west-2',
      'eu.anthropic.claude-opus-4-6-v1',
      invokeBody(),
      'The provided model identifier is invalid.',
    ],
    [
      'the bare id of a model served through inference profiles only',
      'anthropic.claude-sonnet-4-6',
      invokeBody(),
      'Invocation of model ID anthropic.claude-sonnet-4-6 with on-demand throughput isn\u2019t supported. Retry your request with the ID or ARN of an inference profile that contains this model.',
    ],
    [
      'no anthropic_version',
      'global.anthropic.claude-opus-4-6-v1',
      invokeBody({ anthropic_version: undefined }),
      /required key \[anthropic_version\] not found/,
    ],
    [
      'an unknown API version',
      'global.anthropic.claude-opus-4-6-v1',
      invokeBody({ anthropic_version: '2099-01-01' }),
      /anthropic_version: "2099-01-01" is not a supported value/,
    ],
    [
      'a model field in the body',
      'global.anthropic.claude-opus-4-6-v1',
      invokeBody({ model: 'claude-opus-4-6' }),
      /extraneous key \[model\] is not permitted/,
    ],
    [
      'stream in the body',
      'global.anthropic.claude-opus-4-6-v1',
      invokeBody({ stream: true }),
      /extraneous key \[stream\]/,
    ],
    [
      'an unknown beta flag',
      'global.anthropic.claude-opus-4-6-v1',
      invokeBody({ anthropic_beta: ['files-api-2025-04-14'] }),
      'invalid beta flag',
    ],
    [
      'max_tokens over the model maximum',
      'global.anthropic.claude-haiku-4-5-20251001-v1:0',
      invokeBody({ max_tokens: 64_001 }),
      /max_tokens: 64001 > 64000/,
    ],
    [
      'input over 200K tokens without the 1M beta',
      'global.anthropic.claude-opus-4-6-v1',
      invokeBody({ messages: [{ role: 'user', content: 'x'.repeat(800_000) }] }),
      'Input is too long for requested model.',
    ],
    [
      'input over 200K tokens on a model without 1M context',
      'global.anthropic.claude-haiku-4-5-20251001-v1:0',
      invokeBody({
        anthropic_beta: ['context-1m-2025-08-07'],
        messages: [{ role: 'user', content: 'x'.repeat(800_000) }],
      }),
      'Input is too long for requested model.',
    ],
    [
      'input over 1M tokens even with the beta',
      'global.anthropic.claude-opus-4-6-v1',
      invokeBody({
        anthropic_beta: ['context-1m-2025-08-07'],
        messages: [{ role: 'user', content: 'x'.repeat(4_000_000) }],
      }),
      'Input is too long for requested model.',
    ],
  ])('a request with %s', (_case, modelId, body, message) => {
    it('is refused with 400 ValidationException', async () => {
      // Act
      const failure = await failureOf(invoke(bedrockClient(standIn), body, modelId));

      // Assess
      expect(failure).toMatchObject({ name: 'ValidationException', status: 400 });
      expect(failure.message).toMatch(message);
    });
  });

  describe.each(BODIES_BEDROCK_REFUSES)('a body with %s', (_case, changes, message) => {
    it('is refused with 400 ValidationException, as Bedrock refuses it', async () => {
      // Act
      const failure = await failureOf(invoke(bedrockClient(standIn), invokeBody(changes)));

      // Assess
      expect(failure).toMatchObject({ name: 'ValidationException', status: 400 });
      expect(failure.message).toMatch(message);
    });
  });

  it('serves a long document with the 1M beta', async () => {
    // Act
    const response = await invoke(
      bedrockClient(standIn),
      invokeBody({
        anthropic_beta: ['context-1m-2025-08-07'],
        messages: [{ role: 'user', content: 'x'.repeat(800_000) }],
      }),
    );

    // Assess
    expect(response.usage.input_tokens).toBe(200_003);
  });

  describe.each([
    [
      'credentials scoped to another region',
      { region: 'eu-west-1' },
      'UnrecognizedClientException',
      403,
      /scoped to a valid region/,
    ],
    [
      'a key without bedrock:InvokeModel',
      { accessKeyId: 'AKIDNOBEDROCK' },
      'AccessDeniedException',
      403,
      /not authorized to perform: bedrock:InvokeModel/,
    ],
  ])('a call with %s', (_case, overrides, name, status, message) => {
    it(`is refused with ${status} ${name}`, async () => {
      // Act
      const failure = await failureOf(invoke(bedrockClient(standIn, overrides), invokeBody()));

      // Assess
      expect(failure).toMatchObject({ name, status });
      expect(failure.message).toMatch(message);
    });
  });

  it.each([
    ['no Authorization header', {}],
    ['an Anthropic API key instead of SigV4', { 'x-api-key': 'sk-ant-api03-abc' }],
  ])(
    'refuses a call with %s as UnrecognizedClientException in Bedrock wire shape',
    async (_case, headers) => {
      // Act
      const response = await fetch(`${standIn.endpoint}/model/global.anthropic.claude-opus-4-6-v1/invoke`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify(invokeBody()),
      });

      // Assess
      expect(response.status).toBe(403);
      expect(response.headers.get('x-amzn-errortype')).toMatch(/^UnrecognizedClientException:/);
      expect(await response.json()).toEqual({
        message: 'The security token included in the request is invalid.',
      });
    },
  );

  it('shows quotas and answers at GET /_stand-in/state', async () => {
    // Act
    const response = await fetch(`${standIn.endpoint}/_stand-in/state`);

    // Assess
    const state = (await response.json()) as StandInState;
    expect(state.region).toBe('us-west-2');
    expect(state.responses['200']).toBeGreaterThan(0);
    expect(state.quotas).toContainEqual(
      expect.objectContaining({ modelId: 'global.anthropic.claude-opus-4-6-v1', tokensPerMinute: 2_000_000 }),
    );
  });
});

describe('Bedrock stand-in faults', () => {
  let standIn: BedrockStandIn;
  beforeAll(async () => {
    standIn = await startBedrockStandIn({ speed: 0, faults: { slowMs: 1 } });
  });
  afterAll(() => standIn.close());

  describe.each([
    ['ThrottlingException', 429],
    ['ModelNotReadyException', 429],
    ['ServiceUnavailableException', 503],
    ['InternalServerException', 500],
    ['ModelTimeoutException', 408],
    ['ModelErrorException', 424],
    ['ServiceQuotaExceededException', 400],
    ['ValidationException', 400],
    ['AccessDeniedException', 403],
    ['ResourceNotFoundException', 404],
  ])('a [[fault:%s]] marker', (name, status) => {
    it(`surfaces in the SDK as ${name} with status ${status}`, async () => {
      // Act
      const failure = await failureOf(
        invoke(
          bedrockClient(standIn),
          invokeBody({ messages: [{ role: 'user', content: `Hi [[fault:${name}]]` }] }),
        ),
      );

      // Assess
      expect(failure).toMatchObject({ name, status });
    });
  });

  it('throttles a record twice, then lets it through, and counts each record on its own', async () => {
    // Prepare
    const client = bedrockClient(standIn);
    const record = (text: string) =>
      invokeBody({ messages: [{ role: 'user', content: `${text} [[fault:ThrottlingException x2]]` }] });
    const attempt = (text: string) =>
      invoke(client, record(text)).then(
        () => 'ok',
        (error: Error) => error.name,
      );

    // Act
    const first = [await attempt('A'), await attempt('A'), await attempt('A'), await attempt('A')];
    const other = await attempt('B');

    // Assess
    expect(first).toEqual(['ThrottlingException', 'ThrottlingException', 'ok', 'ok']);
    expect(other).toBe('ThrottlingException');
  });

  it('slows a marked request without failing it', async () => {
    // Act
    const response = await invoke(
      bedrockClient(standIn),
      invokeBody({ messages: [{ role: 'user', content: 'Hi [[fault:slow x1]]' }] }),
    );

    // Assess
    expect(response.type).toBe('message');
    expect(standIn.state().injectedFaults.slow).toBe(1);
  });

  it('injects faults at the configured rate, from its seed', async () => {
    // Prepare
    const flaky = await startBedrockStandIn({
      speed: 0,
      seed: 7,
      faults: { rates: { InternalServerException: 0.5 } },
    });
    const client = bedrockClient(flaky);

    // Act
    const outcomes: string[] = [];
    for (let index = 0; index < 40; index += 1) {
      outcomes.push(
        await invoke(client, invokeBody()).then(
          () => 'ok',
          (error: Error) => error.name,
        ),
      );
    }
    await flaky.close();

    // Assess
    const failures = outcomes.filter((outcome) => outcome === 'InternalServerException').length;
    expect(failures).toBeGreaterThan(8);
    expect(failures).toBeLessThan(32);
    expect(new Set(outcomes)).toEqual(new Set(['ok', 'InternalServerException']));
  });
});

describe('Bedrock stand-in quotas', () => {
  it('admits on input + max_tokens, settles to input + output x 5, and refuses while the quota is in debt', async () => {
    // Prepare: 14 input tokens + max_tokens 10 = 24 reserved; the answer runs to 10 tokens: 14 + 50 = 64 charged.
    let clock = 1_000_000;
    const standIn = await startBedrockStandIn({
      speed: 0,
      quota: { tokensPerMinute: 100 },
      now: () => clock,
    });
    const client = bedrockClient(standIn);
    const body = invokeBody({ max_tokens: 10, messages: [{ role: 'user', content: 'x'.repeat(41) }] });
    const attempt = () =>
      invoke(client, body).then(
        () => 'ok',
        (error: Error) => `${error.name}: ${error.message}`,
      );

    // Act: 100 - 64 = 36 left, enough for a second request (24), which leaves 36 - 64 = -28.
    const answers = [await attempt(), await attempt(), await attempt()];
    clock += 30_000;
    const halfMinuteLater = await attempt();
    const state = standIn.state();
    await standIn.close();

    // Assess: from -28, 24 of room need 52 tokens of refill, 31.2 s.
    expect(answers).toEqual([
      'ok',
      'ok',
      'ThrottlingException: Too many tokens, please wait before trying again.',
    ]);
    expect(halfMinuteLater).toBe('ThrottlingException: Too many tokens, please wait before trying again.');
    expect(state.quotas).toEqual([
      expect.objectContaining({
        modelId: 'global.anthropic.claude-opus-4-6-v1',
        requests: 2,
        throttled: 2,
        tokensReserved: 48,
        tokensCharged: 128,
        availableTokens: 22,
      }),
    ]);
  });

  it('reserves cache reads and releases them at the end', async () => {
    // Prepare: a 4,100-token system prompt cached for Opus (minimum 4,096), read on the second call.
    const clock = 5_000;
    const standIn = await startBedrockStandIn({
      speed: 0,
      quota: { tokensPerMinute: 100_000 },
      now: () => clock,
    });
    const client = bedrockClient(standIn);
    const system = [{ type: 'text', text: 'r'.repeat(16_400), cache_control: { type: 'ephemeral' } }];
    const call = (question: string) =>
      invoke(
        client,
        invokeBody({ max_tokens: 100, system, messages: [{ role: 'user', content: question }] }),
      );

    // Act
    await call('first question');
    const before = standIn.state().quotas[0];
    const second = await call('second question');
    const after = standIn.state().quotas[0];
    await standIn.close();

    // Assess
    const read = second.usage.cache_read_input_tokens;
    expect(read).toBe(4_100);
    expect((after?.tokensReserved ?? 0) - (before?.tokensReserved ?? 0)).toBe(
      second.usage.input_tokens + read + 100,
    );
    expect((after?.tokensCharged ?? 0) - (before?.tokensCharged ?? 0)).toBe(
      second.usage.input_tokens + second.usage.output_tokens * 5,
    );
  });

  it('answers "Too many tokens per day" when the daily quota is spent', async () => {
    // Prepare
    let clock = 0;
    const standIn = await startBedrockStandIn({
      speed: 0,
      quota: { tokensPerMinute: 1_000_000, tokensPerDay: 300 },
      now: () => clock,
    });
    const client = bedrockClient(standIn);

    const body = invokeBody({ max_tokens: 50, messages: [{ role: 'user', content: 'x'.repeat(800) }] });

    // Act: 203 input + 50 reserved of 300 a day; at least 203 + 12 x 5 charged.
    await invoke(client, body);
    clock += 120_000;
    const failure = await failureOf(invoke(client, body));
    const [usage] = standIn.state().quotas;
    await standIn.close();

    // Assess
    expect(failure).toEqual({
      name: 'ThrottlingException',
      status: 429,
      message: 'Too many tokens per day, please wait before trying again.',
    });
    expect(usage?.throttledBy).toEqual({ tokensPerMinute: 0, tokensPerDay: 1, requestsPerMinute: 0 });
  });

  it('keeps a separate quota per inference profile and an optional requests-per-minute limit', async () => {
    // Prepare
    const standIn = await startBedrockStandIn({
      speed: 0,
      now: () => 0,
      quotaByModel: {
        'us.anthropic.claude-opus-4-6-v1': { tokensPerMinute: 1_000_000, requestsPerMinute: 1 },
      },
    });
    const client = bedrockClient(standIn);
    const attempt = (modelId: string) =>
      invoke(client, invokeBody(), modelId).then(
        () => 'ok',
        (error: Error) => error.message,
      );

    // Act
    const regional = [
      await attempt('us.anthropic.claude-opus-4-6-v1'),
      await attempt('us.anthropic.claude-opus-4-6-v1'),
    ];
    const global = await attempt('global.anthropic.claude-opus-4-6-v1');
    await standIn.close();

    // Assess
    expect(regional).toEqual(['ok', 'Too many requests, please wait before trying again.']);
    expect(global).toBe('ok');
  });

  it('keeps each source region’s quotas apart, serves only its regions, and gives the model’s answer from any', async () => {
    // Prepare: a global quota of one request's worth in us-east-1; us-west-2 takes the default.
    const opus = 'global.anthropic.claude-opus-4-6-v1';
    const standIn = await startBedrockStandIn({
      speed: 0,
      now: () => 0,
      regions: ['us-east-1'],
      quota: { tokensPerMinute: 1_000_000 },
      quotaByModel: { [`us-east-1#${opus}`]: { tokensPerMinute: 300 } },
    });
    const from = (region: string) => bedrockClient(standIn, { region });
    const attempt = (region: string) =>
      invoke(from(region), invokeBody(), opus).then(
        (answer) => answer.content[0]?.text,
        (error: Error) => error.message,
      );

    // Act
    const east = [await attempt('us-east-1'), await attempt('us-east-1')];
    const west = await attempt('us-west-2');
    const elsewhere = await attempt('eu-west-1');
    const quotas = standIn.state().quotas.map(({ region, modelId, tokensPerMinute, requests }) => ({
      region,
      modelId,
      tokensPerMinute,
      requests,
    }));
    await standIn.close();

    // Assess
    expect(east[1]).toBe('Too many tokens, please wait before trying again.');
    expect(west).toBe(east[0]);
    expect(elsewhere).toMatch(/scoped to a valid region, not 'eu-west-1'/);
    expect(quotas).toEqual([
      { region: 'us-east-1', modelId: opus, tokensPerMinute: 300, requests: 1 },
      { region: 'us-west-2', modelId: opus, tokensPerMinute: 1_000_000, requests: 1 },
    ]);
  });

  it("serves each model through the profiles its geographies offer: Sydney's AU profile, or APAC's", async () => {
    // Prepare
    const standIn = await startBedrockStandIn({ speed: 0, regions: ['ap-southeast-2', 'ap-southeast-1'] });
    const attempt = (region: string, modelId: string) =>
      invoke(bedrockClient(standIn, { region }), invokeBody(), modelId).then(
        () => 'ok',
        (error: Error) => error.message,
      );
    const haikuAu = 'au.anthropic.claude-haiku-4-5-20251001-v1:0';

    // Act
    const answers = [
      await attempt('ap-southeast-2', haikuAu),
      await attempt('ap-southeast-2', 'apac.anthropic.claude-opus-4-6-v1'),
      await attempt('ap-southeast-2', 'au.anthropic.claude-opus-4-6-v1'),
      await attempt('ap-southeast-1', haikuAu),
    ];
    await standIn.close();

    // Assess
    const invalid = 'The provided model identifier is invalid.';
    expect(answers).toEqual(['ok', 'ok', invalid, invalid]);
  });

  it('reports the requests in flight and their peak', async () => {
    // Prepare: answers that take far longer than six requests take to arrive, however busy the machine.
    const standIn = await startBedrockStandIn({ latency: { firstTokenMs: 20_000, perOutputTokenMs: 0 } });
    const client = bedrockClient(standIn);

    // Act
    const calls = Array.from({ length: 6 }, () =>
      invoke(client, invokeBody({ max_tokens: 20 })).catch(() => 'ended by close'),
    );
    await vi.waitFor(() => expect(standIn.state().quotas[0]?.inFlight).toBe(6), { timeout: 15_000 });
    const [usage] = standIn.state().quotas;
    await standIn.close();
    await Promise.all(calls);

    // Assess
    expect(usage).toMatchObject({ inFlight: 6, peakInFlight: 6, requests: 6 });
  });
});

describe('Bedrock stand-in latency', () => {
  it.each([
    [1, 50 + 2 * 12],
    [0, 0],
  ])('at speed %f reports first-token plus per-token latency, %i ms', async (speed, expected) => {
    // Prepare
    const standIn = await startBedrockStandIn({ speed, latency: { firstTokenMs: 50, perOutputTokenMs: 2 } });

    // Act
    const response = await fetch(`${standIn.endpoint}/model/global.anthropic.claude-opus-4-6-v1/invoke`, {
      method: 'POST',
      headers: {
        authorization: `AWS4-HMAC-SHA256 Credential=AKID/20261125/us-west-2/bedrock/aws4_request, SignedHeaders=host, Signature=00`,
      },
      body: JSON.stringify(invokeBody({ max_tokens: 12 })),
    });
    await standIn.close();

    // Assess
    expect(response.status).toBe(200);
    expect(response.headers.get('x-amzn-bedrock-invocation-latency')).toBe(String(expected));
  });
});

describe('Bedrock stand-in latency from the catalog', () => {
  it.each(defaultCatalog.models.map((model) => [model.key, model] as const))(
    '%s answers at its catalog latency, scaled by the speed',
    async (_key, model) => {
      // Prepare
      const speed = 0.01;
      const standIn = await startBedrockStandIn({ speed });

      // Act
      const response = await fetch(`${standIn.endpoint}/model/global.${model.bedrockId}/invoke`, {
        method: 'POST',
        headers: {
          authorization: `AWS4-HMAC-SHA256 Credential=AKID/20261125/us-west-2/bedrock/aws4_request, SignedHeaders=host, Signature=00`,
        },
        body: JSON.stringify(invokeBody({ max_tokens: 300 })),
      });
      const answer = (await response.json()) as { usage: { output_tokens: number } };
      await standIn.close();

      // Assess
      const expected = Math.round(answerSeconds(model.latency, answer.usage.output_tokens) * 1000 * speed);
      expect(response.headers.get('x-amzn-bedrock-invocation-latency')).toBe(String(expected));
      expect(expected).toBeGreaterThan(0);
    },
  );
});

describe('Bedrock stand-in with the Anthropic Bedrock SDK (HTTP/1.1)', () => {
  let standIn: BedrockStandIn;
  beforeAll(async () => {
    standIn = await startBedrockStandIn({ speed: 0 });
  });
  afterAll(() => standIn.close());

  const anthropic = () =>
    new AnthropicBedrock({
      awsRegion: standIn.region,
      awsAccessKey: LOCAL_CREDENTIALS.accessKeyId,
      awsSecretKey: LOCAL_CREDENTIALS.secretAccessKey,
      baseURL: standIn.endpoint,
      maxRetries: 0,
    });

  it('answers messages.create', async () => {
    // Act
    const message = await anthropic().messages.create({
      model: 'global.anthropic.claude-opus-4-6-v1',
      max_tokens: 64,
      messages: [{ role: 'user', content: 'Hello from the Anthropic SDK' }],
    });

    // Assess
    expect(message.type).toBe('message');
    expect(message.content[0]?.type).toBe('text');
    expect(message.usage.input_tokens).toBeGreaterThan(0);
  });

  it('sends betas in the body, which the stand-in accepts for a long document', async () => {
    // Act
    const message = await anthropic().beta.messages.create({
      model: 'global.anthropic.claude-sonnet-4-5-20250929-v1:0',
      max_tokens: 64,
      betas: ['context-1m-2025-08-07'],
      messages: [{ role: 'user', content: 'y'.repeat(900_000) }],
    });

    // Assess
    expect(message.usage.input_tokens).toBe(225_003);
  });

  it('surfaces a stand-in throttle as the SDK rate-limit error', async () => {
    // Act
    const call = anthropic().messages.create({
      model: 'global.anthropic.claude-opus-4-6-v1',
      max_tokens: 64,
      messages: [{ role: 'user', content: 'Hi [[fault:ThrottlingException]]' }],
    });

    // Assess
    await expect(call).rejects.toMatchObject({ status: 429 });
  });
});

describe('Bedrock stand-in body limit', () => {
  it('refuses a body over the request limit with 400 ValidationException', async () => {
    // Prepare: the shipped limit is 25,000,000 bytes; a catalog with a small one keeps the test light.
    const standIn = await startBedrockStandIn({
      speed: 0,
      catalog: catalogWith((data) => {
        data.requestBodyLimitBytes = 5_000;
      }),
    });

    // Act
    const failure = await failureOf(
      invoke(
        bedrockClient(standIn),
        invokeBody({ messages: [{ role: 'user', content: 'z'.repeat(6_000) }] }),
      ),
    );
    await standIn.close();

    // Assess
    expect(failure).toMatchObject({ name: 'ValidationException', status: 400 });
    expect(failure.message).toMatch(/more than the 5000-byte limit/);
  });
});
