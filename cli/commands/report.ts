import { readFile, stat, writeFile } from 'node:fs/promises';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { DynamoDbLedger } from '../../functions/adapters/dynamodb-ledger.ts';
import { outputLocations } from '../../shared/pipeline/job.ts';
import { parseCommandLine } from '../arguments.ts';
import { UsageError } from '../errors.ts';
import { type ReportManifest, renderReport } from '../report.ts';
import { resolveResources, resourceOptions } from '../resources.ts';
import type { Terminal } from '../terminal.ts';

export const REPORT_USAGE =
  'bedrock-batch report <job|manifest.json.out> --html file [--stack name | --resources file]';

/** Draws a job's report from a manifest file, or from a job's manifest in the bucket. */
export async function reportCommand(args: string[], term: Terminal): Promise<number> {
  const { values, positionals } = parseCommandLine(args, { ...resourceOptions, html: { type: 'string' } }, [
    '<job|manifest.json.out>',
  ]);
  const subject = positionals[0];
  if (subject === undefined) throw new UsageError('No job or manifest given.', `Use: ${REPORT_USAGE}`);
  if (values.html === undefined)
    throw new UsageError('Where should the report go?', 'Give --html report.html.');
  const isFile = await stat(subject).then(
    (info) => info.isFile(),
    () => false,
  );
  const manifest = JSON.parse(
    isFile ? await readFile(subject, 'utf8') : await manifestOfJob(subject, values),
  ) as ReportManifest;
  await writeFile(values.html, renderReport(manifest));
  term.out(`${values.html}\n`);
  return 0;
}

async function manifestOfJob(
  jobId: string,
  values: { stack?: string | undefined; resources?: string | undefined; region?: string | undefined },
) {
  const { resources, clients } = await resolveResources(values);
  const job = await new DynamoDbLedger(clients.documents, resources.tableName).getJob(jobId);
  if (job === undefined) throw new UsageError(`No job and no file called ${jobId}.`);
  const { manifest } = outputLocations(job);
  const object = await clients.s3
    .send(new GetObjectCommand({ Bucket: manifest.bucket, Key: manifest.key }))
    .catch(() => undefined);
  if (object === undefined) throw new UsageError(`Job ${jobId} is ${job.status}: it has no manifest yet.`);
  return (await object.Body?.transformToString()) ?? '';
}
