import { describe, expect, it } from 'vitest';
import { ModelSelectionError, RecordRejectedError } from '../../shared/errors.ts';
import { buildInvocation, type JobModelSettings } from '../../shared/request/build-request.ts';
import { bodyOfTextBytes, catalogWith, messagesBody, promptRecord } from '../support/factories.ts';
import { thrown } from '../support/thrown.ts';

const job: JobModelSettings = {
  model: 'opus-4.6',
  region: 'us-west-2',
  endpoint: 'global',
  defaultMaxTokens: 1024,
};

const rejection = (build: () => unknown): RecordRejectedError => thrown(RecordRejectedError, build);

describe('buildInvocation', () => {
  it('always sends anthropic_version bedrock-2023-05-31 first, and the job default max_tokens', () => {
    // Act
    const invocation = buildInvocation(
      promptRecord({ body: { messages: [{ role: 'user', content: 'Hi' }] } }),
      job,
    );

    // Assess
    expect(invocation.modelId).toBe('global.anthropic.claude-opus-4-6-v1');
    expect(invocation.body).toEqual({
      anthropic_version: 'bedrock-2023-05-31',
      messages: [{ role: 'user', content: 'Hi' }],
      max_tokens: 1024,
    });
    expect(Object.keys(invocation.body)[0]).toBe('anthropic_version');
    expect(JSON.parse(invocation.bodyJson)).toEqual(invocation.body);
  });

  it('replaces an Anthropic API anthropic_version with the Bedrock one', () => {
    // Act
    const invocation = buildInvocation(
      promptRecord({ body: messagesBody({ anthropic_version: '2023-06-01' }) }),
      job,
    );

    // Assess
    expect(invocation.body.anthropic_version).toBe('bedrock-2023-05-31');
  });

  it('keeps the record max_tokens over the default', () => {
    // Act
    const invocation = buildInvocation(promptRecord({ body: messagesBody({ max_tokens: 77 }) }), job);

    // Assess
    expect(invocation.body.max_tokens).toBe(77);
    expect(invocation.maxTokens).toBe(77);
  });

  it('strips the fields Bedrock rejects from Anthropic-form params and passes the rest through', () => {
    // Prepare
    const params = messagesBody({
      model: 'claude-haiku-4-5',
      stream: true,
      temperature: 0.3,
      tools: [],
      metadata: { user_id: 'u' },
    });

    // Act
    const invocation = buildInvocation(
      promptRecord({ family: 'anthropic', modelOverride: 'claude-haiku-4-5', body: params }),
      job,
    );

    // Assess
    expect(invocation.body).not.toHaveProperty('model');
    expect(invocation.body).not.toHaveProperty('stream');
    expect(invocation.body).toMatchObject({ temperature: 0.3, tools: [], metadata: { user_id: 'u' } });
    expect(invocation.modelId).toBe('global.anthropic.claude-haiku-4-5-20251001-v1:0');
  });

  it('resolves a line model override against the job region and endpoint', () => {
    // Act
    const invocation = buildInvocation(promptRecord({ modelOverride: 'claude-sonnet-4-5-20250929' }), {
      ...job,
      region: 'eu-west-1',
      endpoint: 'regional',
    });

    // Assess
    expect(invocation.modelId).toBe('eu.anthropic.claude-sonnet-4-5-20250929-v1:0');
    expect(invocation.resolved.endpoint).toBe('regional');
  });

  it('refuses a line model the job region does not offer before any call', () => {
    // Act
    const build = () =>
      buildInvocation(promptRecord({ modelOverride: 'claude-haiku-4-5' }), {
        ...job,
        region: 'ap-northeast-1',
      });

    // Assess
    expect(build).toThrow(ModelSelectionError);
    expect(build).toThrow(/Haiku 4\.5 is not available in JP/);
  });

  it('keeps allowed betas from the body and sends them only in the body', () => {
    // Act
    const invocation = buildInvocation(
      promptRecord({ body: messagesBody({ anthropic_beta: ['interleaved-thinking-2025-05-14'] }) }),
      job,
    );

    // Assess
    expect(invocation.body.anthropic_beta).toEqual(['interleaved-thinking-2025-05-14']);
    expect(invocation).not.toHaveProperty('headers');
  });

  it('refuses a beta Bedrock does not accept', () => {
    // Act
    const error = rejection(() =>
      buildInvocation(
        promptRecord({ body: messagesBody({ anthropic_beta: ['files-api-2025-04-14'] }) }),
        job,
      ),
    );

    // Assess
    expect(error.code).toBe('UNKNOWN_BETA');
    expect(error.message).toMatch(/Remove it from anthropic_beta/);
  });

  it('refuses max_tokens above what the model can produce, naming the limit', () => {
    // Act
    const error = rejection(() =>
      buildInvocation(
        promptRecord({ modelOverride: 'haiku-4.5', body: messagesBody({ max_tokens: 100_000 }) }),
        job,
      ),
    );

    // Assess
    expect(error.code).toBe('MAX_TOKENS_TOO_LARGE');
    expect(error.message).toMatch(/Set max_tokens to 64000 or less/);
  });

  it('adds the 1M beta once, after the caller own betas, to a record that may exceed 200K tokens', () => {
    // Prepare
    const body = bodyOfTextBytes(650_000, { anthropic_beta: ['context-1m-2025-08-07', 'effort-2025-11-24'] });

    // Act
    const invocation = buildInvocation(promptRecord({ body }), job);

    // Assess
    expect(invocation.body.anthropic_beta).toEqual(['context-1m-2025-08-07', 'effort-2025-11-24']);
    expect(invocation.longContext).toBe(true);
  });

  it('refuses a body over the Bedrock request limit', () => {
    // Prepare
    const catalog = catalogWith((data) => {
      data.requestBodyLimitBytes = 1_000;
    });

    // Act
    const error = rejection(() =>
      buildInvocation(promptRecord({ body: bodyOfTextBytes(2_000) }), job, catalog),
    );

    // Assess
    expect(error.code).toBe('BODY_TOO_LARGE');
    expect(error.message).toMatch(/over Bedrock's 1,000-byte limit/);
  });
});
