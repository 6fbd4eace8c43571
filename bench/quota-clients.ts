/**
 * One client of `npm run bench:quota` in a process of its own, so that clients run side by side as they would
 * on a user's machine: `node --import tsx bench/quota-clients.ts <client> '<scenario json>'` prints the
 * client's figures (ClientFigures) as the last line of its output.
 *   - run: the `bedrock-batch run` command as a user runs it, with the CLI's own settings;
 *   - stack: the pipeline on the local cloud with the worker the stack derives for this quota;
 *   - careful: a script of 4 calls at once with the SDK's adaptive retries;
 *   - strong: a script of 32 calls at once, paced by its own mirror of Bedrock's token bucket;
 *   - naive: a script of 16 calls at once with the SDK's standard retries.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BedrockRuntimeClient, InvokeModelCommand } from '@aws-sdk/client-bedrock-runtime';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { pipelineSettings } from '../infra/props.ts';
import type { QuotaUsage } from '../local/bedrock/quota.ts';
import { startBedrockStandIn } from '../local/bedrock/stand-in.ts';
import { TokenBucket } from '../local/bedrock/token-bucket.ts';
import { LOCAL_CREDENTIALS, startLocalCloud } from '../local/cloud/local-cloud.ts';
import { RequestMeter } from '../local/cloud/request-meter.ts';
import { startLocalPipeline } from '../local/pipeline/local-pipeline.ts';
import { mapWithLimit } from '../shared/core/concurrency.ts';
import type { JobManifest } from '../shared/pipeline/finalize.ts';
import {
  CLIENTS,
  type ClientFigures,
  type ClientName,
  inputFile,
  MAX_TOKENS,
  MODEL,
  MODEL_ID,
  OUTPUT_BURNDOWN,
  prompts,
  REGION,
  type Scenario,
} from './quota-setup.ts';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
process.env.POWERTOOLS_METRICS_DISABLED = 'true';
process.env.POWERTOOLS_LOG_LEVEL = 'ERROR';

function quotaOf(usages: readonly QuotaUsage[]): QuotaUsage {
  const usage = usages.find((candidate) => candidate.modelId === MODEL_ID);
  if (usage === undefined) throw new Error(`no calls to ${MODEL_ID}`);
  return usage;
}

function bodyOf(prompt: string): string {
  return JSON.stringify({
    anthropic_version: 'bedrock-2023-05-31',
    max_tokens: MAX_TOKENS,
    messages: [{ role: 'user', content: prompt }],
  });
}

/** A script's figures: its whole job is its calls, from the first to the last answer. */
function scriptFigures(quota: QuotaUsage, lost: number): ClientFigures {
  const span = ((quota.lastSettledAt ?? 0) - (quota.firstAdmittedAt ?? 0)) / 1000;
  return {
    wholeJobSeconds: span,
    callSpanSeconds: span,
    tokensCharged: quota.tokensCharged,
    calls: quota.requests + quota.throttled,
    throttledCalls: quota.throttled,
    recordsLost: lost,
  };
}

/** A script that calls InvokeModel for every prompt, `concurrency` at once, each call through `send`. */
async function script(
  scenario: Scenario,
  concurrency: number,
  clientConfig: { retryMode?: string; maxAttempts?: number },
  send: (client: BedrockRuntimeClient, prompt: string) => Promise<void>,
): Promise<ClientFigures> {
  const bedrock = await standIn(scenario);
  const client = new BedrockRuntimeClient({
    region: REGION,
    endpoint: bedrock.endpoint,
    credentials: LOCAL_CREDENTIALS,
    ...clientConfig,
  });
  let lost = 0;
  await mapWithLimit(prompts(scenario.records), concurrency, async (prompt) => {
    await send(client, prompt).catch(() => {
      lost += 1;
    });
  });
  const figures = scriptFigures(quotaOf(bedrock.state().quotas), lost);
  client.destroy();
  await bedrock.close();
  return figures;
}

async function invoke(client: BedrockRuntimeClient, prompt: string) {
  const response = await client.send(
    new InvokeModelCommand({ modelId: MODEL_ID, body: bodyOf(prompt), contentType: 'application/json' }),
  );
  return JSON.parse(Buffer.from(response.body).toString('utf8')) as {
    usage: { input_tokens: number; output_tokens: number };
  };
}

/**
 * The strongest script we know how to write: many calls at once, each started only when its own copy of
 * Bedrock's bucket holds what Bedrock will reserve (input + max_tokens), corrected to the charge (input +
 * output x 5) when the answer comes, and emptied by a throttle (Bedrock knows better), then tried again.
 */
function strongScript(scenario: Scenario): Promise<ClientFigures> {
  const mirror = new TokenBucket(scenario.tokensPerMinute, 60_000, Date.now());
  const refillPerMs = scenario.tokensPerMinute / 60_000;
  return script(scenario, 32, { maxAttempts: 1 }, async (client, prompt) => {
    const reserved = Math.ceil(Buffer.byteLength(prompt) / 4) + 3 + MAX_TOKENS;
    for (;;) {
      while (!mirror.canTake(reserved, Date.now()))
        await sleep(Math.max(1, (reserved - mirror.available(Date.now())) / refillPerMs));
      mirror.take(reserved, Date.now());
      try {
        const { usage } = await invoke(client, prompt);
        mirror.adjust(reserved - (usage.input_tokens + usage.output_tokens * OUTPUT_BURNDOWN), Date.now());
        return;
      } catch (error) {
        if ((error as { name?: string }).name !== 'ThrottlingException') throw error;
        mirror.adjust(reserved, Date.now());
        mirror.take(Math.max(0, mirror.available(Date.now())), Date.now());
      }
    }
  });
}

function standIn(scenario: Scenario) {
  return startBedrockStandIn({
    region: REGION,
    speed: scenario.latencyFactor,
    quota: { tokensPerMinute: scenario.tokensPerMinute },
  });
}

/** The pipeline with the stack's settings for this quota, on the local cloud. */
async function stack(scenario: Scenario): Promise<ClientFigures> {
  // Warm, as `run` starts it.
  const cloud = await startLocalCloud({
    region: REGION,
    bedrock: { speed: scenario.latencyFactor, quota: { tokensPerMinute: scenario.tokensPerMinute } },
    warmDynamoDb: true,
  });
  const meter = new RequestMeter();
  meter.attach(cloud.clients);
  const settings = pipelineSettings({
    bedrockRegion: REGION,
    defaultModel: MODEL,
    tokensPerMinute: scenario.tokensPerMinute,
    defaultMaxTokens: MAX_TOKENS,
  });
  const { visibilityTimeoutSeconds: _derivedFromTheTimeout, ...worker } = settings.worker;
  const local = await startLocalPipeline(cloud, {
    tokensPerMinute: scenario.tokensPerMinute,
    worker,
    defaults: { model: MODEL, defaultMaxTokens: MAX_TOKENS },
  });
  const key = 'inputs/quota.jsonl';
  const uploadedAt = Date.now();
  await cloud.clients.s3.send(
    new PutObjectCommand({ Bucket: local.resources.bucket, Key: key, Body: inputFile(scenario.records) }),
  );
  const completion = await local.completion(key, 3_600_000);
  const doneAt = Date.now();
  const { counts, jobId } = completion.detail as { counts: { succeeded: number }; jobId: string };
  const job = await local.ledger.getJob(jobId);
  const quota = quotaOf(cloud.bedrock.state().quotas);
  const firstCall = quota.firstAdmittedAt ?? uploadedAt;
  const lastAnswer = quota.lastSettledAt ?? doneAt;
  const figures: ClientFigures = {
    wholeJobSeconds: (doneAt - uploadedAt) / 1000,
    callSpanSeconds: (lastAnswer - firstCall) / 1000,
    tokensCharged: quota.tokensCharged,
    calls: quota.requests + quota.throttled,
    throttledCalls: quota.throttled,
    recordsLost: scenario.records - counts.succeeded,
    firstCallAfterUploadSeconds: (firstCall - uploadedAt) / 1000,
    outputAfterLastAnswerSeconds: (doneAt - lastAnswer) / 1000,
    perRecord: {
      sqsReceives:
        [...meter.receivesByRecord.values()].reduce((sum, count) => sum + count, 0) / scenario.records,
      s3Requests: meter.count('s3') / scenario.records,
      sqsRequests: meter.count('sqs') / scenario.records,
      dynamodbRequests: meter.count('dynamodb') / scenario.records,
    },
    ...(job === undefined ? {} : { counters: { ...job.retries } }),
  };
  await local.stop();
  await cloud.stop();
  return figures;
}

/**
 * `bedrock-batch run` in a process of its own, as a user types it; the job's time is from the line that says
 * the file is uploaded to the line that says the results are written, the rest from the manifest.
 */
async function runCommand(scenario: Scenario): Promise<ClientFigures> {
  const dir = await mkdtemp(path.join(tmpdir(), 'bench-quota-run-'));
  try {
    const file = path.join(dir, 'quota.jsonl');
    await writeFile(file, inputFile(scenario.records));
    const args = [
      ...['run', file, '--out', dir, '--model', MODEL, '--max-tokens', String(MAX_TOKENS), '--json'],
      ...['--quota-tpm', String(scenario.tokensPerMinute), '--speed', String(scenario.latencyFactor)],
    ];
    const { uploadedAt, doneAt, stdout } = await timedCli(args);
    const manifest = JSON.parse(stdout) as JobManifest;
    return runFigures(manifest, scenario, uploadedAt, doneAt);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The CLI from this checkout's sources, with the times its "Uploaded" and "results in" lines came. */
function timedCli(args: readonly string[]): Promise<{ uploadedAt: number; doneAt: number; stdout: string }> {
  const cli = path.join(import.meta.dirname, '..', 'cli', 'main.ts');
  const child = spawn(process.execPath, ['--import', 'tsx', cli, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let uploadedAt: number | undefined;
  let doneAt: number | undefined;
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8');
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
    if (uploadedAt === undefined && stderr.includes('Uploaded ')) uploadedAt = Date.now();
    if (doneAt === undefined && stderr.includes('results in ')) doneAt = Date.now();
  });
  return new Promise((resolve, reject) => {
    child.on('exit', (code) => {
      if (code !== 0 || uploadedAt === undefined || doneAt === undefined)
        reject(new Error(`bedrock-batch run exited ${code}: ${stderr}`));
      else resolve({ uploadedAt, doneAt, stdout });
    });
  });
}

function runFigures(
  manifest: JobManifest,
  scenario: Scenario,
  uploadedAt: number,
  doneAt: number,
): ClientFigures {
  const { stats } = manifest;
  const firstCall = Date.parse(stats.calls.firstStartedAt ?? '');
  const lastAnswer = Date.parse(stats.calls.lastAnsweredAt ?? '');
  const { retries } = stats;
  return {
    wholeJobSeconds: (doneAt - uploadedAt) / 1000,
    callSpanSeconds: stats.calls.spanSeconds ?? Number.NaN,
    tokensCharged: manifest.inputTokenCount + manifest.outputTokenCount * OUTPUT_BURNDOWN,
    calls: retries.bedrockCalls,
    throttledCalls: retries.bedrockThrottles,
    recordsLost: scenario.records - manifest.successRecordCount,
    firstCallAfterUploadSeconds: (firstCall - uploadedAt) / 1000,
    outputAfterLastAnswerSeconds: (doneAt - lastAnswer) / 1000,
    perRecord: {
      sqsReceives: retries.receives / scenario.records,
      bedrockCalls: retries.bedrockCalls / scenario.records,
    },
    counters: { ...retries },
  };
}

const runners: Readonly<Record<ClientName, (scenario: Scenario) => Promise<ClientFigures>>> = {
  run: runCommand,
  stack,
  strong: strongScript,
  careful: (scenario) =>
    script(scenario, 4, { retryMode: 'adaptive', maxAttempts: 10 }, async (client, prompt) => {
      await invoke(client, prompt);
    }),
  naive: (scenario) =>
    script(scenario, 16, {}, async (client, prompt) => {
      await invoke(client, prompt);
    }),
};

const [name, scenarioJson] = process.argv.slice(2);
if (name !== undefined && scenarioJson !== undefined) {
  const runner = runners[name as ClientName];
  if (runner === undefined) throw new Error(`no client ${name}; use one of ${CLIENTS.join(', ')}`);
  const figures = await runner(JSON.parse(scenarioJson) as Scenario);
  process.stdout.write(`${JSON.stringify(figures)}\n`);
  process.exit(0);
}
