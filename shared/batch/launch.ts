import type { Catalog } from '../catalog/catalog.ts';
import { batchPartName, partPrefixes } from '../contract/storage-layout.ts';
import type { Clock } from '../core/clock.ts';
import type { BatchParts, Jobs } from '../core/ledger.ts';
import type { BatchPart, JobRecord } from '../core/model.ts';
import type { BatchJobs, DeadlineAlarms, ObjectStore, RecordQueue } from '../core/ports.ts';
import { classifyFailure } from '../failures.ts';
import { DEADLINE_ALARM_VERSION } from '../messages/deadline-alarm.ts';
import { resolveModel } from '../models/resolve-model.ts';
import { stagedRecordsLane } from './lane.ts';
import { stagedInputBytes, stagedParts, stagedRecordsOf } from './staging.ts';

export interface BatchPorts {
  readonly store: ObjectStore;
  readonly ledger: Pick<Jobs, 'getJob'> & BatchParts;
  readonly queue: RecordQueue;
  readonly batchJobs: BatchJobs;
  /** Wakes the watcher at a job's deadline; without it the scheduled sweep keeps deadlines. */
  readonly alarms?: DeadlineAlarms;
}

export interface BatchLaunchSettings {
  readonly catalog: Catalog;
  readonly clock: Pick<Clock, 'now'>;
}

/**
 * Once a staged job's file is read: its parts are planned once (how many records each holds), then each part
 * still staged is submitted as a batch job, or sent to the record queue when it holds fewer records than a
 * batch job may. A part the region has no room for stays staged; the sweeper submits it later.
 */
export async function launchBatchParts(
  job: JobRecord,
  ports: BatchPorts,
  settings: BatchLaunchSettings,
): Promise<void> {
  const parts = job.batchParts ?? (await planParts(job, ports));
  for (const part of Object.values(parts)) {
    if (part.state === 'staged') await launchPart(job, part, ports, settings);
  }
}

async function planParts(job: JobRecord, ports: BatchPorts): Promise<Readonly<Record<string, BatchPart>>> {
  const planned: Record<string, BatchPart> = {};
  for (const part of await stagedParts(job, ports.store)) {
    const records = (await stagedRecordsOf(job, part, ports.store)).size;
    const bytes = await stagedInputBytes(job, part, ports.store);
    planned[batchPartName(part)] = { part, records, bytes, state: 'staged' };
  }
  if (await ports.ledger.planBatchParts(job.jobId, planned)) return planned;
  // A read retried after a crash: the parts planned first stand.
  return (await ports.ledger.getJob(job.jobId))?.batchParts ?? planned;
}

/** What became of a staged part: a batch job runs it, it went on demand, or it waits for another try. */
export type PartLaunch =
  | { readonly kind: 'submitted' | 'waiting' }
  | { readonly kind: 'on-demand'; readonly because: string };

/**
 * Submits a part as a batch job, or sends it on demand: when it is too small or too large for one, when its
 * file was canceled, or when Bedrock refuses the submit in a way no retry mends (no access, a role it cannot
 * use): the file still finishes, at the on-demand price, and the reason is kept with the part. A refusal
 * that may pass (the region's jobs in flight, throttling, a dropped connection) leaves it staged for the
 * watcher's next sweep.
 */
export async function launchPart(
  job: JobRecord,
  part: BatchPart,
  ports: BatchPorts,
  settings: BatchLaunchSettings,
): Promise<PartLaunch> {
  const { catalog } = settings;
  const resolved = resolveModel(job.settings, catalog);
  const tooSmall =
    stagedRecordsLane(part.records, catalog.batchMinimumRecords(resolved.model)) === 'on-demand';
  // Parts are cut by records; lines this large are rare, and such a part runs on demand rather than fail.
  const tooLarge = part.bytes > catalog.batch.maximumJobBytes;
  // A canceled job's records go to the worker, which writes each a "canceled" result.
  if (tooSmall || tooLarge || job.cancelRequested) {
    const because = job.cancelRequested ? 'canceled' : tooSmall ? 'too few records' : 'too many bytes';
    return sendOnDemand(job, part, ports, because);
  }
  const prefixes = partPrefixes(job.jobId, part.part);
  const bucket = `s3://${job.source.bucket}/`;
  let jobArn: string;
  try {
    jobArn = await ports.batchJobs.submit({
      jobName: batchJobName(job.jobId, part.part),
      modelId: resolved.modelId,
      inputUri: `${bucket}${prefixes.input}`,
      outputUri: `${bucket}${prefixes.output}`,
      timeoutHours: timeoutHoursFor(job, settings),
      clientRequestToken: batchJobName(job.jobId, part.part),
    });
  } catch (error) {
    const failure = classifyFailure(error);
    if (failure.retry !== 'never') return { kind: 'waiting' };
    return sendOnDemand(job, part, ports, `submit refused: ${failure.code}: ${failure.message}`);
  }
  await ports.ledger.moveBatchPart(job.jobId, ['staged'], { ...part, state: 'submitted', jobArn });
  if (ports.alarms !== undefined) await armDeadline(job, ports.alarms, settings.clock.now());
  return { kind: 'submitted' };
}

/**
 * A job with a deadline whose batch job is running gets an alarm for the deadline itself: its batch jobs are
 * stopped at that time, not at the next scheduled sweep.
 */
async function armDeadline(
  job: Pick<JobRecord, 'jobId' | 'createdAt' | 'settings'>,
  alarms: DeadlineAlarms,
  now: number,
): Promise<void> {
  const at = deadlineOf(job);
  if (at !== undefined) await alarms.set({ v: DEADLINE_ALARM_VERSION, jobId: job.jobId, at }, now);
}

async function sendOnDemand(
  job: JobRecord,
  part: BatchPart,
  ports: BatchPorts,
  because: string,
): Promise<PartLaunch> {
  const staged = await stagedRecordsOf(job, part.part, ports.store);
  await ports.queue.send([...staged.values()].map((record) => record.message));
  await ports.ledger.moveBatchPart(job.jobId, ['staged'], { ...part, state: 'on-demand', endedAs: because });
  return { kind: 'on-demand', because };
}

/** One name per part of a job: the batch job's name and its client request token. */
export function batchJobName(jobId: string, part: number): string {
  return `bb-${jobId}-part-${part}`;
}

/** The job and part a batch job's name stands for, if it is one of ours. */
export function partOfBatchJobName(name: string): { jobId: string; part: number } | undefined {
  const match = /^bb-(job-[0-9a-f]+)-part-(\d+)$/.exec(name);
  return match === null ? undefined : { jobId: match[1] ?? '', part: Number(match[2]) };
}

/**
 * Bedrock's own timeout for a part: the hours left to the job's deadline, within what Bedrock accepts. A
 * deadline closer than Bedrock's shortest timeout is kept by stopping the job (the sweeper does).
 */
function timeoutHoursFor(job: JobRecord, settings: BatchLaunchSettings): number {
  const { minimum, maximum } = settings.catalog.batch.timeoutHours;
  const deadline = deadlineOf(job);
  if (deadline === undefined) return maximum;
  const hoursLeft = Math.ceil((deadline - settings.clock.now()) / 3_600_000);
  return Math.min(maximum, Math.max(minimum, hoursLeft));
}

/** When every record of the job must be done, if it has a deadline. */
export function deadlineOf(job: Pick<JobRecord, 'createdAt' | 'settings'>): number | undefined {
  const hours = job.settings.deadlineHours;
  return hours === undefined ? undefined : Date.parse(job.createdAt) + hours * 3_600_000;
}
