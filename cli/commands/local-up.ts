import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DynamoDbJobDirectory } from '../../functions/adapters/dynamodb-job-directory.ts';
import { S3ObjectStore } from '../../functions/adapters/s3-object-store.ts';
import { LOCAL_CREDENTIALS, type LocalCloud, startLocalCloud } from '../../local/cloud/local-cloud.ts';
import { type MessageBatchesServer, startMessageBatchesServer } from '../../local/message-batches/server.ts';
import {
  LOCAL_SWEEP,
  type LocalPipeline,
  localJobDefaults,
  startLocalPipeline,
} from '../../local/pipeline/local-pipeline.ts';
import { localTypicalRecord } from '../../local/run-job.ts';
import { DEFAULT_TOKENS_PER_MINUTE } from '../../shared/config.ts';
import { EVENT_SOURCE, JOB_ENDINGS, JOB_STARTED } from '../../shared/contract/job-events.ts';
import { systemClock } from '../../shared/core/clock.ts';
import { MessageBatches } from '../../shared/message-batches/message-batches.ts';
import { knownRegion, nonNegativeNumber, positiveInteger, usdAmount } from '../arguments.ts';
import { type CommandSpec, parseCommandLine } from '../command-line.ts';
import { modelOptions, quotaOptions, resourceOptions, speedOption } from '../options.ts';
import { DEFAULT_RESOURCES_FILE, type StackResources } from '../resources.ts';
import type { Terminal } from '../terminal.ts';

export const LOCAL_UP_COMMAND = {
  name: 'local up',
  summary: 'keep a local cloud and pipeline running until Ctrl-C, for aws s3 cp, submit and status',
  description:
    'Starts the local cloud (S3, SQS, DynamoDB Local, the Bedrock stand-in) and the pipeline on it, prints ' +
    'its endpoints and an aws s3 cp line, writes a resources file for submit, status, results and cancel, ' +
    'and prints a line as each job starts and ends. Ctrl-C stops it all.',
  positionals: [],
  options: {
    region: modelOptions.region,
    ...speedOption,
    'quota-tpm': quotaOptions['quota-tpm'],
    'max-daily-cost': {
      type: 'string',
      value: 'usd',
      help: "the pipeline's daily spending cap in USD, as the stack's maxDailyCost: once the cost counted on a day (UTC) reaches it, every job stops, canceled with the reason (default: no cap)",
    },
    resources: {
      ...resourceOptions.resources,
      default: DEFAULT_RESOURCES_FILE,
      help: 'where to write the resources file the other commands read',
    },
  },
} as const satisfies CommandSpec;

/**
 * Keeps the local cloud and the pipeline running until Ctrl-C, and writes where everything is to a resources
 * file, so `aws s3 cp ... --endpoint-url`, `submit`, `status`, `results` and `cancel` work against it.
 */
export async function localUpCommand(
  args: string[],
  term: Terminal,
  stopSignal: Promise<void>,
): Promise<number> {
  const { values } = parseCommandLine(args, LOCAL_UP_COMMAND);
  const region = knownRegion(values.region);
  const speed = nonNegativeNumber('speed', values.speed, 1);
  const tokensPerMinute = positiveInteger('quota-tpm', values['quota-tpm'], DEFAULT_TOKENS_PER_MINUTE);
  const maxDailyCostUsd = usdAmount('max-daily-cost', values['max-daily-cost']);
  process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
  process.env.POWERTOOLS_LOG_LEVEL ??= 'ERROR';
  const cloud = await startLocalCloud({
    region,
    bedrock: { speed, quota: { tokensPerMinute } },
    warmDynamoDb: true,
  });
  let pipeline: LocalPipeline | undefined;
  let batchesApi: MessageBatchesServer | undefined;
  try {
    pipeline = await startLocalPipeline(cloud, {
      tokensPerMinute,
      typicalRecord: localTypicalRecord({ speed }),
      sweep: LOCAL_SWEEP,
      ...(maxDailyCostUsd === undefined ? {} : { maxDailyCostUsd }),
    });
    const resources: StackResources = {
      region: cloud.region,
      bucket: pipeline.resources.bucket,
      tableName: pipeline.resources.tableName,
      recordQueueUrl: pipeline.resources.recordQueueUrl,
      recordDlqUrl: pipeline.resources.recordDlqUrl,
      endpoints: cloud.endpoints,
      credentials: {
        accessKeyId: LOCAL_CREDENTIALS.accessKeyId,
        secretAccessKey: LOCAL_CREDENTIALS.secretAccessKey,
      },
    };
    await mkdir(path.dirname(values.resources), { recursive: true });
    await writeFile(values.resources, `${JSON.stringify(resources, null, 2)}\n`);
    batchesApi = await serveMessageBatches(cloud, pipeline);
    term.out(
      welcome(resources, { ...cloud.endpoints, messageBatches: batchesApi.baseUrl }, values.resources, term),
    );
    pipeline.shim.addRule({
      name: 'print-jobs',
      eventPattern: { source: [EVENT_SOURCE], 'detail-type': [JOB_STARTED, ...JOB_ENDINGS] },
      target: async (event) => {
        term.out(jobLine(event['detail-type'], event.detail as JobEventDetail));
      },
    });
    await stopSignal;
    term.out('Stopping the local cloud...\n');
    await rm(values.resources, { force: true });
  } finally {
    await batchesApi?.close();
    // The pollers first: stopping the cloud under them would have every receive fail, loudly.
    await pipeline?.stop().catch(() => {});
    await cloud.stop();
  }
  return 0;
}

/** Anthropic's Message Batches API over the local pipeline's bucket and ledger, on loopback. */
function serveMessageBatches(cloud: LocalCloud, pipeline: LocalPipeline): Promise<MessageBatchesServer> {
  const { bucket, tableName } = pipeline.resources;
  const directory = new DynamoDbJobDirectory(cloud.clients.documents, tableName);
  return startMessageBatchesServer(
    (baseUrl) =>
      new MessageBatches({
        store: new S3ObjectStore(cloud.clients.s3),
        ledger: {
          newestJobOf: (source) => directory.newestJobOf(source),
          cancelJob: (jobId, reason) => pipeline.ledger.cancelJob(jobId, reason),
        },
        bucket,
        jobDefaults: localJobDefaults(cloud.bedrock.regions),
        clock: systemClock,
        resultsUrl: (batchId) => `${baseUrl}/v1/messages/batches/${batchId}/results`,
      }),
  );
}

interface JobEventDetail {
  readonly jobId?: string;
  readonly input?: string;
  readonly output?: string;
  readonly reason?: string;
  readonly lane?: string;
  readonly model?: string;
}

/** A line as a job starts or ends, with what to type next. */
function jobLine(detailType: string, detail: JobEventDetail): string {
  if (detailType === JOB_STARTED) {
    return (
      `${detailType}: ${detail.jobId} ${detail.input} (${detail.model}, ${detail.lane})\n` +
      `  bedrock-batch status ${detail.jobId}\n`
    );
  }
  return `${detailType}: ${detail.jobId} ${detail.input} -> ${detail.output ?? detail.reason}\n`;
}

/** Where everything is, and how to drop a file in. */
function welcome(
  resources: StackResources,
  endpoints: LocalCloud['endpoints'] & { readonly messageBatches: string },
  resourcesFile: string,
  term: Terminal,
): string {
  return (
    `${term.bold('Local cloud running')} (region ${resources.region})\n` +
    `  S3 and SQS  ${endpoints.s3}\n  DynamoDB    ${endpoints.dynamodb}\n  Bedrock     ${endpoints.bedrock}\n` +
    `  bucket      ${resources.bucket}\n  resources   ${resourcesFile}\n\n` +
    `Drop a file in and watch it run:\n` +
    `  AWS_ACCESS_KEY_ID=${LOCAL_CREDENTIALS.accessKeyId} AWS_SECRET_ACCESS_KEY=${LOCAL_CREDENTIALS.secretAccessKey} \\\n` +
    `    aws s3 cp prompts.jsonl s3://${resources.bucket}/inputs/ --endpoint-url ${endpoints.s3} --region ${resources.region}\n` +
    `  bedrock-batch submit prompts.jsonl   (then: bedrock-batch status <job>, bedrock-batch results <job>)\n\n` +
    `Message Batches API ${endpoints.messageBatches}  (Anthropic's SDK: new Anthropic({ baseURL, apiKey: 'any' }))\n\n` +
    `Ctrl-C stops everything.\n`
  );
}
