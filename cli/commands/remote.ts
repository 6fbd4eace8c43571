import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { z } from 'zod';
import type { AwsClients } from '../../functions/adapters/clients.ts';
import { secondsUntilTokens } from '../../functions/adapters/dynamodb-budget.ts';
import { DynamoDbJobDirectory } from '../../functions/adapters/dynamodb-job-directory.ts';
import { INPUT_PREFIX, outputLocations } from '../../shared/contract/storage-layout.ts';
import type { JobLedger } from '../../shared/core/ledger.ts';
import { ENDED_JOB_STATUSES, FINALIZED_JOB_STATUSES, type JobRecord } from '../../shared/core/model.ts';
import { cachePhrase } from '../../shared/output/manifest.ts';
import { jobIdOf } from '../../shared/pipeline/job.ts';
import { describeJob, type JobStatusView } from '../../shared/pipeline/status.ts';
import { positiveInteger } from '../arguments.ts';
import { type CommandSpec, parseCommandLine } from '../command-line.ts';
import { JobFailedError, UsageError } from '../errors.ts';
import { checkInputFile, checkOutputDirectory } from '../input-file.ts';
import { findJob, JOB_REF_HELP } from '../job-ref.ts';
import { jsonOption, modelOptions, outOption, resourceOptions } from '../options.ts';
import { redrive } from '../redrive.ts';
import { resolveResources } from '../resources.ts';
import type { Terminal } from '../terminal.ts';
import { count, duration, number } from '../words.ts';
import { sourceRegions } from './quotas.ts';
import { checkModelChoice, fileMetadata, waitingWords } from './run.ts';

const jobPositional = { name: '<job>', help: JOB_REF_HELP } as const;

export const SUBMIT_COMMAND = {
  name: 'submit',
  summary: 'upload a file to a deployed (or the local) pipeline and print the job it starts',
  description:
    "Uploads a file to the pipeline's inputs/ with its options as the object's metadata, as aws s3 cp with " +
    '--metadata would, and prints the job it starts. The pipeline checks the model and quota as the job begins.',
  positionals: [
    { name: '<file.jsonl>', help: 'prompts, one JSON object a line (.jsonl, or .jsonl.gz)', path: true },
  ],
  options: { ...modelOptions, ...resourceOptions },
  examples: ['bedrock-batch submit prompts.jsonl --stack BedrockBatch --lane auto --deadline 12h'],
} as const satisfies CommandSpec;

export const JOBS_COMMAND = {
  name: 'jobs',
  summary: 'the newest jobs, running or ended: status, progress, lane, age and input',
  description:
    'Lists the newest jobs of a deployed (or the local) pipeline, whether they started with submit or an ' +
    'upload to inputs/: each with its status, records done, lane, age and input. Any job command takes a ' +
    "job's id or its input's S3 URI.",
  positionals: [],
  options: {
    limit: { type: 'string', value: 'n', default: '20', help: 'how many jobs, newest first (at most 100)' },
    ...resourceOptions,
    ...jsonOption,
  },
} as const satisfies CommandSpec;

export const STATUS_COMMAND = {
  name: 'status',
  summary: "a job's progress: records, tokens, cost, waits and throttles",
  description:
    "Prints a job's state from the ledger: records done, tokens and cost so far, waits and throttles.",
  positionals: [jobPositional],
  options: { ...resourceOptions, ...jsonOption },
} as const satisfies CommandSpec;

export const RESULTS_COMMAND = {
  name: 'results',
  summary: "download a finished job's output and manifest",
  description:
    "Downloads a finished job's output and manifest, named after its input as run names them; with --wait, " +
    'waits for a running job to end first.',
  positionals: [jobPositional],
  options: {
    ...resourceOptions,
    ...outOption('where the output and manifest go'),
    wait: {
      type: 'boolean',
      default: false,
      help: 'wait for the job to end (checking every few seconds), then download; a job that failed has none',
    },
  },
} as const satisfies CommandSpec;

export const CANCEL_COMMAND = {
  name: 'cancel',
  summary: 'stop a job: records not yet run become canceled results',
  description:
    'Asks a running job to stop: records not yet run become "canceled" results, then the job is finalized ' +
    'with the records already done.',
  positionals: [jobPositional],
  options: resourceOptions,
} as const satisfies CommandSpec;

export const REDRIVE_COMMAND = {
  name: 'redrive',
  summary: "move the dead-letter queue's records back to the record queue, after a fix",
  description:
    "Moves the messages of the record queue's dead-letter queue back to the record queue, once what stopped " +
    'them is fixed.',
  positionals: [],
  options: resourceOptions,
} as const satisfies CommandSpec;

/** Uploads a file to the deployed (or local) pipeline's inputs/ and prints the job it starts. */
export async function submitCommand(args: string[], term: Terminal): Promise<number> {
  const { values, positionals } = parseCommandLine(args, SUBMIT_COMMAND);
  const file = await checkInputFile(positionals[0], SUBMIT_COMMAND.name);
  const { resources, clients } = await resolveResources(values);
  const metadata = fileMetadata(values);
  // The deployment's regions are checked when the job starts; residency and the model are checked here.
  checkModelChoice(metadata, values.regions === undefined ? [resources.region] : sourceRegions(values));
  const key = `${INPUT_PREFIX}${path.basename(file)}`;
  // Streamed from the file, in parts when it is large: a file of any size, never whole in memory.
  const put = await new Upload({
    client: clients.s3,
    params: { Bucket: resources.bucket, Key: key, Body: createReadStream(file), Metadata: metadata },
  }).done();
  const jobId = jobIdOf(resources.bucket, key, put.VersionId ?? (put.ETag ?? '').replaceAll('"', ''));
  term.out(`Submitted s3://${resources.bucket}/${key}\njob ${jobId}\n  bedrock-batch status ${jobId}\n`);
  return 0;
}

/** The newest jobs as a table: what a person looks for after `aws s3 cp`. */
export async function jobsCommand(args: string[], term: Terminal): Promise<number> {
  const { values } = parseCommandLine(args, JOBS_COMMAND);
  const limit = positiveInteger('limit', values.limit, 20);
  if (limit > MAX_LISTED_JOBS)
    throw new UsageError(`--limit must be at most ${MAX_LISTED_JOBS}, not ${limit}.`);
  const { resources, clients } = await resolveResources(values);
  const jobs = await new DynamoDbJobDirectory(clients.documents, resources.tableName).recentJobs(limit);
  const views = jobs.map(describeJob);
  if (values.json) {
    term.out(`${JSON.stringify(views, null, 2)}\n`);
    return 0;
  }
  if (views.length === 0) {
    term.out(
      `No jobs yet in ${resources.tableName}. Upload a file to s3://${resources.bucket}/${INPUT_PREFIX}, or use submit.\n`,
    );
    return 0;
  }
  const now = Date.now();
  const rows = views.map((view) => [
    view.jobId,
    `${view.status}${view.cancelRequested && !FINALIZED_JOB_STATUSES.has(view.status) ? ' (cancel requested)' : ''}`,
    progressOf(view),
    view.lane,
    duration((now - Date.parse(view.createdAt)) / 1000),
    view.input,
  ]);
  term.out(table(['JOB', 'STATUS', 'DONE', 'LANE', 'AGE', 'INPUT'], rows));
  return 0;
}

const MAX_LISTED_JOBS = 100;

/** `6/11 (54.5%)`, `40/300+` while the file is still being read. */
function progressOf(view: JobStatusView): string {
  const { done, total, read } = view.records;
  if (total === undefined) return `${number(done)}/${number(read)}+`;
  return `${number(done)}/${number(total)}${view.percentDone === undefined ? '' : ` (${view.percentDone}%)`}`;
}

/** Columns padded to their widest cell, the last one left as it is. */
function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column] ?? 0)))
      .join('  ');
  return `${[header, ...rows].map(line).join('\n')}\n`;
}

export async function statusCommand(args: string[], term: Terminal): Promise<number> {
  const { values, positionals } = parseCommandLine(args, STATUS_COMMAND);
  const { job, clients, resources } = await findJob(positionals[0], values);
  const view = describeJob(job);
  const { output, manifest } = outputLocations(job);
  const failures = FINALIZED_JOB_STATUSES.has(job.status) ? await failuresOf(job, clients) : [];
  const tokenWaitSeconds = ENDED_JOB_STATUSES.has(job.status)
    ? 0
    : await secondsUntilTokens(clients.documents, resources.tableName, job.settings);
  if (values.json) {
    const extras = { ...(failures.length > 0 ? { failures } : {}), tokenWaitSeconds };
    term.out(`${JSON.stringify({ ...view, ...extras }, null, 2)}\n`);
    return 0;
  }
  const waiting = waitingWords({ job, tokenWaitSeconds });
  const { records } = view;
  const cached = cachePhrase(job.totals);
  term.out(
    `${term.bold(view.jobId)} ${view.status}${view.cancelRequested ? ' (cancel requested)' : ''}\n` +
      `  ${view.input} · ${view.model} · ${view.endpoint} · ${view.region}\n` +
      `  records ${records.done}/${records.total ?? `${records.read}+`} done${view.percentDone === undefined ? '' : ` (${view.percentDone}%)`}: ` +
      `${records.succeeded} succeeded, ${records.failed} failed, ${records.canceled} canceled\n` +
      `  tokens in ${view.tokens.input} out ${view.tokens.output} · estimated cost $${view.estimatedCostUsd}\n` +
      (cached === undefined ? '' : `  ${cached}\n`) +
      `  ${countersPhrase(view.counters)}\n` +
      (waiting === undefined ? '' : `  ${waiting}\n`) +
      `  lane ${view.lane}${view.deadlineHours === undefined ? '' : `, deadline ${view.deadlineHours} h`}\n` +
      (view.pools.length > 1
        ? `  pools: ${view.pools.map(({ pool, records }) => `${pool} ${records}`).join(', ')}\n`
        : '') +
      view.batchParts
        .map((part) => `  batch part ${part.part}: ${part.records} records, ${part.endedAs ?? part.state}\n`)
        .join('') +
      (view.failureReason === undefined ? '' : `  ${term.red(view.failureReason)}\n`) +
      failures
        .map(
          ({ code, records: count, firstLine }) =>
            `  ${term.red(code)}: ${count} failed, the first on line ${firstLine}\n`,
        )
        .join('') +
      (view.inputNotice === undefined ? '' : `  ${term.red('note')}: ${view.inputNotice}\n`) +
      `  ${timing(view)}\n` +
      (FINALIZED_JOB_STATUSES.has(job.status)
        ? `  output   s3://${output.bucket}/${output.key}\n  manifest s3://${manifest.bucket}/${manifest.key}\n`
        : ''),
  );
  return 0;
}

/** `started 3 min ago, running for 3 min` or `took 12 min, ended 2 h ago`. */
function timing(view: JobStatusView): string {
  const now = Date.now();
  const started = Date.parse(view.createdAt);
  if (view.finishedAt === undefined) return `started ${duration((now - started) / 1000)} ago`;
  const finished = Date.parse(view.finishedAt);
  return `took ${duration((finished - started) / 1000)}, ended ${duration((now - finished) / 1000)} ago`;
}

/** A finished job's failed records by error code, as its manifest counts them; none when it has none. */
async function failuresOf(
  job: JobRecord,
  clients: AwsClients,
): Promise<Array<{ code: string; records: number; firstLine: number }>> {
  const { manifest } = outputLocations(job);
  const object = await clients.s3
    .send(new GetObjectCommand({ Bucket: manifest.bucket, Key: manifest.key }))
    .catch(() => undefined);
  const text = await object?.Body?.transformToString();
  if (text === undefined) return [];
  const parsed = manifestErrors.safeParse(JSON.parse(text));
  return parsed.success ? (parsed.data.stats?.errors ?? []) : [];
}

/** The part of a manifest `status` reads: its failed records by code. */
const manifestErrors = z.object({
  stats: z
    .object({
      errors: z.array(z.object({ code: z.string(), records: z.number(), firstLine: z.number() })).optional(),
    })
    .optional(),
});

/** Waits, retries, throttles, receives and calls, as the job's counters have them. */
function countersPhrase(counters: JobStatusView['counters']): string {
  return (
    `${counters.budgetWaits} waited for tokens, ${counters.sentBackToWait} sent back to wait, ` +
    `${counters.retried} retried, ${counters.bedrockThrottles} throttled · ` +
    `${counters.receives} receives, ${counters.bedrockCalls} Bedrock calls`
  );
}

export async function resultsCommand(args: string[], term: Terminal): Promise<number> {
  const { values, positionals } = parseCommandLine(args, RESULTS_COMMAND);
  await checkOutputDirectory(values.out);
  const found = await findJob(positionals[0], values);
  const { clients } = found;
  const job = values.wait ? await untilEnded(found.job, found.ledger) : found.job;
  if (!FINALIZED_JOB_STATUSES.has(job.status)) {
    if (job.status === 'failed')
      throw new JobFailedError(`Job ${job.jobId} failed: ${job.failureReason ?? 'no reason given'}`);
    throw new UsageError(
      `Job ${job.jobId} is ${job.status} (${job.doneRecords}/${job.totalRecords ?? '?'} records): no results yet.`,
    );
  }
  const { output, manifest } = outputLocations(job);
  await mkdir(values.out, { recursive: true });
  // Named after the input, as `run` names them: sample.jsonl -> sample.jsonl.out, sample.jsonl.manifest.json.out.
  const name = path.posix.basename(job.source.key);
  const downloads = [
    [output, `${name}.out`],
    [manifest, `${name}.manifest.json.out`],
  ] as const;
  for (const [location, fileName] of downloads) {
    const object = await clients.s3.send(
      new GetObjectCommand({ Bucket: location.bucket, Key: location.key }),
    );
    const target = path.join(values.out, fileName);
    // Streamed to the file: an output of any size, never whole in memory.
    if (!(object.Body instanceof Readable))
      throw new Error(`No body for s3://${location.bucket}/${location.key}`);
    await pipeline(object.Body, createWriteStream(target));
    term.out(`${target}\n`);
  }
  return 0;
}

/** How often `results --wait` looks at the job. */
export const RESULTS_WAIT_POLL_MS = 2_000;

/** The job once it has ended, looked at every few seconds. */
async function untilEnded(job: JobRecord, ledger: Pick<JobLedger, 'getJob'>): Promise<JobRecord> {
  for (let current = job; ; ) {
    if (ENDED_JOB_STATUSES.has(current.status)) return current;
    await sleep(RESULTS_WAIT_POLL_MS);
    current = (await ledger.getJob(job.jobId)) ?? current;
  }
}

export async function cancelCommand(args: string[], term: Terminal): Promise<number> {
  const { values, positionals } = parseCommandLine(args, CANCEL_COMMAND);
  const { job, ledger } = await findJob(positionals[0], values);
  if (!(await ledger.cancelJob(job.jobId))) {
    // Asking twice is not a mistake: the job is (being) canceled, as asked.
    if (job.status === 'canceled' || job.cancelRequested === true) {
      term.out(`Job ${job.jobId} is ${job.status === 'canceled' ? 'canceled' : 'being canceled'} already.\n`);
      return 0;
    }
    throw new UsageError(`Job ${job.jobId} is already ${job.status}; nothing to cancel.`);
  }
  term.out(
    `Canceling ${job.jobId}: records not yet run become "canceled" results, then the job is finalized.\n`,
  );
  return 0;
}

/** Moves the DLQ's messages back to the record queue (after a fix): an SQS move task on AWS. */
export async function redriveCommand(args: string[], term: Terminal): Promise<number> {
  const { values } = parseCommandLine(args, REDRIVE_COMMAND);
  const { resources, clients } = await resolveResources(values);
  const moved = await redrive(
    clients.sqs,
    { sourceUrl: resources.recordQueueUrl, deadLetterUrl: resources.recordDlqUrl },
    resources.endpoints === undefined,
  );
  term.out(
    moved.how === 'move-task'
      ? `Moving ${count(moved.messages, 'message')} from the DLQ back to the record queue (SQS move task ${moved.taskHandle ?? ''}); the DLQ empties as SQS moves them.\n`
      : `Moved ${count(moved.messages, 'message')} from the DLQ back to the record queue.\n`,
  );
  return 0;
}
