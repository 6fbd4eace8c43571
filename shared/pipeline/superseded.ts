import type { JobEnding, ObjectLocation } from '../core/model.ts';
import type { ObjectStore } from '../core/ports.ts';
import { jobIdOf } from './job.ts';

/**
 * How a job ends when its input changed under it: superseded, and by which job. The upload that replaced the
 * input is a job of its own (its id comes from its version or ETag), so the user is pointed to it; a deleted
 * input has no successor.
 */
export async function supersededEnding(
  jobId: string,
  source: ObjectLocation,
  store: Pick<ObjectStore, 'head'>,
): Promise<Required<JobEnding<'superseded'>> & { readonly supersededBy?: string }> {
  const uri = `s3://${source.bucket}/${source.key}`;
  const current = await store.head({ bucket: source.bucket, key: source.key });
  const newer =
    current === undefined ? undefined : jobIdOf(source.bucket, source.key, current.versionId ?? current.etag);
  if (newer === undefined || newer === jobId)
    return { status: 'superseded', reason: `${uri} was deleted or changed while its job ran.` };
  return {
    status: 'superseded',
    reason: `${uri} was replaced while its job ran: job ${newer} runs the newer upload.`,
    supersededBy: newer,
  };
}
