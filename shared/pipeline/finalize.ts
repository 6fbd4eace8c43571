import { JOB_END_EVENTS } from '../contract/job-events.ts';
import { DEFAULT_SERVICE_TIER } from '../contract/service-tiers.ts';
import { outputLocations } from '../contract/storage-layout.ts';
import { type Clock, systemClock } from '../core/clock.ts';
import type { JobFinalization, Jobs, RecordLedger } from '../core/ledger.ts';
import { type Announcement, ENDED_JOB_STATUSES, type JobEnding, type JobRecord } from '../core/model.ts';
import type { EventPublisher, FinalizeTrigger, ObjectStore } from '../core/ports.ts';
import { nanoUsdToUsd } from '../cost/cost.ts';
import { InputChangedError } from '../errors.ts';
import { unlistedModelIds } from '../models/resolve-model.ts';
import { buildManifest, cacheSummary, tierSummary } from '../output/manifest.ts';
import { renderResultLine } from '../output/result-records.ts';
import type { QuotaReport } from '../quotas/pool-rates.ts';
import { leftOutFor, withQuotas } from '../quotas/pool-report.ts';
import type { QuotaReading } from '../quotas/service-quotas.ts';
import { announce } from './announce.ts';
import { CheckpointedUpload } from './checkpointed-upload.ts';
import { dominantFamily } from './job.ts';
import { type JobStats, JobStatsCollector } from './job-stats.ts';
import { type ResultReading, resultsInOrder } from './results-in-order.ts';
import { supersededEnding } from './superseded.ts';

export interface FinalizePorts {
  readonly store: ObjectStore;
  readonly ledger: Pick<Jobs, 'getJob'> & JobFinalization & Pick<RecordLedger, 'countedRecords'>;
  readonly events: EventPublisher;
  /** Hands the rest of a long finalization to a new invocation. */
  readonly finalize: FinalizeTrigger;
  /** Each pool's quota, for the manifest; without it the manifest names the pools used, not their quotas. */
  readonly quotas?: QuotaReport;
}

export interface FinalizeSettings {
  /** Says when the invocation is near its deadline: the finalizer saves its place and hands over. */
  readonly shouldStop?: () => boolean;
  readonly clock?: Pick<Clock, 'now'>;
  /** Bytes of output per multipart part (S3 takes 5 MiB or more, but the last). */
  readonly partBytes?: number;
  /** Parts uploading at once while the next is being assembled. */
  readonly partsInFlight?: number;
  /** How results are read: objects at once, lines taken together. */
  readonly reading?: Partial<ResultReading>;
  /** How long a claim to publish the job's event holds (`ANNOUNCE_LEASE_SECONDS` by default). */
  readonly announceLeaseSeconds?: number;
}

export type FinalizeOutcome =
  | { readonly kind: 'completed'; readonly manifest: JobManifest }
  | { readonly kind: 'continued'; readonly linesWritten: number }
  | { readonly kind: 'already-done' };

const DEFAULT_PART_BYTES = 8 * 1024 * 1024;
const DEFAULT_READING: ResultReading = { readsInFlight: 16, windowLines: 256 };

/**
 * Writes the output file (every record in input order, in its own family) as a multipart upload whose parts
 * go up several at a time, then the manifest; marks the job completed with its completion event, and
 * publishes that. After every part it saves a checkpoint (the parts, the last result they hold, the
 * statistics so far): an invocation near its deadline hands over to a new one, and one that dies is retried
 * from there, not from zero. Memory stays flat: a few parts and a window of results. Once the job is
 * completed, running it again only publishes the event if it is still pending.
 */
export async function finalizeJob(
  jobId: string,
  ports: FinalizePorts,
  settings: FinalizeSettings = {},
): Promise<FinalizeOutcome> {
  const job = await ports.ledger.getJob(jobId);
  if (job === undefined) return { kind: 'already-done' };
  if (ENDED_JOB_STATUSES.has(job.status)) {
    await announce(ports, job, { leaseSeconds: settings.announceLeaseSeconds });
    return { kind: 'already-done' };
  }
  const written = await writeOutput(job, ports, settings);
  if (written.kind === 'continued') return written;

  const { manifest } = outputLocations(job);
  const finishedAt = new Date((settings.clock ?? systemClock).now());
  const ending = await endingOf(job, written.stats, ports.store);
  const details = jobDetails(job, finishedAt, ending);
  const manifestBody = manifestOf(job, details, written.stats.summary(job), await ports.quotas?.reading());
  await ports.store.put(manifest, `${JSON.stringify(manifestBody, null, 2)}\n`, 'application/json');
  const announcement: Announcement = {
    detailType: JOB_END_EVENTS[ending.status],
    detail: completionDetail(job, { ...details, manifest: s3Uri(manifest) }),
  };
  if (await ports.ledger.finishJob(jobId, ending, details.finishedAt, announcement)) {
    await announce(ports, { jobId, announcement }, { leaseSeconds: settings.announceLeaseSeconds });
    return { kind: 'completed', manifest: manifestBody };
  }
  // Another finalizer ended the job first: its event may still be pending.
  await announce(ports, (await ports.ledger.getJob(jobId)) ?? job, {
    leaseSeconds: settings.announceLeaseSeconds,
  });
  return { kind: 'already-done' };
}

/**
 * The output file, from the checkpoint on: each result rendered in its record's family, in input order;
 * near the deadline the parts in flight are settled and the rest handed to a new invocation.
 */
async function writeOutput(
  job: JobRecord,
  ports: FinalizePorts,
  settings: FinalizeSettings,
): Promise<{ kind: 'written'; stats: JobStatsCollector } | { kind: 'continued'; linesWritten: number }> {
  const checkpoint = job.finalizeCheckpoint;
  const startedAt = Date.parse(job.createdAt);
  const stats =
    checkpoint === undefined
      ? new JobStatsCollector(startedAt)
      : JobStatsCollector.restore(startedAt, checkpoint.stats);
  const upload = new CheckpointedUpload(
    job.jobId,
    outputLocations(job).output,
    ports,
    {
      partBytes: settings.partBytes ?? DEFAULT_PART_BYTES,
      partsInFlight: settings.partsInFlight ?? 4,
    },
    checkpoint,
  );
  const fallbackFamily = dominantFamily(job.familyCounts);
  let linesWritten = checkpoint?.linesWritten ?? 0;
  let lastLine = checkpoint?.lastLine ?? 0;
  const position = () => ({ lastLine, linesWritten, stats: stats.state() });
  for await (const result of resultsInOrder(job, ports, lastLine, {
    ...DEFAULT_READING,
    ...settings.reading,
  })) {
    stats.add(result);
    linesWritten += 1;
    lastLine = result.completion.lineNumber;
    const family = result.subject.family ?? fallbackFamily;
    if (!upload.append(`${renderResultLine({ ...result.subject, family }, result.outcome)}\n`)) continue;
    await upload.cutPart(position());
    if (settings.shouldStop?.() === true) {
      await upload.settle();
      await ports.finalize.trigger(job.jobId);
      return { kind: 'continued', linesWritten };
    }
  }
  await upload.finish(linesWritten === 0 ? undefined : position());
  return { kind: 'written', stats };
}

/**
 * How the job ends: canceled when asked; superseded when its input changed under it (some records could not
 * be read as the job began them), naming the job that runs the newer upload; completed otherwise.
 */
async function endingOf(
  job: JobRecord,
  stats: JobStatsCollector,
  store: FinalizePorts['store'],
): Promise<JobEnding<'completed' | 'canceled' | 'superseded'> & { readonly supersededBy?: string }> {
  if (job.cancelRequested)
    return { status: 'canceled', ...(job.cancelReason === undefined ? {} : { reason: job.cancelReason }) };
  if (stats.erroredWith(InputChangedError.CODE) > 0) return supersededEnding(job.jobId, job.source, store);
  return { status: 'completed' };
}

/** What the manifest and the completion event say of the job itself. */
function jobDetails(
  job: JobRecord,
  finishedAt: Date,
  ending: JobEnding & { readonly supersededBy?: string },
) {
  return {
    jobId: job.jobId,
    status: ending.status,
    ...(ending.reason === undefined ? {} : { reason: ending.reason }),
    ...(ending.supersededBy === undefined ? {} : { supersededBy: ending.supersededBy }),
    ...uncountedCalls(job.totals),
    ...unpricedRecords(job.totals),
    tiers: tierSummary(job.totals, job.settings.tier ?? DEFAULT_SERVICE_TIER),
    input: s3Uri(job.source),
    output: s3Uri(outputLocations(job).output),
    model: job.settings.model,
    endpoint: job.settings.endpoint,
    region: job.settings.region,
    startedAt: job.createdAt,
    finishedAt: finishedAt.toISOString(),
    durationSeconds: Math.round((finishedAt.getTime() - Date.parse(job.createdAt)) / 100) / 10,
    ...(job.inputNotice === undefined ? {} : { inputNotice: job.inputNotice }),
  };
}

/**
 * Calls Bedrock may have billed whose usage no answer brought back, so the job's cost leaves them out: said
 * with the most they may have cost, rather than passed over.
 */
function uncountedCalls(totals: JobRecord['totals']) {
  const calls = totals.unansweredCallCount + totals.abandonedAttemptCount;
  if (calls === 0) return {};
  return {
    uncounted: {
      calls,
      unanswered: totals.unansweredCallCount,
      abandoned: totals.abandonedAttemptCount,
      maxCostUsd: nanoUsdToUsd(totals.uncountedCostCapNanoUsd),
      note:
        'Calls Bedrock may have run and billed that returned no usage (no answer before a deadline or over a ' +
        'broken connection, or a worker that stopped mid-call); estimatedCostUsd leaves them out. See the ' +
        "account's Bedrock invocation metrics for what was billed.",
    },
  };
}

/** Records whose model has no price in the catalog: their cost is unknown, said so rather than guessed. */
function unpricedRecords(totals: JobRecord['totals']) {
  if (totals.unpricedRecordCount === 0) return {};
  return {
    unpriced: {
      records: totals.unpricedRecordCount,
      note:
        'Records answered by a model the catalog has no price for: their tokens are counted, their cost is ' +
        'unknown and estimatedCostUsd leaves it out. Add the price to the catalog to have it counted.',
    },
  };
}

/** The manifest: the native batch fields, tokens, cost and cache, the job's details, lanes and statistics. */
function manifestOf(
  job: JobRecord,
  details: ReturnType<typeof jobDetails>,
  stats: JobStats,
  quotas: QuotaReading | undefined,
) {
  const batchJobs = Object.values(job.batchParts ?? {}).flatMap((part) => part.jobArn ?? []);
  const poolsLeftOut = leftOutFor(
    job.settings,
    stats.perModel.map((model) => model.modelId),
    quotas,
  );
  const unknownModels = unknownModelsOf(stats);
  return buildManifest(job.totals, {
    ...details,
    ...(unknownModels.length > 0 ? { unknownModels } : {}),
    lane: batchJobs.length > 0 ? ('batch' as const) : ('on-demand' as const),
    ...(batchJobs.length > 0 ? { batchJobs } : {}),
    lanes: stats.perLane,
    pools: withQuotas(stats.perPool, quotas),
    ...(poolsLeftOut.length > 0 ? { poolsLeftOut } : {}),
    stats,
  });
}

/**
 * Models the records went to that the catalog does not list (run because the deployment allows unknown
 * model ids): their records, and what is not known of them.
 */
function unknownModelsOf(stats: JobStats) {
  const unlisted = new Set(unlistedModelIds(stats.perModel.map((model) => model.modelId)));
  return stats.perModel
    .filter((model) => unlisted.has(model.modelId))
    .map(({ modelId, records }) => ({
      modelId,
      records,
      note: 'Not in the catalog: its cost is unknown (left out of estimatedCostUsd) and so is its context window (long documents were sent as they are, with no 1M beta).',
    }));
}

/** A job's `<input>.manifest.json.out`. */
export type JobManifest = ReturnType<typeof manifestOf>;

/** The detail of the "Batch Job Completed" event. */
export type CompletionEventDetail = ReturnType<typeof completionDetail>;

function completionDetail(job: JobRecord, details: ReturnType<typeof jobDetails> & { manifest: string }) {
  return {
    ...details,
    counts: {
      total: job.totals.totalRecordCount,
      succeeded: job.totals.successRecordCount,
      errored: job.totals.errorRecordCount,
      canceled: job.totals.canceledRecordCount,
    },
    tokens: {
      input: job.totals.inputTokenCount,
      output: job.totals.outputTokenCount,
      cacheCreation: job.totals.cacheCreationInputTokenCount,
      cacheRead: job.totals.cacheReadInputTokenCount,
    },
    estimatedCostUsd: nanoUsdToUsd(job.totals.costNanoUsd),
    cache: cacheSummary(job.totals),
  };
}

function s3Uri(location: { bucket: string; key: string }): string {
  return `s3://${location.bucket}/${location.key}`;
}
