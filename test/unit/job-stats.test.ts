import { describe, expect, it } from 'vitest';
import type { StoredResult } from '../../shared/core/model.ts';
import { NO_RETRIES } from '../../shared/core/retries.ts';
import { JobStatsCollector } from '../../shared/pipeline/job-stats.ts';
import { awsError } from '../support/factories.ts';
import { textResponse } from '../support/memory-ports.ts';
import { pipelineHarness } from '../support/pipeline-harness.ts';

const START = Date.parse('2026-11-25T10:00:00Z');

function result(
  line: number,
  secondsAfterStart: number,
  timing: { modelId?: string; latencyMs?: number; attempts?: number },
): StoredResult {
  return {
    subject: { recordId: `r${line}`, lineNumber: line, family: 'plain' },
    outcome: { status: 'succeeded', response: { content: [] } },
    completion: {
      lineNumber: line,
      status: 'succeeded',
      family: 'plain',
      inputTokens: 10,
      outputTokens: 5,
      cacheCreationInputTokens: 1,
      cacheReadInputTokens: 2,
      costNanoUsd: 1_000_000,
      uncachedCostNanoUsd: 1_100_000,
    },
    timing: {
      finishedAt: new Date(START + secondsAfterStart * 1000).toISOString(),
      attempts: timing.attempts ?? 1,
      ...timing,
    },
  };
}

describe('JobStatsCollector', () => {
  it('sums tokens and cost per model, and leaves records that never reached a model out of it', () => {
    // Prepare
    const stats = new JobStatsCollector(START);

    // Act
    stats.add(result(1, 1, { modelId: 'global.a', latencyMs: 100 }));
    stats.add(result(2, 2, { modelId: 'global.a', latencyMs: 300 }));
    stats.add(result(3, 2, { modelId: 'us.b', latencyMs: 2_000, attempts: 3 }));
    stats.add(result(4, 0, { attempts: 0 }));
    const summary = stats.summary({
      retries: { ...NO_RETRIES, retried: 2, bedrockThrottles: 1, budgetWaits: 4 },
    });

    // Assess
    expect(summary.perModel).toEqual([
      {
        modelId: 'global.a',
        records: 2,
        inputTokens: 20,
        outputTokens: 10,
        cacheWriteTokens: 2,
        cacheReadTokens: 4,
        estimatedCostUsd: 0.002,
      },
      {
        modelId: 'us.b',
        records: 1,
        inputTokens: 10,
        outputTokens: 5,
        cacheWriteTokens: 1,
        cacheReadTokens: 2,
        estimatedCostUsd: 0.001,
      },
    ]);
    expect(summary.attempts).toEqual({ retriedRecords: 1, maxAttempts: 3 });
    expect(summary.retries).toEqual({ ...NO_RETRIES, retried: 2, bedrockThrottles: 1, budgetWaits: 4 });
    expect(summary.throughput).toEqual({ bucketSeconds: 1, completed: [1, 1, 2] });
  });

  it('spans the calls from the start of the first to the last answer, through a checkpoint', () => {
    // Prepare
    const stats = new JobStatsCollector(START);
    stats.add(result(1, 3, { modelId: 'm', latencyMs: 1_500 }));
    stats.add(result(2, 2, { modelId: 'm', latencyMs: 400 }));

    // Act
    const restored = JobStatsCollector.restore(START, JSON.parse(JSON.stringify(stats.state())));
    restored.add(result(3, 9, { modelId: 'm', latencyMs: 1_000 }));
    restored.add(result(4, 10, { attempts: 0 }));
    const { calls } = restored.summary({ retries: NO_RETRIES });

    // Assess: record 2 started at 1.6 s, record 3 answered at 9 s; record 4 made no call
    expect(calls).toEqual({
      firstStartedAt: new Date(START + 1_500).toISOString(),
      lastAnsweredAt: new Date(START + 9_000).toISOString(),
      spanSeconds: 7.5,
    });
  });

  it('counts errored records by code, commonest first with the first line of each, through a checkpoint', () => {
    // Prepare
    const errored = (line: number, code: string): StoredResult => {
      const base = result(line, 1, { attempts: 1 });
      return {
        ...base,
        outcome: {
          status: 'errored',
          failure: { code, message: code, httpStatus: 400, anthropicType: 'invalid_request_error' },
        },
        completion: { ...base.completion, status: 'errored' },
      };
    };
    const stats = new JobStatsCollector(START);
    stats.add(errored(2, 'INVALID_JSON'));
    stats.add(result(3, 1, { modelId: 'm', latencyMs: 10 }));
    stats.add(errored(4, 'ValidationException'));

    // Act
    const restored = JobStatsCollector.restore(START, JSON.parse(JSON.stringify(stats.state())));
    restored.add(errored(7, 'ValidationException'));
    restored.add({ ...result(8, 1, { attempts: 0 }), outcome: { status: 'canceled' } });
    const { errors } = restored.summary({ retries: NO_RETRIES });

    // Assess
    expect(errors).toEqual([
      { code: 'ValidationException', records: 2, firstLine: 4 },
      { code: 'INVALID_JSON', records: 1, firstLine: 2 },
    ]);
    expect(restored.erroredWith('ValidationException')).toBe(2);
    expect(restored.erroredWith('INPUT_CHANGED')).toBe(0);
  });

  it('has no span when no call was made', () => {
    const stats = new JobStatsCollector(START);
    stats.add(result(1, 1, { attempts: 0 }));
    expect(stats.summary({ retries: NO_RETRIES }).calls).toEqual({
      firstStartedAt: null,
      lastAnsweredAt: null,
      spanSeconds: null,
    });
  });

  it('gives latency percentiles within a quarter, and the exact maximum', () => {
    // Prepare
    const stats = new JobStatsCollector(START);

    // Act
    for (let index = 1; index <= 100; index += 1)
      stats.add(result(index, 0, { modelId: 'm', latencyMs: index * 10 }));
    const { latencyMs } = stats.summary({ retries: NO_RETRIES });

    // Assess
    expect(latencyMs.count).toBe(100);
    expect(latencyMs.max).toBe(1_000);
    expect(latencyMs.p50).toBeGreaterThanOrEqual(500);
    expect(latencyMs.p50).toBeLessThanOrEqual(625);
    expect(latencyMs.p99).toBeGreaterThanOrEqual(990);
    expect(latencyMs.p99).toBeLessThanOrEqual(1_000);
    expect(latencyMs.histogram.reduce((sum, bucket) => sum + bucket.count, 0)).toBe(100);
  });

  it('keeps at most 120 throughput buckets for a long job', () => {
    // Prepare
    const stats = new JobStatsCollector(START);

    // Act
    for (let second = 0; second < 3_600; second += 1) stats.add(result(second + 1, second, { attempts: 1 }));
    const { throughput } = stats.summary({ retries: NO_RETRIES });

    // Assess: seconds kept in 4-second buckets (at most 1,200), drawn in 32-second ones.
    expect(throughput.bucketSeconds).toBe(32);
    expect(throughput.completed).toHaveLength(113);
    expect(throughput.completed.slice(0, -1).every((count) => count === 32)).toBe(true);
    expect(throughput.completed.reduce((sum, count) => sum + count, 0)).toBe(3_600);
  });

  it('goes on from a checkpoint as if it had never stopped', () => {
    // Prepare
    const whole = new JobStatsCollector(START);
    const first = new JobStatsCollector(START);
    const results = Array.from({ length: 500 }, (_, index) =>
      result(index + 1, index * 7, { modelId: 'm', attempts: 1 + (index % 3), latencyMs: 100 + index }),
    );

    // Act
    for (const each of results) whole.add(each);
    for (const each of results.slice(0, 200)) first.add(each);
    const resumed = JobStatsCollector.restore(START, JSON.parse(JSON.stringify(first.state())));
    for (const each of results.slice(200)) resumed.add(each);

    // Assess
    const retries = NO_RETRIES;
    expect(resumed.summary({ retries })).toEqual(whole.summary({ retries }));
  });
});

describe('the manifest of a finished job', () => {
  it('carries the stats and the retries the report draws', async () => {
    // Prepare
    const pipeline = pipelineHarness({
      answer: (_, __, call) => {
        if (call === 1) throw awsError('ThrottlingException', 429, 'slow down');
        return textResponse('ok');
      },
    });

    // Act
    await pipeline.run('inputs/stats.jsonl', '{"id": "a", "prompt": "x"}\n["bad"]\n');

    // Assess
    expect(pipeline.manifest('inputs/stats.jsonl')).toMatchObject({
      stats: {
        perModel: [
          { modelId: 'global.anthropic.claude-opus-4-6-v1', records: 1, inputTokens: 10, outputTokens: 5 },
        ],
        attempts: { retriedRecords: 1, maxAttempts: 2 },
        retries: {
          retried: 1,
          bedrockThrottles: 1,
          budgetWaits: 0,
          sentBackToWait: 0,
          receives: 2,
          bedrockCalls: 2,
        },
        latencyMs: { count: 1 },
      },
    });
  });
});
