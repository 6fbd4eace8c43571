import { DynamoDbJobDirectory } from '../functions/adapters/dynamodb-job-directory.ts';
import { DynamoDbLedger } from '../functions/adapters/dynamodb-ledger.ts';
import { INPUT_PREFIX, messageBatchInputKey } from '../shared/contract/storage-layout.ts';
import type { JobRecord } from '../shared/core/model.ts';
import { UsageError } from './errors.ts';
import { resolveResources } from './resources.ts';

/** How the job commands' `<job>` is described in their help. */
export const JOB_REF_HELP =
  'a job id (submit prints it, events carry it), a message batch id (msgbatch_...), or the S3 URI or key of its input: s3://bucket/inputs/file.jsonl, inputs/file.jsonl or file.jsonl (the newest job of that object)';

/**
 * Where a reference that is not a job id points: an object, by URI, by key, by name under inputs/, or a
 * message batch's requests.
 */
function objectOf(ref: string, bucket: string): { bucket: string; key: string } {
  if (/^msgbatch_[0-9A-Za-z]+$/.test(ref)) return { bucket, key: messageBatchInputKey(ref) };
  const uri = /^s3:\/\/([^/]+)\/(.+)$/.exec(ref);
  if (uri !== null) return { bucket: uri[1] ?? bucket, key: uri[2] ?? '' };
  return { bucket, key: ref.includes('/') ? ref : `${INPUT_PREFIX}${ref}` };
}

/**
 * The job a command line names: by its id, or as the newest job of the object its input is (after
 * `aws s3 cp`, the URI is what a person has). An id that is not in the ledger is also tried as a key.
 */
export async function findJob(
  ref: string | undefined,
  values: { stack?: string | undefined; resources?: string | undefined; region?: string | undefined },
) {
  if (ref === undefined || ref.trim() === '')
    throw new UsageError(
      'No job given.',
      'Name it by its id (submit prints it), or by its input: s3://bucket/inputs/file.jsonl. "bedrock-batch jobs" lists the newest.',
    );
  const { resources, clients } = await resolveResources(values);
  const ledger = new DynamoDbLedger(clients.documents, resources.tableName);
  const directory = new DynamoDbJobDirectory(clients.documents, resources.tableName);
  const byId = /^job-[0-9a-f]+$/.test(ref) ? await ledger.getJob(ref) : undefined;
  const object = objectOf(ref, resources.bucket);
  const job: JobRecord | undefined = byId ?? (await directory.newestJobOf(object));
  if (job === undefined) {
    throw new UsageError(
      `No job ${ref.startsWith('job-') ? ref : `of s3://${object.bucket}/${object.key}`} in the ledger ${resources.tableName}.`,
      '"bedrock-batch jobs" lists the newest jobs.',
    );
  }
  return { job, ledger, directory, clients, resources };
}
