import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalCloud, startLocalCloud } from '../../local/cloud/local-cloud.ts';
import { type LocalPipeline, startLocalPipeline } from '../../local/pipeline/local-pipeline.ts';
import { defaultCatalog } from '../../shared/catalog/catalog.ts';
import { outputLocations } from '../../shared/contract/storage-layout.ts';
import { nanoUsdToUsd } from '../../shared/cost/cost.ts';
import { jobIdOf } from '../../shared/pipeline/job.ts';

let cloud: LocalCloud;
let pipeline: LocalPipeline;

beforeAll(async () => {
  process.env.POWERTOOLS_METRICS_DISABLED = 'true';
  process.env.POWERTOOLS_LOG_LEVEL = 'ERROR';
  // Answers take 30 ms: four workers' first calls overlap, as they would on Bedrock.
  cloud = await startLocalCloud({
    bedrock: { speed: 1, latency: { firstTokenMs: 30, perOutputTokenMs: 0 } },
  });
  pipeline = await startLocalPipeline(cloud, { worker: { concurrency: 4, batchSize: 10 } });
}, 120_000);

afterAll(async () => {
  await pipeline?.stop();
  await cloud?.stop();
});

/** About 6,000 tokens of instruction, above Opus's 4,096-token minimum, then a question per record. */
const POLICY = `Classify the ticket under the refund policy. ${'Refunds within 30 days of purchase. '.repeat(660)}`;

describe('a file whose records share a long instruction', () => {
  it('writes it to the cache once and reads it for every other record, and counts and prices exactly that', async () => {
    // Prepare
    const records = 60;
    const body = Array.from({ length: records }, (_, index) =>
      JSON.stringify({ id: `t${index}`, system: POLICY, prompt: `Ticket ${index}: refund?`, max_tokens: 32 }),
    ).join('\n');
    const key = 'inputs/tickets.jsonl';

    // Act
    const put = await cloud.clients.s3.send(
      new PutObjectCommand({ Bucket: pipeline.resources.bucket, Key: key, Body: body }),
    );
    await pipeline.completion(key, 120_000);

    // Assess: the stand-in answered one write and 59 reads of the same prefix.
    const answered = cloud.bedrock.state().distinctAnswers;
    const prefix = answered.cacheCreationInputTokens;
    expect(answered.requests).toBe(records);
    expect(prefix).toBeGreaterThan(4_096);
    expect(answered.cacheReadInputTokens).toBe(prefix * (records - 1));
    const jobId = jobIdOf(pipeline.resources.bucket, key, (put.ETag ?? '').replaceAll('"', ''));
    const { manifest } = outputLocations({ jobId, source: { bucket: pipeline.resources.bucket, key } });
    const object = await cloud.clients.s3.send(
      new GetObjectCommand({ Bucket: pipeline.resources.bucket, Key: manifest.key }),
    );
    const written = JSON.parse((await object.Body?.transformToString()) ?? '{}') as Record<string, number> & {
      cache: Record<string, number>;
    };
    expect(written).toMatchObject({
      successRecordCount: records,
      cacheCreationInputTokenCount: prefix,
      cacheReadInputTokenCount: prefix * (records - 1),
      inputTokenCount: answered.inputTokens,
      outputTokenCount: answered.outputTokens,
    });
    // Each request is far under 200K tokens: standard rates, in nano-dollars per token (global: no premium).
    const prices = defaultCatalog.findModel('opus-4.6')?.prices.standard;
    if (prices === undefined) throw new Error('no Opus in the catalog');
    const perToken = (usdPerMillion: number) => Math.round(usdPerMillion * 1_000);
    const expected =
      answered.inputTokens * perToken(prices.input) +
      answered.outputTokens * perToken(prices.output) +
      answered.cacheCreationInputTokens * perToken(prices.cacheWrite) +
      answered.cacheReadInputTokens * perToken(prices.cacheRead);
    expect(written.estimatedCostUsd).toBe(nanoUsdToUsd(expected));
    // Without the cache every cached token would have been plain input.
    const uncached =
      (answered.inputTokens + answered.cacheCreationInputTokens + answered.cacheReadInputTokens) *
        perToken(prices.input) +
      answered.outputTokens * perToken(prices.output);
    expect(written.cache).toEqual({
      hitRate: Math.round(((records - 1) / records) * 10_000) / 10_000,
      hitRecords: records - 1,
      missRecords: 1,
      writeTokens: prefix,
      readTokens: prefix * (records - 1),
      uncachedCostUsd: nanoUsdToUsd(uncached),
      savingUsd: nanoUsdToUsd(uncached - expected),
    });
  }, 120_000);
});
