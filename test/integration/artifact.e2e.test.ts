import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { App } from 'aws-cdk-lib';
import type { Context, EventBridgeEvent, SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../infra/app.ts';
import { LOCAL_CREDENTIALS, type LocalCloud, startLocalCloud } from '../../local/cloud/local-cloud.ts';
import { startEventBridgeEndpoint } from '../../local/glue/eventbridge-endpoint.ts';
import { EventBridgeShim } from '../../local/glue/eventbridge-shim.ts';
import { SqsPoller } from '../../local/glue/sqs-poller.ts';
import { startLocalPipeline } from '../../local/pipeline/local-pipeline.ts';
import { type PipelineResources, provisionPipeline } from '../../local/pipeline/provision.ts';
import { ENQUEUE_CONTINUATION, EVENT_SOURCE } from '../../shared/contract/job-events.ts';
import { outputLocations } from '../../shared/contract/storage-layout.ts';
import { inputObjectCreatedPattern } from '../../shared/events/patterns.ts';
import { BundledFunction } from '../support/bundled-function.ts';
import { readFixture } from '../support/factories.ts';

interface TemplateResource {
  readonly Type: string;
  readonly Properties: Record<string, unknown>;
}
type Template = { readonly Resources: Record<string, TemplateResource> };

let work = '';
let cloud: LocalCloud;
let template: Template;
let assemblyDirectory = '';
const started: Array<{ stop(): unknown }> = [];

beforeAll(async () => {
  process.env.POWERTOOLS_METRICS_DISABLED = 'true';
  process.env.POWERTOOLS_LOG_LEVEL = 'ERROR';
  work = await mkdtemp(path.join(tmpdir(), 'bedrock-batch-artifact-'));
  cloud = await startLocalCloud({ bedrock: { speed: 0 } });
  // Deployed as `cdk deploy -c bedrockRegion=... -c allowedModels=...` would, allowing the sample's models.
  const context = { bedrockRegion: cloud.region, allowedModels: ['opus-4.6', 'sonnet-4.5', 'haiku-4.5'] };
  const app = buildApp(new App({ outdir: path.join(work, 'cdk.out'), context }));
  const assembly = app.synth();
  const [stack] = assembly.stacks;
  if (stack === undefined) throw new Error('the app has no stack');
  template = stack.template as Template;
  assemblyDirectory = assembly.directory;
}, 180_000);

afterAll(async () => {
  for (const running of started.reverse()) await running.stop();
  await cloud?.stop();
  await rm(work, { recursive: true, force: true });
});

/** The template's function by its POWERTOOLS_SERVICE_NAME: handler, timeout, environment, asset directory. */
async function deployed(name: string) {
  const [id, resource] =
    Object.entries(template.Resources).find(
      ([, candidate]) =>
        candidate.Type === 'AWS::Lambda::Function' &&
        (candidate.Properties.Environment as { Variables?: Record<string, unknown> } | undefined)?.Variables
          ?.POWERTOOLS_SERVICE_NAME === name,
    ) ?? [];
  if (id === undefined || resource === undefined) throw new Error(`no ${name} function in the template`);
  const { S3Key } = resource.Properties.Code as { S3Key: string };
  const assets = JSON.parse(
    await readFile(path.join(assemblyDirectory, 'BedrockBatchPipeline.assets.json'), 'utf8'),
  ) as { files: Record<string, { source: { path: string } }> };
  const asset = assets.files[S3Key.replace(/\.zip$/, '')];
  if (asset === undefined) throw new Error(`no asset ${S3Key} in the assembly`);
  return {
    id,
    handler: resource.Properties.Handler as string,
    timeoutMs: (resource.Properties.Timeout as number) * 1000,
    variables: (resource.Properties.Environment as { Variables: Record<string, unknown> }).Variables,
    assetDirectory: path.join(assemblyDirectory, asset.source.path),
  };
}

/** The local resource each of the template's references stands for; anything else fails the test. */
function resolver(resources: PipelineResources) {
  const queueOf = (functionId: string) => {
    const mapping = Object.values(template.Resources).find(
      (resource) =>
        resource.Type === 'AWS::Lambda::EventSourceMapping' &&
        (resource.Properties.FunctionName as { Ref?: string }).Ref === functionId,
    );
    if (mapping === undefined) throw new Error(`no queue feeds ${functionId}`);
    return (mapping.Properties.EventSourceArn as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
  };
  return (functions: { worker: string; finalizer: string; batch: string }) => {
    const recordQueue = queueOf(functions.worker);
    const redrive = template.Resources[recordQueue]?.Properties.RedrivePolicy as {
      deadLetterTargetArn: { 'Fn::GetAtt': [string, string] };
    };
    const byId: Record<string, string> = {
      [recordQueue]: resources.recordQueueUrl,
      [redrive.deadLetterTargetArn['Fn::GetAtt'][0]]: resources.recordDlqUrl,
      [queueOf(functions.finalizer)]: resources.finalizeQueueUrl,
      [queueOf(functions.batch)]: resources.deadlineQueueUrl,
    };
    return (value: unknown): string => {
      if (typeof value === 'string') return value;
      const ref = (value as { Ref?: string }).Ref;
      const type = ref === undefined ? undefined : template.Resources[ref]?.Type;
      if (type === 'AWS::S3::Bucket') return resources.bucket;
      if (type === 'AWS::DynamoDB::Table') return resources.tableName;
      if (ref !== undefined && byId[ref] !== undefined) return byId[ref];
      const [role, attribute] = (value as { 'Fn::GetAtt'?: [string, string] })['Fn::GetAtt'] ?? [];
      if (role !== undefined && template.Resources[role]?.Type === 'AWS::IAM::Role' && attribute === 'Arn')
        return `arn:aws:iam::000000000000:role/${role}`;
      throw new Error(`the test cannot stand in for ${JSON.stringify(value)}`);
    };
  };
}

/** The function as deployed: its template environment, resolved, and the endpoints of the local cloud. */
async function startDeployed(name: string, resolve: (value: unknown) => string, eventBridge: string) {
  const fn = await deployed(name);
  const running = await BundledFunction.start({
    name,
    assetDirectory: fn.assetDirectory,
    handler: fn.handler,
    timeoutMs: fn.timeoutMs,
    environment: {
      ...Object.fromEntries(Object.entries(fn.variables).map(([key, value]) => [key, resolve(value)])),
      AWS_REGION: cloud.region,
      AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
      AWS_ENDPOINT_URL_S3: cloud.endpoints.s3,
      AWS_ENDPOINT_URL_SQS: cloud.endpoints.sqs,
      AWS_ENDPOINT_URL_DYNAMODB: cloud.endpoints.dynamodb,
      AWS_ENDPOINT_URL_BEDROCK_RUNTIME: cloud.endpoints.bedrock,
      AWS_ENDPOINT_URL_BEDROCK: cloud.endpoints.bedrock,
      AWS_ENDPOINT_URL_EVENTBRIDGE: eventBridge,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    },
  });
  started.push(running);
  return { ...fn, running };
}

/** A file through the pipeline's deployed functions, on the local cloud: the output and the sweeper's answer. */
async function runThroughArtifacts(key: string, body: Buffer) {
  const resources = await provisionPipeline(cloud.clients, {
    prefix: 'artifact',
    recordVisibilitySeconds: 30,
    finalizeVisibilitySeconds: 30,
  });
  const shim = new EventBridgeShim({
    region: cloud.region,
    s3: cloud.emulationS3,
    objectCreated: cloud.objectCreated,
  });
  shim.enableBucket(resources.bucket);
  const bus = await startEventBridgeEndpoint(shim);
  started.push({ stop: () => bus.close() }, { stop: () => shim.close() });
  const ids = {
    worker: (await deployed('worker')).id,
    finalizer: (await deployed('finalizer')).id,
    batch: (await deployed('batch')).id,
  };
  const resolve = resolver(resources)(ids);
  const [enqueue, worker, finalizer, sweeper] = await Promise.all(
    ['enqueue', 'worker', 'finalizer', 'sweeper'].map((name) => startDeployed(name, resolve, bus.endpoint)),
  );
  if (enqueue === undefined || worker === undefined || finalizer === undefined || sweeper === undefined)
    throw new Error('a function did not start');
  const target = (event: unknown) => enqueue.running.invoke(event);
  shim.addRule({ name: 'start-job', eventPattern: inputObjectCreatedPattern(resources.bucket), target });
  shim.addRule({
    name: 'continue-enqueue',
    eventPattern: { source: [EVENT_SOURCE], 'detail-type': [ENQUEUE_CONTINUATION] },
    target,
  });
  const poller = (queue: 'record' | 'finalize', fn: typeof worker) =>
    new SqsPoller({
      sqs: cloud.clients.sqs,
      region: cloud.region,
      queueUrl: queue === 'record' ? resources.recordQueueUrl : resources.finalizeQueueUrl,
      queueArn: queue === 'record' ? resources.recordQueueArn : resources.finalizeQueueArn,
      functionName: queue,
      handler: async (event: SQSEvent, _context: Context) =>
        ((await fn.running.invoke(event)) as {
          batchItemFailures: Array<{ itemIdentifier: string }>;
        } | null) ?? {
          batchItemFailures: [],
        },
      batchSize: queue === 'record' ? 10 : 1,
      maxConcurrency: 1,
      timeoutMs: fn.timeoutMs,
    });
  const pollers = [poller('record', worker), poller('finalize', finalizer)];
  for (const running of pollers) {
    running.start();
    started.push(running);
  }

  await cloud.clients.s3.send(new PutObjectCommand({ Bucket: resources.bucket, Key: key, Body: body }));
  const completed = await eventFor(shim, `s3://${resources.bucket}/${key}`);
  const swept = await sweeper.running.invoke(scheduledEvent());
  const { jobId } = completed.detail as { jobId: string };
  return { output: await outputOf(resources.bucket, key, jobId), completed, swept };
}

async function eventFor(shim: EventBridgeShim, input: string) {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const found = shim.events.find(
      (event) =>
        event['detail-type'] === 'Batch Job Completed' &&
        (event.detail as { input?: string }).input === input,
    );
    if (found !== undefined) return found as EventBridgeEvent<string, unknown>;
    if (Date.now() > deadline) throw new Error(`no completion event for ${input}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function outputOf(bucket: string, key: string, jobId: string): Promise<string> {
  const { output } = outputLocations({ jobId, source: { bucket, key } });
  const object = await cloud.clients.s3.send(new GetObjectCommand({ Bucket: bucket, Key: output.key }));
  return (await object.Body?.transformToString()) ?? '';
}

function scheduledEvent() {
  return {
    version: '0',
    id: 'sweep-1',
    'detail-type': 'Scheduled Event',
    source: 'aws.events',
    account: '000000000000',
    time: new Date().toISOString(),
    region: cloud.region,
    resources: [],
    detail: {},
  };
}

describe("the deployed artifact: each function's bundle from the cloud assembly", () => {
  it('runs a file with exactly the template environment and writes what the source tree writes', async () => {
    // Prepare: the same file through the functions as built from the sources.
    const body = readFixture('prompts/sample.jsonl');
    const fromSource = await startLocalPipeline(cloud, { prefix: 'source' });
    await cloud.clients.s3.send(
      new PutObjectCommand({ Bucket: fromSource.resources.bucket, Key: 'inputs/sample.jsonl', Body: body }),
    );
    const sourceCompletion = await fromSource.completion('inputs/sample.jsonl');
    const sourceOutput = await outputOf(
      fromSource.resources.bucket,
      'inputs/sample.jsonl',
      (sourceCompletion.detail as { jobId: string }).jobId,
    );
    await fromSource.stop();

    // Act
    const { output, completed, swept } = await runThroughArtifacts('inputs/sample.jsonl', body);

    // Assess
    expect(output).toBe(sourceOutput);
    expect(output.trimEnd().split('\n')).toHaveLength(20);
    expect(completed.detail).toMatchObject({ counts: { total: 20, succeeded: 19, errored: 1 } });
    expect(swept).toEqual({ resumed: [], stuckJobs: [], deadLetterMessages: 0 });
  }, 240_000);

  it.each([
    [
      'a variable the template forgot',
      { handler: 'index.handler', drop: 'BUCKET_NAME' },
      /BUCKET_NAME is missing/,
    ],
    [
      'a handler name the bundle does not export',
      { handler: 'index.main', drop: undefined },
      /HandlerNotFound/,
    ],
  ])(
    'fails to start with %s, as Lambda would at the cold start',
    async (_case, change, message) => {
      // Prepare
      const fn = await deployed('worker');
      const environment = Object.fromEntries(
        Object.entries(fn.variables)
          .filter(([key]) => key !== change.drop)
          .map(([key, value]) => [key, typeof value === 'string' ? value : 'resolved-elsewhere']),
      );

      // Act
      const start = BundledFunction.start({ ...fn, name: 'worker', handler: change.handler, environment });

      // Assess
      await expect(start).rejects.toThrow(message);
    },
    60_000,
  );
});
