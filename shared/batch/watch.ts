import { batchPartName } from '../contract/storage-layout.ts';
import type { Jobs } from '../core/ledger.ts';
import type { BatchPart, JobRecord } from '../core/model.ts';
import type { DeadlineAlarms } from '../core/ports.ts';
import type { BatchJobChange } from '../events/batch-job-change.ts';
import type { DeadlineAlarm } from '../messages/deadline-alarm.ts';
import { type CollectPorts, collectBatchPart, ENDED_BATCH_STATES } from './collect.ts';
import { startingLane } from './lane.ts';
import {
  type BatchLaunchSettings,
  deadlineOf,
  launchBatchParts,
  launchPart,
  partOfBatchJobName,
} from './launch.ts';

/** Bedrock's batch job state change, as its EventBridge event (or a poll) tells it. */
export type WatchPorts = CollectPorts & { readonly ledger: Pick<Jobs, 'listActiveJobs'> };

/**
 * A batch job's state changed: once it has ended, its part is collected. Events of jobs that are not the
 * pipeline's, of parts already collected, and repeated events change nothing.
 */
export async function onBatchJobChange(
  change: BatchJobChange,
  ports: WatchPorts,
  settings: BatchLaunchSettings,
): Promise<
  | { readonly kind: 'collected'; readonly answered: number; readonly redriven: number }
  | { readonly kind: 'running' | 'not-ours' | 'already-collected' }
> {
  const ours = partOfBatchJobName(change.jobName);
  if (ours === undefined) return { kind: 'not-ours' };
  const job = await ports.ledger.getJob(ours.jobId);
  const part = job?.batchParts?.[batchPartName(ours.part)];
  if (job === undefined || part === undefined) return { kind: 'not-ours' };
  if (part.state !== 'submitted') return { kind: 'already-collected' };
  if (!ENDED_BATCH_STATES.has(change.status)) return { kind: 'running' };
  return { kind: 'collected', ...(await collectBatchPart(job, part, change.status, ports, settings)) };
}

/**
 * The sweeper's pass over batch parts, because state change events are best effort: parts the region had no
 * room for are submitted, ended jobs are collected, and a job past its deadline (or canceled) is stopped;
 * what it finished is kept and its other records finish on demand once it has stopped. A staged file read to
 * its end whose reader died before it launched the parts has them planned and launched here.
 */
export async function sweepBatchParts(ports: WatchPorts, settings: BatchLaunchSettings): Promise<number> {
  let watched = 0;
  for await (const job of ports.ledger.listActiveJobs()) {
    if (job.status !== 'running') continue;
    if (job.batchParts === undefined) {
      const read = job.totalRecords !== undefined;
      if (read && startingLane(job.settings, settings.catalog) === 'staged')
        await launchBatchParts(job, ports, settings);
      continue;
    }
    for (const part of Object.values(job.batchParts)) {
      watched += 1;
      await watchPart(job, part, ports, settings);
    }
  }
  return watched;
}

/**
 * A deadline alarm went off. Early (it was further off than SQS waits) it is set again; at the deadline each
 * of the job's batch parts is watched at once: a batch job still running is stopped, and what it did not
 * finish runs on demand once it has stopped. A job that ended meanwhile needs nothing.
 */
export async function onDeadlineAlarm(
  alarm: DeadlineAlarm,
  ports: WatchPorts & { readonly alarms: DeadlineAlarms },
  settings: BatchLaunchSettings,
): Promise<'early' | 'acted' | 'nothing'> {
  const now = settings.clock.now();
  if (now < alarm.at) {
    await ports.alarms.set(alarm, now);
    return 'early';
  }
  const job = await ports.ledger.getJob(alarm.jobId);
  if (job?.status !== 'running' || job.batchParts === undefined) return 'nothing';
  for (const part of Object.values(job.batchParts)) await watchPart(job, part, ports, settings);
  return 'acted';
}

async function watchPart(
  job: JobRecord,
  part: BatchPart,
  ports: WatchPorts,
  settings: BatchLaunchSettings,
): Promise<void> {
  if (part.state === 'staged') {
    await launchPart(job, part, ports, settings);
    return;
  }
  if (part.state !== 'submitted' || part.jobArn === undefined) return;
  const { status } = await ports.batchJobs.describe(part.jobArn);
  if (ENDED_BATCH_STATES.has(status)) {
    await collectBatchPart(job, part, status, ports, settings);
    return;
  }
  const deadline = deadlineOf(job);
  const late = deadline !== undefined && settings.clock.now() >= deadline;
  if ((late || job.cancelRequested) && status !== 'Stopping') await ports.batchJobs.stop(part.jobArn);
}
