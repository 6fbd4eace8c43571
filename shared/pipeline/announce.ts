import type { JobFinalization } from '../core/ledger.ts';
import type { JobRecord } from '../core/model.ts';
import type { EventPublisher } from '../core/ports.ts';

export interface AnnouncePorts {
  readonly ledger: Pick<JobFinalization, 'markAnnounced'>;
  readonly events: EventPublisher;
}

/**
 * Publishes the job's pending announcement, then forgets it. A failure in between leaves it pending, so it
 * is published again (at least once, never lost); consumers tell repeats apart by the detail's jobId.
 */
export async function announce(
  ports: AnnouncePorts,
  job: Pick<JobRecord, 'jobId' | 'announcement'>,
): Promise<boolean> {
  if (job.announcement === undefined) return false;
  await ports.events.publish(job.announcement.detailType, job.announcement.detail);
  await ports.ledger.markAnnounced(job.jobId);
  return true;
}
