/**
 * `npm run smoke:aws -- [--stack BedrockBatchPipeline] [--region us-west-2]`: checks a deployed stack end to
 * end with your AWS credentials. It listens for the pipeline's events on the default bus (a temporary rule
 * sending this run's events to a temporary queue), uploads a three-line file under inputs/, waits for its
 * "Batch Job Completed" event, and checks the output it names: three lines, in input order, each succeeded.
 * The rule and the queue are deleted at the end, whatever happens. It calls Bedrock three times with
 * max_tokens 16. Never run in CI: it needs a deployed stack and an AWS account.
 */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import {
  DeleteRuleCommand,
  EventBridgeClient,
  PutRuleCommand,
  PutTargetsCommand,
  RemoveTargetsCommand,
} from '@aws-sdk/client-eventbridge';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import {
  CreateQueueCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SetQueueAttributesCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { resolveResources } from '../cli/resources.ts';
import { EVENT_SOURCE, JOB_COMPLETED, JOB_ENDINGS } from '../shared/contract/job-events.ts';
import type { PlainOutputLine } from '../shared/formats/lines.ts';

const WAIT_MINUTES = 15;
const RECORDS = ['What is 2 + 2?', 'Name a primary colour.', 'Say hello in French.'];

const { values } = parseArgs({
  options: { stack: { type: 'string', default: 'BedrockBatchPipeline' }, region: { type: 'string' } },
});
const { resources, clients } = await resolveResources({ stack: values.stack, region: values.region });
const run = `smoke-${new Date().toISOString().replace(/[:.]/g, '-')}-${randomUUID().slice(0, 8)}`;
const key = `inputs/${run}.jsonl`;
const input = `s3://${resources.bucket}/${key}`;
const events = new EventBridgeClient({ region: resources.region });
const sqs = new SQSClient({ region: resources.region });

const log = (line: string) => process.stdout.write(`${line}\n`);
let queueUrl: string | undefined;
let ruleCreated = false;
try {
  queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: run }))).QueueUrl;
  const queueArn = (
    await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }))
  ).Attributes?.QueueArn;
  const { RuleArn } = await events.send(
    new PutRuleCommand({
      Name: run,
      EventPattern: JSON.stringify({
        source: [EVENT_SOURCE],
        'detail-type': [...JOB_ENDINGS],
        detail: { input: [input] },
      }),
    }),
  );
  ruleCreated = true;
  await sqs.send(
    new SetQueueAttributesCommand({
      QueueUrl: queueUrl,
      Attributes: {
        Policy: JSON.stringify({
          Version: '2012-10-17',
          Statement: [
            {
              Effect: 'Allow',
              Principal: { Service: 'events.amazonaws.com' },
              Action: 'sqs:SendMessage',
              Resource: queueArn,
              Condition: { ArnEquals: { 'aws:SourceArn': RuleArn } },
            },
          ],
        }),
      },
    }),
  );
  await events.send(new PutTargetsCommand({ Rule: run, Targets: [{ Id: 'smoke', Arn: queueArn }] }));
  log(`listening for ${input} on the default bus`);

  const lines = RECORDS.map((prompt, index) =>
    JSON.stringify({ id: `smoke-${index + 1}`, prompt, max_tokens: 16 }),
  );
  await clients.s3.send(new PutObjectCommand({ Bucket: resources.bucket, Key: key, Body: lines.join('\n') }));
  log(`uploaded ${input}; waiting up to ${WAIT_MINUTES} minutes for its completion event`);

  const event = await awaitEvent(queueUrl ?? '', Date.now() + WAIT_MINUTES * 60_000);
  if (event['detail-type'] !== JOB_COMPLETED)
    throw new Error(`the job failed: ${JSON.stringify(event.detail)}`);
  const output = new URL(String(event.detail.output));
  const object = await clients.s3.send(
    new GetObjectCommand({ Bucket: output.hostname, Key: decodeURIComponent(output.pathname.slice(1)) }),
  );
  const results = ((await object.Body?.transformToString()) ?? '')
    .trimEnd()
    .split('\n')
    .map((line) => JSON.parse(line) as PlainOutputLine);
  const problems = RECORDS.flatMap((_, index) => {
    const result = results[index];
    if (result?.id !== `smoke-${index + 1}`) return [`line ${index + 1} is ${result?.id ?? 'missing'}`];
    return result.status === 'succeeded' ? [] : [`${result.id} ${result.status}: ${JSON.stringify(result)}`];
  });
  if (results.length !== RECORDS.length || problems.length > 0)
    throw new Error(
      `unexpected output in ${output.href}: ${problems.join('; ') || `${results.length} lines`}`,
    );
  log(`ok: ${results.length} records succeeded; estimated cost $${String(event.detail.estimatedCostUsd)}`);
  log(`output ${output.href}`);
} catch (error) {
  process.stderr.write(`smoke test failed: ${(error as Error).message}\n`);
  process.exitCode = 1;
} finally {
  if (ruleCreated) {
    await events.send(new RemoveTargetsCommand({ Rule: run, Ids: ['smoke'] })).catch(() => undefined);
    await events.send(new DeleteRuleCommand({ Name: run })).catch(() => undefined);
  }
  if (queueUrl !== undefined)
    await sqs.send(new DeleteQueueCommand({ QueueUrl: queueUrl })).catch(() => undefined);
}

/** The first event the rule delivered for this run's input. */
async function awaitEvent(
  url: string,
  deadline: number,
): Promise<{ 'detail-type': string; detail: Record<string, unknown> }> {
  while (Date.now() < deadline) {
    const { Messages } = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: url, WaitTimeSeconds: 20, MaxNumberOfMessages: 1 }),
    );
    const [message] = Messages ?? [];
    if (message?.Body !== undefined) return JSON.parse(message.Body);
  }
  throw new Error(
    `no event for ${input} within ${WAIT_MINUTES} minutes: run bedrock-batch status, or check the alarms`,
  );
}
