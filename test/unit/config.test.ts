import { describe, expect, it } from 'vitest';
import { jobDefaultsOf } from '../../functions/environment.ts';
import {
  DEFAULT_TOKENS_PER_MINUTE,
  enqueueSettings,
  loadConfig,
  retryPolicyOf,
  workerSettings,
} from '../../shared/config.ts';
import { ConfigurationError } from '../../shared/errors.ts';
import { thrown } from '../support/thrown.ts';

const workerEnv = {
  BEDROCK_REGION: 'us-west-2',
  BUCKET_NAME: 'bucket',
  LEDGER_TABLE_NAME: 'ledger',
  RECORD_QUEUE_URL: 'http://127.0.0.1:1/queue/records',
  FINALIZE_QUEUE_URL: 'http://127.0.0.1:1/queue/finalize',
};

const configurationError = (load: () => unknown): ConfigurationError => thrown(ConfigurationError, load);

describe('loadConfig', () => {
  it('applies the documented defaults', () => {
    // Act
    const config = loadConfig(workerSettings, workerEnv);

    // Assess
    expect(config).toEqual({
      ...workerEnv,
      BEDROCK_MODEL: 'opus-4.6',
      BEDROCK_ENDPOINT: 'global',
      DEFAULT_MAX_TOKENS: 4096,
      MAX_ATTEMPTS: 10,
      LIMITED_ATTEMPTS: 3,
      BACKOFF_BASE_SECONDS: 2,
      BACKOFF_MAX_SECONDS: 900,
      LATER_DELAY_SECONDS: 60,
      DAILY_QUOTA_WAIT_SECONDS: 900,
      TOKENS_PER_MINUTE: DEFAULT_TOKENS_PER_MINUTE,
      OUTPUT_TOKEN_BURNDOWN: 5,
      READ_SERVICE_QUOTAS: false,
      QUOTA_SHARE: 1,
      LEASE_SECONDS: 960,
      RETENTION_DAYS: 30,
      SDK_MAX_ATTEMPTS: 2,
      COUNT_TOKENS_ABOVE: 20_000,
    });
    expect(retryPolicyOf(config)).toEqual({
      maxAttempts: 10,
      limitedAttempts: 3,
      baseDelaySeconds: 2,
      maxDelaySeconds: 900,
      laterDelaySeconds: 60,
      dailyQuotaWaitSeconds: 900,
    });
  });

  it('reads numbers from their environment text', () => {
    // Act
    const config = loadConfig(workerSettings, {
      ...workerEnv,
      TOKENS_PER_MINUTE: '450000',
      DEFAULT_MAX_TOKENS: '1024',
      MAX_DAILY_COST_USD: '25.5',
    });

    // Assess
    expect(config.TOKENS_PER_MINUTE).toBe(450_000);
    expect(config.DEFAULT_MAX_TOKENS).toBe(1_024);
    expect(config.MAX_DAILY_COST_USD).toBe(25.5);
  });

  describe.each([
    [
      'no region',
      { BEDROCK_REGION: undefined },
      /BEDROCK_REGION is missing \(the AWS region that makes the Bedrock calls, e\.g\. us-west-2 \(never defaulted\)\)/,
    ],
    ['an empty bucket name', { BUCKET_NAME: '  ' }, /BUCKET_NAME is empty/],
    [
      'a bad endpoint',
      { BEDROCK_ENDPOINT: 'cross-region' },
      /BEDROCK_ENDPOINT .*"global"\|"regional"\|"in-region"/,
    ],
    ['a fractional max_tokens', { DEFAULT_MAX_TOKENS: '12.5' }, /DEFAULT_MAX_TOKENS must be a whole number/],
    ['a negative quota', { TOKENS_PER_MINUTE: '-5' }, /TOKENS_PER_MINUTE must be positive/],
    ['a quota share over 1', { QUOTA_SHARE: '1.5' }, /QUOTA_SHARE must be at most 1/],
    ['a daily spending cap of nothing', { MAX_DAILY_COST_USD: '0' }, /MAX_DAILY_COST_USD must be above 0/],
    ['a daily spending cap in words', { MAX_DAILY_COST_USD: 'ten' }, /MAX_DAILY_COST_USD must be a number/],
    [
      'a reading of quotas that is not a yes or no',
      { READ_SERVICE_QUOTAS: 'yes' },
      /READ_SERVICE_QUOTAS must be true or false/,
    ],
    ['an unknown endpoint kind in the list', { BEDROCK_ENDPOINTS: 'global,everywhere' }, /BEDROCK_ENDPOINTS/],
    [
      'a backoff over the SQS limit',
      { BACKOFF_MAX_SECONDS: '50000' },
      /BACKOFF_MAX_SECONDS must be at most 43200/,
    ],
    ['an unknown model', { BEDROCK_MODEL: 'gpt-4' }, /BEDROCK_MODEL is not usable: Unknown model "gpt-4"/],
    [
      'a model the region lacks',
      { BEDROCK_MODEL: 'haiku-4.5', BEDROCK_REGION: 'ap-northeast-1' },
      /BEDROCK_MODEL is not usable: Claude Haiku 4\.5 is not available in JP/,
    ],
    [
      'a prefix against the endpoint',
      { BEDROCK_MODEL: 'us.anthropic.claude-opus-4-6-v1' },
      /asks for the regional endpoint but this job uses the global endpoint/,
    ],
  ])('with %s', (_case, overrides, message) => {
    it('stops with a ConfigurationError that names the setting', () => {
      // Act
      const error = configurationError(() => loadConfig(workerSettings, { ...workerEnv, ...overrides }));

      // Assess
      expect(error.message).toMatch(message);
    });
  });

  it('stops the enqueue function on a default caching that is neither auto nor off', () => {
    // Act
    const error = configurationError(() =>
      loadConfig(enqueueSettings, { ...workerEnv, DEFAULT_CACHE: 'on' }),
    );

    // Assess
    expect(error.message).toMatch(/DEFAULT_CACHE .*"auto"\|"off"/);
  });

  it('stops the enqueue function on a maximum error rate over 1, and defaults it to half', () => {
    // Act
    const error = configurationError(() =>
      loadConfig(enqueueSettings, { ...workerEnv, MAX_ERROR_RATE: '1.5' }),
    );
    const defaults = jobDefaultsOf(loadConfig(enqueueSettings, workerEnv));

    // Assess
    expect(error.message).toMatch(/MAX_ERROR_RATE must be at most 1/);
    expect(defaults.maxErrorRate).toBe(0.5);
  });

  it('lists every problem at once', () => {
    // Act
    const error = configurationError(() => loadConfig(enqueueSettings, {}));

    // Assess
    expect(error.problems.map((problem) => problem.split(' ')[0])).toEqual([
      'BEDROCK_REGION',
      'BUCKET_NAME',
      'LEDGER_TABLE_NAME',
      'RECORD_QUEUE_URL',
      'FINALIZE_QUEUE_URL',
    ]);
  });
});
