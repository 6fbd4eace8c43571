import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import { HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { resolveResources, type StackResources } from '../../cli/resources.ts';
import { DynamoDbLedger } from '../../functions/adapters/dynamodb-ledger.ts';
import { jobIdOf, newJobRecord } from '../../shared/pipeline/job.ts';
import { poolName, poolsOfSettings, type QuotaPool } from '../../shared/quotas/pools.ts';
import { runCli, runInProcess, startCli, waitForOutput } from '../support/cli.ts';
import { fixturePath } from '../support/factories.ts';
import { jobDefaults } from '../support/pipeline-harness.ts';
import { isAlive } from '../support/processes.ts';

/** The child processes of `pid` (DynamoDB Local's java, for the CLI). */
function childrenOf(pid: number): number[] {
  try {
    return execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)])
      .toString()
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

/** The processes still alive after a grace period (helpers such as tsx's esbuild leave when their parent does). */
async function survivors(pids: readonly number[], graceMs = 5_000): Promise<number[]> {
  await vi
    .waitFor(() => expect(pids.filter(isAlive)).toEqual([]), { timeout: graceMs, interval: 100 })
    .catch(() => undefined);
  return pids.filter(isAlive);
}

let work = '';
let resourcesFile = '';
let localUp: ReturnType<typeof startCli>;
let resources: StackResources;

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'bedrock-batch-local-up-'));
  resourcesFile = path.join(work, 'local.json');
  localUp = startCli(['local', 'up', '--speed', '0', '--resources', resourcesFile]);
  await waitForOutput(localUp.output, /Ctrl-C stops everything\./);
  resources = JSON.parse(await readFile(resourcesFile, 'utf8')) as StackResources;
}, 90_000);

afterAll(async () => {
  if (localUp.child.exitCode === null) localUp.child.kill('SIGKILL');
  await rm(work, { recursive: true, force: true });
});

async function statusOf(jobId: string) {
  const result = await runCli(['status', jobId, '--resources', resourcesFile, '--json']);
  return JSON.parse(result.stdout) as { status: string; records: { done: number; succeeded: number } };
}

function untilCompleted(jobId: string) {
  return vi.waitFor(
    async () => {
      const status = await statusOf(jobId);
      expect(status.status).toBe('completed');
      return status;
    },
    { timeout: 60_000, interval: 300 },
  );
}

describe('bedrock-batch local up', () => {
  it('prints its endpoints and an aws s3 cp line, runs a file dropped in with an S3 client, and finds its job by the URI', async () => {
    // Prepare
    const { s3 } = (await resolveResources({ resources: resourcesFile })).clients;

    // Act
    const put = await s3.send(
      new PutObjectCommand({
        Bucket: resources.bucket,
        Key: 'inputs/dropped.jsonl',
        Body: '{"id": "a", "prompt": "Hi"}\n{"id": "b", "prompt": "There"}\n',
      }),
    );
    const jobId = jobIdOf(resources.bucket, 'inputs/dropped.jsonl', (put.ETag ?? '').replaceAll('"', ''));
    const status = await untilCompleted(jobId);
    s3.destroy();
    const listed = await runCli(['jobs', '--resources', resourcesFile]);
    const input = `s3://${resources.bucket}/inputs/dropped.jsonl`;
    const byUri = await runCli(['status', input, '--resources', resourcesFile, '--json']);
    const byKey = await runInProcess([
      'status',
      'inputs/dropped.jsonl',
      '--resources',
      resourcesFile,
      '--json',
    ]);
    const byName = await runInProcess(['status', 'dropped.jsonl', '--resources', resourcesFile, '--json']);
    const byNothing = await runInProcess(['status', 'never-uploaded.jsonl', '--resources', resourcesFile]);

    // Assess
    expect(Object.keys(resources.credentials ?? {})).toEqual(['accessKeyId', 'secretAccessKey']);
    expect(localUp.output().stdout).toMatch(
      new RegExp(
        `aws s3 cp prompts\\.jsonl s3://${resources.bucket}/inputs/ --endpoint-url http://127\\.0\\.0\\.1:\\d+`,
      ),
    );
    expect(status.records).toMatchObject({ done: 2, succeeded: 2 });
    expect(localUp.output().stdout).toContain(
      `Batch Job Started: ${jobId} ${input} (opus-4.6, on-demand)\n  bedrock-batch status ${jobId}\n`,
    );
    await waitForOutput(localUp.output, new RegExp(`Batch Job Completed: ${jobId}`));
    expect(listed.stdout).toMatch(/^JOB +STATUS +DONE +LANE +AGE +INPUT\n/);
    expect(listed.stdout).toMatch(
      new RegExp(`^${jobId} +completed +2/2 \\(100%\\) +on-demand +[\\d.]+ s +${input}$`, 'm'),
    );
    expect(JSON.parse(byUri.stdout)).toMatchObject({ jobId, status: 'completed', input });
    expect([JSON.parse(byKey.stdout).jobId, JSON.parse(byName.stdout).jobId]).toEqual([jobId, jobId]);
    expect(byNothing).toMatchObject({
      code: 2,
      stderr: `Error: No job of s3://${resources.bucket}/inputs/never-uploaded.jsonl in the ledger ${resources.tableName}. "bedrock-batch jobs" lists the newest jobs.\n`,
    });
  }, 90_000);

  it('takes submit, status, results, cancel and redrive through the same code path as a deployed stack', async () => {
    // Act
    const submitted = await runCli([
      'submit',
      fixturePath('prompts/mixed.jsonl'),
      '--resources',
      resourcesFile,
      '--model',
      'sonnet-4.5',
    ]);
    const jobId = /job (job-[0-9a-f]+)/.exec(submitted.stdout)?.[1] ?? '';
    await untilCompleted(jobId);
    const readable = await runCli(['status', jobId, '--resources', resourcesFile]);
    const results = await runCli(['results', jobId, '--resources', resourcesFile, '--out', work]);
    const cancel = await runCli(['cancel', jobId, '--resources', resourcesFile]);
    const redrive = await runCli(['redrive', '--resources', resourcesFile]);
    const unknown = await runCli(['status', 'job-nope', '--resources', resourcesFile]);
    const report = await runCli([
      'report',
      jobId,
      '--resources',
      resourcesFile,
      '--html',
      path.join(work, 'job.html'),
    ]);

    // Assess
    expect(submitted.code).toBe(0);
    expect(readable.stdout).toMatch(
      new RegExp(
        `${jobId} completed\\n.*sonnet-4\\.5.*\\n  records 11/11 done \\(100%\\): 6 succeeded, 5 failed, 0 canceled`,
      ),
    );
    // The four lines the enqueue step refuses never reach the queue; of the seven records that do, each is received once,
    // and the one naming a model the catalog does not know fails before any call.
    expect(readable.stdout).toMatch(/0 retried, 0 throttled · 7 receives, 6 Bedrock calls\n/);
    // Why records failed, how long the job took and where its files are.
    expect(readable.stdout).toMatch(/^ {2}INVALID_JSON: 1 failed, the first on line 6$/m);
    expect(readable.stdout).toMatch(/^ {2}took [\d.]+ (s|min), ended [\d.]+ (s|min) ago$/m);
    expect(readable.stdout).toMatch(
      new RegExp(
        `^ {2}output {3}s3://${resources.bucket}/outputs/mixed\\.jsonl/${jobId}\\.jsonl\\.out$`,
        'm',
      ),
    );
    expect(results.code).toBe(0);
    expect((await readFile(path.join(work, 'mixed.jsonl.out'), 'utf8')).trimEnd().split('\n')).toHaveLength(
      11,
    );
    expect(
      JSON.parse(await readFile(path.join(work, 'mixed.jsonl.manifest.json.out'), 'utf8')),
    ).toMatchObject({
      totalRecordCount: 11,
    });
    expect(cancel).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/is already completed; nothing to cancel/),
    });
    expect(redrive.stdout).toMatch(/Moved 0 messages from the DLQ back to the record queue/);
    expect(unknown).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/No job job-nope in the ledger/),
    });
    expect(report.code).toBe(0);
    expect(await readFile(path.join(work, 'job.html'), 'utf8')).toContain(
      'data-metric="totalRecordCount">11<',
    );
  }, 120_000);

  it('submits a file larger than one upload part, streamed in parts, and downloads its results streamed once it ends', async () => {
    // Prepare: one line of 6 MiB, over S3's 5 MiB part: a prompt too long for any model, an error record.
    const file = path.join(work, 'large.jsonl');
    await writeFile(file, `${JSON.stringify({ id: 'huge', prompt: 'word '.repeat(1_258_292) })}\n`);

    // Act
    const submitted = await runCli(['submit', file, '--resources', resourcesFile]);
    const jobId = /job (job-[0-9a-f]+)/.exec(submitted.stdout)?.[1] ?? '';
    // At once: --wait waits for the job to end.
    const results = await runCli(['results', jobId, '--resources', resourcesFile, '--out', work, '--wait']);

    // Assess
    expect(submitted.code).toBe(0);
    // A multipart upload's ETag names its parts.
    const { s3 } = (await resolveResources({ resources: resourcesFile })).clients;
    const head = await s3.send(
      new HeadObjectCommand({ Bucket: resources.bucket, Key: 'inputs/large.jsonl' }),
    );
    expect(head.ETag).toMatch(/-2"$/);
    expect(results.code).toBe(0);
    const [line] = (await readFile(path.join(work, 'large.jsonl.out'), 'utf8')).trimEnd().split('\n');
    expect(JSON.parse(line ?? '{}')).toMatchObject({ id: 'huge', status: 'errored' });
  });

  it('takes a second cancel of a canceled job as done, not as a mistake', async () => {
    // Prepare: a job that ended canceled.
    const { clients } = await resolveResources({ resources: resourcesFile });
    const job = {
      ...newJobRecord(
        'job-0123456789abcdef01234567',
        { bucket: resources.bucket, key: 'inputs/gone.jsonl' },
        jobDefaults,
        new Date().toISOString(),
      ),
      status: 'canceled' as const,
    };
    await new DynamoDbLedger(clients.documents, resources.tableName).createJob(job);

    // Act
    const again = await runInProcess(['cancel', job.jobId, '--resources', resourcesFile]);

    // Assess
    expect(again).toMatchObject({ code: 0, stdout: `Job ${job.jobId} is canceled already.\n` });
  });

  it("says a running job is waiting for tokens, and how long, from its pool's bucket", async () => {
    // Prepare: a job with 5 records to go on a pool whose bucket has granted tokens 90 s beyond what it holds.
    const { clients } = await resolveResources({ resources: resourcesFile });
    const settings = {
      ...jobDefaults,
      model: 'haiku-4.5',
      region: 'us-east-1',
      endpoint: 'regional' as const,
    };
    const job = {
      ...newJobRecord(
        'job-abcdef0123456789abcdef01',
        { bucket: resources.bucket, key: 'inputs/waits.jsonl' },
        settings,
        new Date().toISOString(),
      ),
      status: 'running' as const,
      totalRecords: 8,
      doneRecords: 3,
    };
    await new DynamoDbLedger(clients.documents, resources.tableName).createJob(job);
    const [pool] = poolsOfSettings(settings);
    const written = Date.now();
    await clients.documents.send(
      new PutCommand({
        TableName: resources.tableName,
        Item: {
          pk: `BUDGET#${poolName(pool as QuotaPool)}`,
          sk: 'BUCKET',
          fullAt: written + 150_000,
          tokensPerMinute: 400_000,
        },
      }),
    );

    // Act
    const status = await runCli(['status', job.jobId, '--resources', resourcesFile]);
    const elapsedSeconds = (Date.now() - written) / 1000;

    // Assess: the bucket repays its debt 90 s after it was written, less however long the command took.
    const line = /^ {2}waiting for tokens: 5 records to go, tokens in about (\d+) s$/m.exec(status.stdout);
    expect(line, status.stdout).not.toBeNull();
    expect(Number(line?.[1])).toBeGreaterThanOrEqual(Math.floor(90 - elapsedSeconds));
    expect(Number(line?.[1])).toBeLessThanOrEqual(90);
  });

  it("serves the Message Batches API on loopback: Anthropic's SDK creates a batch and reads its results; status finds it by its id", async () => {
    // Prepare
    const [, baseURL] = await waitForOutput(
      localUp.output,
      /Message Batches API (http:\/\/127\.0\.0\.1:\d+)/,
    );
    const client = new Anthropic({ baseURL, apiKey: 'any key works locally', maxRetries: 0 });
    const params = {
      model: 'claude-haiku-4-5',
      max_tokens: 32,
      messages: [{ role: 'user' as const, content: 'Hi' }],
    };

    // Act
    const created = await client.messages.batches.create({
      requests: [
        { custom_id: 'one', params },
        { custom_id: 'two', params: { ...params, max_tokens: 0 } },
      ],
    });
    const ended = await vi.waitFor(
      async () => {
        const batch = await client.messages.batches.retrieve(created.id);
        expect(batch.processing_status).toBe('ended');
        return batch;
      },
      { timeout: 60_000, interval: 300 },
    );
    const results = [];
    for await (const result of await client.messages.batches.results(created.id))
      results.push([result.custom_id, result.result.type]);
    const status = await statusOf(created.id);

    // Assess
    expect(status).toMatchObject({ status: 'completed', records: { done: 2, succeeded: 1 } });
    expect(ended.request_counts).toEqual({
      processing: 0,
      succeeded: 1,
      errored: 1,
      canceled: 0,
      expired: 0,
    });
    expect(results).toEqual([
      ['one', 'succeeded'],
      ['two', 'errored'],
    ]);
  });

  it('stops everything on Ctrl-C and removes its resources file', async () => {
    // Prepare
    const helpers = childrenOf(localUp.child.pid ?? 0);

    // Act
    localUp.child.kill('SIGINT');
    const exit = await localUp.done;

    // Assess
    expect(exit.code).toBe(0);
    expect(helpers.length).toBeGreaterThan(0);
    expect(await survivors(helpers)).toEqual([]);
    await expect(stat(resourcesFile)).rejects.toThrow();
  }, 60_000);
});

describe('stopping bedrock-batch run', () => {
  it.each([
    ['Ctrl-C', 'SIGINT', 130],
    ['SIGTERM', 'SIGTERM', 143],
  ] as const)(
    'on %s stops the local cloud with one line, no stack trace and no process left',
    async (_case, signal, code) => {
      // Prepare
      const run = startCli(['run', fixturePath('prompts/sample.jsonl'), '--out', work, '--speed', '5']);
      await waitForOutput(run.output, /Uploaded sample\.jsonl/);
      const helpers = childrenOf(run.child.pid ?? 0);

      // Act
      run.child.kill(signal);
      const exit = await run.done;

      // Assess
      expect(exit.code).toBe(code);
      expect(exit.stdout).toMatch(new RegExp(`Stopping \\(${signal}\\): the job is left unfinished\\.`));
      expect(exit.stderr).toBe('');
      expect(helpers.length).toBeGreaterThan(0);
      expect(await survivors(helpers)).toEqual([]);
    },
    90_000,
  );
});

describe('bedrock-batch run killed outright', () => {
  it('takes DynamoDB Local with it, though SIGKILL runs no exit hook', async () => {
    // Prepare
    const run = startCli(['run', fixturePath('prompts/sample.jsonl'), '--out', work, '--speed', '5']);
    await waitForOutput(run.output, /Uploaded sample\.jsonl/);
    const helpers = childrenOf(run.child.pid ?? 0);

    // Act
    run.child.kill('SIGKILL');
    await run.done;

    // Assess
    expect(helpers.length).toBeGreaterThan(0);
    expect(await survivors(helpers, 30_000)).toEqual([]);
  }, 90_000);

  it('under a Node wrapper (as tsx starts it) stops as on SIGTERM when the wrapper is killed outright', async () => {
    // Prepare: a wrapper that starts the CLI as a child and passes no signal on.
    const wrapper = startCli(
      ['run', fixturePath('prompts/sample.jsonl'), '--out', work, '--speed', '5'],
      {},
      { wrapped: true },
    );
    await waitForOutput(wrapper.output, /Uploaded sample\.jsonl/);
    const [cli = 0] = childrenOf(wrapper.child.pid ?? 0);
    const helpers = childrenOf(cli);

    // Act
    wrapper.child.kill('SIGKILL');
    await wrapper.done;

    // Assess
    expect(helpers.length).toBeGreaterThan(0);
    // Stopping lets the worker's batch under way finish its calls first: on a busy machine that takes a while.
    expect(await survivors([cli, ...helpers], 60_000)).toEqual([]);
    expect(wrapper.output().stdout).toMatch(/Stopping \(SIGTERM\): the job is left unfinished\./);
  }, 120_000);
});

describe('bedrock-batch remote commands without resources', () => {
  it('say the local cloud is not running when its resources file outlived it, with no stack trace', async () => {
    // Prepare: the file a killed `local up` left behind, naming a port nothing listens on any more.
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise((resolve) => server.close(resolve));
    const endpoint = `http://127.0.0.1:${port}`;
    const stale = path.join(work, 'stale.json');
    await writeFile(
      stale,
      JSON.stringify({
        region: 'us-west-2',
        bucket: 'b',
        tableName: 't',
        recordQueueUrl: `${endpoint}/q`,
        recordDlqUrl: `${endpoint}/dlq`,
        endpoints: { s3: endpoint, sqs: endpoint, dynamodb: endpoint, bedrock: endpoint },
      }),
    );

    // Act
    const results = await Promise.all(
      [
        ['status', 'job-x'],
        ['results', 'job-x'],
      ].map((command) => runCli([...command, '--resources', stale])),
    );

    // Assess
    for (const result of results) {
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(
        /local cloud that .*stale\.json describes is not running: nothing answers at/,
      );
      expect(result.stderr).toMatch(/Start it with "bedrock-batch local up"/);
      expect(result.stderr).not.toMatch(/ECONNREFUSED|\n\s+at /);
    }
  });

  it('say how to point them at a stack or the local cloud', async () => {
    const result = await runCli(['status', 'job-x', '--resources', '/nonexistent/local.json']);
    expect(result).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(
        /Name the deployed stack with --stack <name>, or start the local cloud with "bedrock-batch local up"/,
      ),
    });
  });
});
