import type { JobFinalization, Jobs } from '../core/ledger.ts';
import type { JobRecord } from '../core/model.ts';
import type { DeadLetters, EnqueueContinuation, EventPublisher, FinalizeTrigger } from '../core/ports.ts';
import { type AnnouncePorts, announce } from './announce.ts';
import { finalizeIfDone } from './complete.ts';

export interface SweepPorts extends AnnouncePorts {
  readonly ledger: Pick<Jobs, 'listActiveJobs' | 'getJob'> &
    Pick<JobFinalization, 'claimFinalization'> &
    AnnouncePorts['ledger'];
  readonly deadLetters: DeadLetters;
  readonly events: EventPublisher;
  readonly continuation: EnqueueContinuation;
  readonly finalize: FinalizeTrigger;
}

export interface SweepOptions {
  /** Minutes without progress after which a step is taken up again: longer than any invocation can last. */
  readonly resumeAfterMinutes: number;
  /** Minutes without progress after which a job is reported to people. */
  readonly stuckAfterMinutes: number;
  readonly now: Date;
  /** How long a claim to publish a job's event holds (`ANNOUNCE_LEASE_SECONDS` by default). */
  readonly announceLeaseSeconds?: number;
}

/** What the sweeper did for a job whose step had stopped: read its file on, finalize it, or publish its event. */
export type Resumption = 'read' | 'finalize' | 'announce';

export interface ResumedJob {
  readonly jobId: string;
  readonly status: JobRecord['status'];
  readonly resumed: Resumption;
}

export interface StuckJob {
  readonly jobId: string;
  readonly status: JobRecord['status'];
  readonly input: string;
  readonly minutesWithoutProgress: number;
  readonly doneRecords: number;
  readonly totalRecords: number | undefined;
}

export interface SweepReport {
  readonly resumed: readonly ResumedJob[];
  readonly stuckJobs: readonly StuckJob[];
  readonly deadLetterMessages: number;
}

export const JOBS_STUCK = 'Batch Jobs Stuck';

/**
 * The scheduled check. A job whose ledger has not moved for `resumeAfterMinutes` had its step die (a timeout,
 * a crash, a lost message): the sweeper takes that step up again. One that has not moved for
 * `stuckAfterMinutes`, and messages in the DLQ, are announced on the bus (alarms and people subscribe there).
 */
export async function sweepStuckJobs(ports: SweepPorts, options: SweepOptions): Promise<SweepReport> {
  const resumed: ResumedJob[] = [];
  const stuckJobs: StuckJob[] = [];
  for await (const job of ports.ledger.listActiveJobs()) {
    const quietMinutes = (options.now.getTime() - Date.parse(job.updatedAt)) / 60_000;
    if (quietMinutes < options.resumeAfterMinutes) continue;
    const resumption = await resume(ports, job, options.announceLeaseSeconds);
    if (resumption !== undefined) resumed.push({ jobId: job.jobId, status: job.status, resumed: resumption });
    if (quietMinutes < options.stuckAfterMinutes) continue;
    const minutesWithoutProgress = Math.floor(quietMinutes);
    stuckJobs.push({
      jobId: job.jobId,
      status: job.status,
      input: `s3://${job.source.bucket}/${job.source.key}`,
      minutesWithoutProgress,
      doneRecords: job.doneRecords,
      totalRecords: job.totalRecords,
    });
  }
  const deadLetterMessages = await ports.deadLetters.count();
  if (stuckJobs.length > 0 || deadLetterMessages > 0) {
    await ports.events.publish(JOBS_STUCK, {
      stuckJobs,
      deadLetterMessages,
      checkedAt: options.now.toISOString(),
    });
  }
  return { resumed, stuckJobs, deadLetterMessages };
}

/** Takes up the step a job stopped at; undefined when its records are still being worked on. */
async function resume(
  ports: SweepPorts,
  job: JobRecord,
  announceLeaseSeconds: number | undefined,
): Promise<Resumption | undefined> {
  if (job.announcement !== undefined) {
    await announce(ports, job, { leaseSeconds: announceLeaseSeconds, waitForHolder: false });
    return 'announce';
  }
  switch (job.status) {
    case 'enqueuing':
      await ports.continuation.continueLater(job.jobId);
      return 'read';
    case 'running':
      if (job.totalRecords === undefined || job.doneRecords < job.totalRecords) return undefined;
      await finalizeIfDone(ports, job.jobId);
      return 'finalize';
    case 'finalizing':
      await ports.finalize.trigger(job.jobId);
      return 'finalize';
    default:
      return undefined;
  }
}
