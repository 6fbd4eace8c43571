import { DEFAULT_SERVICE_TIER } from '../contract/service-tiers.ts';
import type { JobRecord } from '../core/model.ts';
import { nanoUsdToUsd } from '../cost/cost.ts';
import { cacheSummary, tierSummary } from '../output/manifest.ts';

/** A job as a person (or the CLI's `status` command) wants to see it: progress, tokens and cost so far. */
export function describeJob(job: JobRecord) {
  const { totals } = job;
  const total = job.totalRecords;
  return {
    jobId: job.jobId,
    status: job.status,
    cancelRequested: job.cancelRequested,
    input: `s3://${job.source.bucket}/${job.source.key}`,
    model: job.settings.model,
    endpoint: job.settings.endpoint,
    region: job.settings.region,
    records: {
      /** Unknown until the whole file has been read. */
      total,
      read: job.recordsRead,
      done: job.doneRecords,
      succeeded: totals.successRecordCount,
      failed: totals.errorRecordCount,
      canceled: totals.canceledRecordCount,
      remaining: total === undefined ? undefined : total - job.doneRecords,
    },
    percentDone:
      total === undefined || total === 0 ? undefined : Math.floor((job.doneRecords / total) * 1000) / 10,
    tokens: {
      input: totals.inputTokenCount,
      output: totals.outputTokenCount,
      cacheWrite: totals.cacheCreationInputTokenCount,
      cacheRead: totals.cacheReadInputTokenCount,
    },
    estimatedCostUsd: nanoUsdToUsd(totals.costNanoUsd),
    cache: cacheSummary(totals),
    tiers: tierSummary(totals, job.settings.tier ?? DEFAULT_SERVICE_TIER),
    /** Records each quota pool answered so far, most first. */
    pools: Object.entries(job.poolRecords)
      .map(([pool, records]) => ({ pool, records }))
      .sort((a, b) => b.records - a.records),
    /** How records got there: attempts, waits for tokens, deliveries and calls so far. */
    counters: job.retries,
    lane: job.settings.lane ?? 'on-demand',
    deadlineHours: job.settings.deadlineHours,
    /** Each batch part: how many records it holds, where it stands, the batch job that runs it. */
    batchParts: Object.values(job.batchParts ?? {}).map(({ part, records, state, jobArn, endedAs }) => ({
      part,
      records,
      state,
      ...(jobArn === undefined ? {} : { jobArn }),
      ...(endedAs === undefined ? {} : { endedAs }),
    })),
    createdAt: job.createdAt,
    updatedAt: job.updatedAt,
    finishedAt: job.finishedAt,
    failureReason: job.failureReason,
    inputNotice: job.inputNotice,
  };
}

export type JobStatusView = ReturnType<typeof describeJob>;
