import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { outputLocations } from '../../shared/contract/storage-layout.ts';
import { type CommandSpec, parseCommandLine, synopsis } from '../command-line.ts';
import { UsageError } from '../errors.ts';
import { findJob, JOB_REF_HELP } from '../job-ref.ts';
import { resourceOptions } from '../options.ts';
import { type ReportManifest, renderReport } from '../report.ts';
import type { Terminal } from '../terminal.ts';

export const REPORT_COMMAND = {
  name: 'report',
  summary: "draw a job's report as one self-contained HTML page",
  description:
    "Draws a job's report (records, failures by reason, cost, tokens, pace) as one HTML page with nothing " +
    'to fetch, from a manifest file or from the manifest of a job in the bucket.',
  positionals: [
    {
      name: '<job|manifest.json.out>',
      help: `a manifest file, as run and results write it, or ${JOB_REF_HELP}`,
      path: true,
    },
  ],
  options: {
    html: {
      type: 'string',
      value: 'file',
      help: 'where the page goes (default: <input>.report.html here, or <job>.report.html)',
      path: true,
    },
    ...resourceOptions,
  },
  examples: ['bedrock-batch report prompts.jsonl.manifest.json.out --html report.html'],
} as const satisfies CommandSpec;

/** Draws a job's report from a manifest file, or from a job's manifest in the bucket. */
export async function reportCommand(args: string[], term: Terminal): Promise<number> {
  const { values, positionals } = parseCommandLine(args, REPORT_COMMAND);
  const subject = positionals[0];
  if (subject === undefined)
    throw new UsageError('No job or manifest given.', `Use: ${synopsis(REPORT_COMMAND)}`);
  const isFile = await stat(subject).then(
    (info) => info.isFile(),
    () => false,
  );
  if (!isFile && /\.(json|out)$/.test(subject)) throw new UsageError(`No file ${subject}.`);
  const manifest = JSON.parse(
    isFile ? await readFile(subject, 'utf8') : await manifestOfJob(subject, values),
  ) as ReportManifest;
  // Without --html, beside where the command runs, named after the manifest or the job.
  const target =
    values.html ??
    `${isFile ? path.basename(subject).replace(/\.manifest\.json\.out$|\.json$/, '') : String(manifest.jobId ?? subject)}.report.html`;
  await writeFile(target, renderReport(manifest));
  term.out(`${target}\n`);
  return 0;
}

async function manifestOfJob(
  ref: string,
  values: { stack?: string | undefined; resources?: string | undefined; region?: string | undefined },
) {
  const { job, clients } = await findJob(ref, values);
  const { manifest } = outputLocations(job);
  const object = await clients.s3
    .send(new GetObjectCommand({ Bucket: manifest.bucket, Key: manifest.key }))
    .catch(() => undefined);
  if (object === undefined)
    throw new UsageError(`Job ${job.jobId} is ${job.status}: it has no manifest yet.`);
  return (await object.Body?.transformToString()) ?? '';
}
