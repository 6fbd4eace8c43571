import { setTimeout as sleep } from 'node:timers/promises';
import type { JobFinalization, Jobs } from '../core/ledger.ts';
import type { JobRecord } from '../core/model.ts';
import type { EventPublisher } from '../core/ports.ts';

export interface AnnouncePorts {
  readonly ledger: Pick<Jobs, 'getJob'> &
    Pick<JobFinalization, 'claimAnnouncement' | 'releaseAnnouncement' | 'markAnnounced'>;
  readonly events: EventPublisher;
}

/**
 * How long a claim to publish a job's event holds when its holder died before saying it published: far
 * longer than a PutEvents call with its retries, short beside the function's timeout.
 */
export const ANNOUNCE_LEASE_SECONDS = 30;

export interface AnnounceOptions {
  /** How long this step's claim holds (`ANNOUNCE_LEASE_SECONDS` by default). */
  readonly leaseSeconds?: number | undefined;
  /**
   * While another step holds the claim, wait for it to publish or its claim to run out (by default): the
   * step that ends a job sees its event out. The sweeper, which goes through many jobs in a short
   * invocation, leaves a held one to its next sweep instead.
   */
  readonly waitForHolder?: boolean;
}

/** How often a waiting step looks again at a claim another step holds. */
const HOLDER_CHECK_MS = 250;

/**
 * Publishes the job's pending announcement, then forgets it. Only the step holding the claim publishes, so a
 * finalizer, its duplicate delivery and the sweeper finding the event pending at once send it once. A
 * failure in between leaves it pending, so it is published again (at least once, never lost); a repeat
 * happens only when a step died between the publish and its record, and consumers tell repeats apart by the
 * detail's jobId.
 */
export async function announce(
  ports: AnnouncePorts,
  job: Pick<JobRecord, 'jobId' | 'announcement'>,
  { leaseSeconds = ANNOUNCE_LEASE_SECONDS, waitForHolder = true }: AnnounceOptions = {},
): Promise<boolean> {
  if (job.announcement === undefined) return false;
  const claimed = waitForHolder
    ? await claimOnceFree(ports, job.jobId, leaseSeconds)
    : await ports.ledger.claimAnnouncement(job.jobId, leaseSeconds);
  if (!claimed) return false;
  try {
    await ports.events.publish(job.announcement.detailType, job.announcement.detail);
  } catch (error) {
    await ports.ledger.releaseAnnouncement(job.jobId).catch(() => undefined);
    throw error;
  }
  await ports.ledger.markAnnounced(job.jobId);
  return true;
}

/**
 * Claims the publishing; while another step holds it, waits until that step has published (false) or its
 * claim ran out (the holder died: this step publishes in its place, now rather than at the next sweep).
 */
async function claimOnceFree(ports: AnnouncePorts, jobId: string, leaseSeconds: number): Promise<boolean> {
  const checks = Math.ceil(((leaseSeconds + 1) * 1000) / HOLDER_CHECK_MS);
  for (let check = 0; check <= checks; check += 1) {
    if (await ports.ledger.claimAnnouncement(jobId, leaseSeconds)) return true;
    if ((await ports.ledger.getJob(jobId))?.announcement === undefined) return false;
    await sleep(HOLDER_CHECK_MS);
  }
  return false;
}
