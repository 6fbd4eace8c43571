import { describe, expect, it } from 'vitest';
import { loadConfig, workerSettings } from '../../shared/config.ts';
import { classifyFailure } from '../../shared/failures.ts';
import { buildInvocation, type JobModelSettings } from '../../shared/request/build-request.ts';
import { awsError, messagesBody, promptRecord } from '../support/factories.ts';

/**
 * The common mistakes of calling Claude on Bedrock, one by one: each is impossible to make through the
 * pipeline, or is caught before any call with the fix in the message.
 */
const job: JobModelSettings = {
  model: 'opus-4.6',
  region: 'us-west-2',
  endpoint: 'global',
  defaultMaxTokens: 512,
};

describe('the common mistakes of calling Claude on Bedrock', () => {
  it('wrong model ID format: refused before the call, pointing at the full id', () => {
    const build = () => buildInvocation(promptRecord({ modelOverride: 'claude-opus-4.6' }), job);
    expect(build).toThrow(
      /Unknown model "claude-opus-4\.6".*full Bedrock id such as global\.anthropic\.claude-opus-4-6-v1/,
    );
  });

  it('wrong model ID format that reaches Bedrock anyway: an error record at once, with the same fix', () => {
    const failure = classifyFailure(
      awsError('ValidationException', 400, 'The provided model identifier is invalid.'),
    );
    expect(failure).toMatchObject({ retry: 'never', httpStatus: 400 });
    expect(failure.message).toMatch(/global\.anthropic\.claude-opus-4-6-v1/);
  });

  it('missing anthropic_version: every body carries bedrock-2023-05-31', () => {
    const invocation = buildInvocation(promptRecord({ body: messagesBody() }), job);
    expect(JSON.parse(invocation.bodyJson).anthropic_version).toBe('bedrock-2023-05-31');
  });

  it('using a direct API key: the auth failure says Bedrock needs AWS IAM credentials', () => {
    const failure = classifyFailure(
      awsError('UnrecognizedClientException', 403, 'The security token included in the request is invalid.'),
    );
    expect(failure.retry).toBe('never');
    expect(failure.message).toMatch(/AWS IAM credentials \(SigV4\), not an Anthropic API key/);
  });

  it('anthropic-beta header instead of body field: betas exist only as the body array', () => {
    const invocation = buildInvocation(
      promptRecord({ body: messagesBody({ messages: [{ role: 'user', content: 'x'.repeat(700_000) }] }) }),
      job,
    );
    expect(JSON.parse(invocation.bodyJson).anthropic_beta).toEqual(['context-1m-2025-08-07']);
    expect(Object.keys(invocation)).not.toContain('headers');
  });

  it.each([
    ['sonnet-4.5', 'ap-southeast-1', /Claude Sonnet 4\.5 is not available in APAC/],
    ['haiku-4.5', 'ap-northeast-1', /Claude Haiku 4\.5 is not available in JP/],
    ['haiku-4.5', 'ap-south-1', /Claude Haiku 4\.5 is not available in APAC/],
  ])(
    'model not available in the chosen region: %s in %s is refused with where to go instead',
    (model, region, message) => {
      const build = () => buildInvocation(promptRecord(), { ...job, model, region });
      expect(build).toThrow(message);
      expect(build).toThrow(/Call it from a region in US \(e\.g\. us-east-1\)/);
    },
  );

  it('forgetting the region: no default, the functions do not start without one', () => {
    expect(() => buildInvocation(promptRecord(), { ...job, region: '' })).toThrow(
      /Always name the region explicitly/,
    );
    expect(() =>
      loadConfig(workerSettings, {
        BUCKET_NAME: 'b',
        LEDGER_TABLE_NAME: 't',
        RECORD_QUEUE_URL: 'q',
        FINALIZE_QUEUE_URL: 'f',
      }),
    ).toThrow(/BEDROCK_REGION is missing/);
  });
});
