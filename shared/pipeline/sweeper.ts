import type { EventPublisher, JobRecord } from './ports.ts';

export interface ActiveJobs {
  /** Jobs not finished yet (enqueuing, running or finalizing). */
  listActiveJobs(): AsyncIterable<JobRecord>;
}

export interface DeadLetters {
  /** Messages waiting in the record queue's DLQ: records the code could not handle at all. */
  count(): Promise<number>;
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
  readonly stuckJobs: readonly StuckJob[];
  readonly deadLetterMessages: number;
}

export const JOBS_STUCK = 'Batch Jobs Stuck';

/**
 * The scheduled check: jobs whose ledger has not moved for `stuckAfterMinutes`, and messages in the DLQ.
 * Anything found is announced on the bus (alarms and people subscribe there) and returned for the logs.
 */
export async function sweepStuckJobs(
  ports: { jobs: ActiveJobs; deadLetters: DeadLetters; events: EventPublisher },
  options: { stuckAfterMinutes: number; now: Date },
): Promise<SweepReport> {
  const stuckJobs: StuckJob[] = [];
  for await (const job of ports.jobs.listActiveJobs()) {
    const minutesWithoutProgress = Math.floor((options.now.getTime() - Date.parse(job.updatedAt)) / 60_000);
    if (minutesWithoutProgress < options.stuckAfterMinutes) continue;
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
  return { stuckJobs, deadLetterMessages };
}
