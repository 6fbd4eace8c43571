import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { perRegion } from '../functions/adapters/clients.ts';
import { secondsUntilTokens } from '../functions/adapters/dynamodb-budget.ts';
import { ServiceQuotasSource } from '../functions/adapters/service-quotas.ts';
import type { TypicalRecord } from '../shared/budget/throughput.ts';
import { DEFAULT_TYPICAL_RECORD } from '../shared/budget/worker-shape.ts';
import { DEFAULT_TOKENS_PER_MINUTE } from '../shared/config.ts';
import { JOB_FAILED } from '../shared/contract/job-events.ts';
import { INPUT_PREFIX, outputLocations } from '../shared/contract/storage-layout.ts';
import { ENDED_JOB_STATUSES, type JobRecord } from '../shared/core/model.ts';
import { nanoUsdToUsd } from '../shared/cost/cost.ts';
import { PipelineError } from '../shared/errors.ts';
import { cachePhrase } from '../shared/output/manifest.ts';
import { jobIdOf } from '../shared/pipeline/job.ts';
import type { QuotaPool } from '../shared/quotas/pools.ts';
import {
  type QuotaReading,
  type QuotaReadingSettings,
  readPoolQuotas,
} from '../shared/quotas/service-quotas.ts';
import { LOCAL_CREDENTIALS, type LocalCloud, startLocalCloud } from './cloud/local-cloud.ts';
import { LOCAL_SWEEP, type LocalPipeline, startLocalPipeline } from './pipeline/local-pipeline.ts';

export interface LocalJobOptions {
  readonly file: string;
  readonly outDir: string;
  /** The stand-in's latency factor: 1 is realistic, 0 instant. */
  readonly speed?: number;
  /** Per-file options, as `aws s3 cp --metadata` would set them. */
  readonly metadata?: Readonly<Record<string, string>>;
  /**
   * The quota the user gave: the stand-in's in every pool, and what the budget spends (times `quotaShare`).
   * Without it each pool's quota is read from the stand-in's Service Quotas.
   */
  readonly tokensPerMinute?: number;
  /** The quota pools the file may use (its model's, through the endpoints and regions it allows). */
  readonly pools?: readonly QuotaPool[];
  /** The pools' quotas, read already (from AWS with --bedrock aws): nothing is read from the stand-in. */
  readonly quotas?: QuotaReading;
  /** The part of the quota the pipeline spends (0 < share <= 1): other applications may need the rest. */
  readonly quotaShare?: number;
  readonly region?: string;
  /** The source regions calls may be made from, the home region (`region`) first. */
  readonly regions?: readonly string[];
  /** Calls go to the local stand-in, or to real Bedrock with the default AWS credential chain. */
  readonly bedrock?: 'local' | 'aws';
  readonly log?: (line: string) => void;
  /** Called about twice a second while the job runs; the default logs a progress line when it changes. */
  readonly onProgress?: (progress: JobProgress) => void;
}

export interface JobProgress {
  readonly job: JobRecord | undefined;
  /** Records sent back to the queue to try again (Bedrock errors and budget waits). */
  readonly retries: number;
  /** Throttles Bedrock (the stand-in) answered. */
  readonly bedrockThrottles: number;
  readonly elapsedMs: number;
  /** Until the tokens granted on the job's pools may all be spent: calls granted now start no sooner. */
  readonly tokenWaitSeconds?: number;
}

export interface LocalJobResult {
  readonly outputPath: string;
  readonly manifestPath: string;
  readonly manifest: Record<string, unknown>;
}

/**
 * Runs one file through the whole pipeline on the local cloud, the way it runs on AWS: upload to inputs/,
 * the S3 event, enqueue, the workers calling the Bedrock stand-in, the finalizer. Writes the output file and
 * manifest to `outDir`.
 */
export async function runLocalJob(options: LocalJobOptions): Promise<LocalJobResult> {
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
  process.env.POWERTOOLS_LOG_LEVEL ??= 'ERROR';
  const body = await readFile(options.file);
  const name = path.basename(options.file);

  const tokensPerMinute = options.tokensPerMinute ?? DEFAULT_TOKENS_PER_MINUTE;
  log(
    `Starting the local cloud (S3, SQS, DynamoDB Local, Bedrock ${options.bedrock === 'aws' ? 'on AWS' : 'stand-in'})...`,
  );
  const cloud = await startLocalCloud({
    ...(options.region === undefined ? {} : { region: options.region }),
    warmDynamoDb: true,
    bedrock: {
      speed: options.speed ?? 1,
      quota: { tokensPerMinute },
      ...(options.regions === undefined ? {} : { regions: options.regions }),
    },
  });
  const stopper = stopOnSignals(cloud, log);
  try {
    const quotas = options.quotas ?? (await standInQuotas(cloud, options));
    const running = await startLocalPipeline(cloud, {
      tokensPerMinute: Math.floor(tokensPerMinute * (options.quotaShare ?? 1)),
      quotas,
      typicalRecord: localTypicalRecord(options),
      sweep: LOCAL_SWEEP,
      ...(options.bedrock === 'aws' ? { bedrockIn: realBedrock } : {}),
    });
    stopper.pipeline = running;
    const bucket = running.resources.bucket;
    const key = `${INPUT_PREFIX}${name}`;
    const put = await cloud.clients.s3.send(
      new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, Metadata: { ...options.metadata } }),
    );
    const jobId = jobIdOf(bucket, key, put.VersionId ?? (put.ETag ?? '').replaceAll('"', ''));
    log(`Uploaded ${name} to s3://${bucket}/${key} (job ${jobId})`);
    const completion = await watchJob(
      cloud,
      running,
      { jobId, key },
      options.onProgress ?? progressLogger(log),
    );
    if (completion['detail-type'] === JOB_FAILED) {
      throw new PipelineError(
        'JOB_FAILED',
        `The job failed: ${String((completion.detail as { reason?: unknown }).reason)}`,
      );
    }
    const result = await downloadResults(cloud, { jobId, source: { bucket, key } }, options.outDir, name);
    log(`${completion['detail-type']}: results in ${result.outputPath}, manifest in ${result.manifestPath}`);
    return result;
  } finally {
    await stopper.dispose();
  }
}

/** Each pool's quota as the stand-in's Service Quotas says it, or as the user gave it. */
function standInQuotas(cloud: LocalCloud, options: LocalJobOptions): Promise<QuotaReading> {
  return readStandInQuotas(cloud, options.pools ?? [], {
    configured: options.tokensPerMinute,
    fallback: DEFAULT_TOKENS_PER_MINUTE,
    share: options.quotaShare ?? 1,
  });
}

/** The pools' quotas as the local cloud's Service Quotas serves them, through the real SDK client. */
export async function readStandInQuotas(
  cloud: LocalCloud,
  pools: readonly QuotaPool[],
  settings: QuotaReadingSettings,
): Promise<QuotaReading> {
  const source = new ServiceQuotasSource({
    endpoint: cloud.endpoints.bedrock,
    credentials: LOCAL_CREDENTIALS,
  });
  try {
    return await readPoolQuotas(pools, source, settings);
  } finally {
    source.destroy();
  }
}

/**
 * The record the worker is sized for: the stack's, answered as fast as the stand-in answers at its speed
 * (real Bedrock's latency with --bedrock aws).
 */
export function localTypicalRecord(options: Pick<LocalJobOptions, 'speed' | 'bedrock'>): TypicalRecord {
  const speed = options.bedrock === 'aws' ? 1 : (options.speed ?? 1);
  return { ...DEFAULT_TYPICAL_RECORD, latencySeconds: DEFAULT_TYPICAL_RECORD.latencySeconds * speed };
}

/**
 * SIGINT and SIGTERM stop the run with one line and the shell's exit code. The pollers stop first: stopping
 * the cloud under them would have every receive fail, loudly.
 */
function stopOnSignals(cloud: LocalCloud, log: (line: string) => void) {
  let stopping: Promise<void> | undefined;
  const stopper = {
    pipeline: undefined as LocalPipeline | undefined,
    stopAll: () => {
      stopping ??= (async () => {
        await stopper.pipeline?.stop().catch(() => {});
        await cloud.stop();
      })();
      return stopping;
    },
    dispose: async () => {
      process.removeListener('SIGINT', onSignal);
      process.removeListener('SIGTERM', onSignal);
      await stopper.stopAll();
    },
  };
  const onSignal = (signal: NodeJS.Signals) => {
    log(`Stopping (${signal}): the job is left unfinished.`);
    void stopper.stopAll().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return stopper;
}

/** Logs a progress line each time it changes. */
function progressLogger(log: (line: string) => void): (progress: JobProgress) => void {
  let lastLine = '';
  return (progress) => {
    const line = progressLine(progress);
    if (line !== lastLine) log(line);
    lastLine = line;
  };
}

/** Reports progress twice a second until the job's completion (or failure) event, which it returns. */
async function watchJob(
  cloud: LocalCloud,
  running: LocalPipeline,
  { jobId, key }: { jobId: string; key: string },
  onProgress: (progress: JobProgress) => void,
) {
  const started = Date.now();
  const report = async () => {
    const job = await running.ledger.getJob(jobId);
    const waiting =
      job === undefined || ENDED_JOB_STATUSES.has(job.status)
        ? 0
        : await secondsUntilTokens(cloud.clients.documents, running.resources.tableName, job.settings);
    onProgress({
      job,
      retries: running.workerPoller.stats.recordsReportedFailed,
      bedrockThrottles: cloud.bedrock.state().responses.ThrottlingException ?? 0,
      elapsedMs: Date.now() - started,
      tokenWaitSeconds: waiting,
    });
  };
  const progress = setInterval(() => void report(), 500);
  const completion = await running.completion(key, 24 * 3_600_000).finally(() => clearInterval(progress));
  await report();
  return completion;
}

/** The job's output file and manifest, copied from the local bucket into `outDir`. */
async function downloadResults(
  cloud: LocalCloud,
  job: Pick<JobRecord, 'jobId' | 'source'>,
  outDir: string,
  name: string,
): Promise<LocalJobResult> {
  const { output, manifest } = outputLocations(job);
  await mkdir(outDir, { recursive: true });
  const outputPath = path.join(outDir, `${name}.out`);
  const manifestPath = path.join(outDir, `${name}.manifest.json.out`);
  const read = async (objectKey: string) =>
    (await (
      await cloud.clients.s3.send(new GetObjectCommand({ Bucket: job.source.bucket, Key: objectKey }))
    ).Body?.transformToString()) ?? '';
  await writeFile(outputPath, await read(output.key));
  const manifestText = await read(manifest.key);
  await writeFile(manifestPath, manifestText);
  return { outputPath, manifestPath, manifest: JSON.parse(manifestText) as Record<string, unknown> };
}

/** Real Bedrock, through the default AWS credential chain, for `--bedrock aws`: a client per source region. */
const realBedrock = perRegion((region) => new BedrockRuntimeClient({ region, maxAttempts: 2 }));

export function progressLine(progress: JobProgress): string {
  const counts = progressCounts(progress);
  return progress.job === undefined ? counts : `${counts} · ${(progress.elapsedMs / 1000).toFixed(1)} s`;
}

/** The job's counts as a progress line says them, without the time: a line worth printing when they change. */
export function progressCounts({ job, retries, bedrockThrottles }: JobProgress): string {
  if (job === undefined) return 'waiting for the job to start';
  const { totals } = job;
  const number = (value: number) => value.toLocaleString('en-US');
  const total = job.totalRecords === undefined ? `${number(job.recordsRead)}+` : number(job.totalRecords);
  return [
    `${number(job.doneRecords)}/${total} records`,
    `${number(totals.successRecordCount)} succeeded`,
    `${number(totals.errorRecordCount)} failed`,
    `tokens in ${number(totals.inputTokenCount)} out ${number(totals.outputTokenCount)}`,
    `${number(retries)} retried`,
    `${number(bedrockThrottles)} throttled`,
    `$${nanoUsdToUsd(totals.costNanoUsd).toFixed(4)}`,
    cachePhrase(totals),
  ]
    .filter((part) => part !== undefined)
    .join(' · ');
}
