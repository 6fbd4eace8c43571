import { nanoUsdToUsd } from '../cost/cost.ts';
import { buildManifest } from '../output/manifest.ts';
import { renderResultLine } from '../output/result-records.ts';
import { announce } from './announce.ts';
import { dominantFamily, outputLocations, resultsPrefix } from './job.ts';
import { JobStatsCollector } from './job-stats.ts';
import type { Announcement, EventPublisher, JobRecord, Ledger, ObjectStore, StoredResult } from './ports.ts';

export interface FinalizePorts {
  readonly store: ObjectStore;
  readonly ledger: Ledger;
  readonly events: EventPublisher;
}

export const JOB_COMPLETED = 'Batch Job Completed';

/** Results read ahead of the one being written, so reads overlap without holding the whole job. */
const READ_AHEAD = 16;

/**
 * Writes the output file (every record in input order, in its own family) with a streaming upload, then the
 * manifest, marks the job completed with its completion event, and publishes that. Running it again
 * rewrites the same files; once the job is completed, running it again only publishes the event if it is
 * still pending.
 */
export async function finalizeJob(jobId: string, ports: FinalizePorts, now: () => Date = () => new Date()) {
  const job = await ports.ledger.getJob(jobId);
  if (job === undefined) return undefined;
  if (job.status === 'completed' || job.status === 'cancelled') {
    await announce(ports, job);
    return undefined;
  }
  const { output, manifest } = outputLocations(job);
  const fallbackFamily = dominantFamily(job.familyCounts);

  const upload = ports.store.upload(output, 'application/jsonl');
  const stats = new JobStatsCollector(Date.parse(job.createdAt));
  try {
    for await (const result of readResultsInOrder(job, ports.store)) {
      stats.add(result);
      const family = result.subject.family ?? fallbackFamily;
      await upload.write(`${renderResultLine({ ...result.subject, family }, result.outcome)}\n`);
    }
    await upload.complete();
  } catch (error) {
    await upload.abort();
    throw error;
  }

  const finishedAt = now();
  const details = {
    jobId,
    status: job.cancelRequested ? 'cancelled' : 'completed',
    input: s3Uri(job.source),
    output: s3Uri(output),
    model: job.settings.model,
    endpoint: job.settings.endpoint,
    region: job.settings.region,
    startedAt: job.createdAt,
    finishedAt: finishedAt.toISOString(),
    durationSeconds: Math.round((finishedAt.getTime() - Date.parse(job.createdAt)) / 100) / 10,
  };
  const manifestBody = buildManifest(job.totals, { ...details, stats: stats.summary(job) });
  await ports.store.put(manifest, `${JSON.stringify(manifestBody, null, 2)}\n`, 'application/json');
  const announcement: Announcement = {
    detailType: JOB_COMPLETED,
    detail: completionDetail(job, { ...details, manifest: s3Uri(manifest) }),
  };
  const status = job.cancelRequested ? 'cancelled' : 'completed';
  if (await ports.ledger.finishJob(jobId, status, details.finishedAt, announcement)) {
    await announce(ports, { jobId, announcement });
    return manifestBody;
  }
  // Another finalizer ended the job first: its event may still be pending.
  await announce(ports, (await ports.ledger.getJob(jobId)) ?? job);
  return undefined;
}

function completionDetail(job: JobRecord, details: Record<string, unknown>): Record<string, unknown> {
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
  };
}

async function* readResultsInOrder(job: JobRecord, store: ObjectStore): AsyncGenerator<StoredResult> {
  const pending: Array<Promise<Uint8Array | undefined>> = [];
  const take = async () => {
    const bytes = await pending.shift();
    if (bytes === undefined) throw new Error('a result object vanished during finalization');
    return JSON.parse(Buffer.from(bytes).toString('utf8')) as StoredResult;
  };
  for await (const key of store.list(job.source.bucket, resultsPrefix(job.jobId))) {
    const read = store.read({ bucket: job.source.bucket, key });
    // Awaited in order by take(); until then a failure must not count as unhandled.
    read.catch(() => {});
    pending.push(read);
    if (pending.length >= READ_AHEAD) yield await take();
  }
  while (pending.length > 0) yield await take();
}

function s3Uri(location: { bucket: string; key: string }): string {
  return `s3://${location.bucket}/${location.key}`;
}
