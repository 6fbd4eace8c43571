import { afterEach, describe, expect, it, vi } from 'vitest';

const resources = {
  AWS_REGION: 'us-west-2',
  BEDROCK_REGION: 'us-west-2',
  BUCKET_NAME: 'bucket',
  LEDGER_TABLE_NAME: 'ledger',
  RECORD_QUEUE_URL: 'https://sqs.us-west-2.amazonaws.com/000000000000/records',
  RECORD_DLQ_URL: 'https://sqs.us-west-2.amazonaws.com/000000000000/records-dlq',
  FINALIZE_QUEUE_URL: 'https://sqs.us-west-2.amazonaws.com/000000000000/finalize',
  BATCH_ROLE_ARN: 'arn:aws:iam::000000000000:role/bedrock-batch',
};

afterEach(() => {
  vi.unstubAllEnvs();
  vi.resetModules();
});

describe.each(['enqueue', 'worker', 'finalizer', 'sweeper', 'batch'])('the %s Lambda entry point', (name) => {
  it('builds its handler at cold start from the environment', async () => {
    // Prepare
    for (const [variable, value] of Object.entries(resources)) vi.stubEnv(variable, value);

    // Act
    const entry = (await import(`../../functions/${name}/index.ts`)) as { handler: Record<string, unknown> };

    // Assess: a middy handler, wearing its middlewares.
    expect(entry.handler).toEqual(
      expect.objectContaining({
        use: expect.any(Function),
        before: expect.any(Function),
        onError: expect.any(Function),
      }),
    );
  });
});

describe('a Lambda entry point with a bad setting', () => {
  it('stops at cold start naming the setting', async () => {
    // Prepare
    for (const [variable, value] of Object.entries(resources)) vi.stubEnv(variable, value);
    vi.stubEnv('BEDROCK_MODEL', 'haiku-4.5');
    vi.stubEnv('BEDROCK_REGION', 'ap-northeast-1');

    // Act
    const load = import('../../functions/worker/index.ts');

    // Assess
    await expect(load).rejects.toThrow(
      /BEDROCK_MODEL is not usable: Claude Haiku 4\.5 is not available in JP/,
    );
  });
});
