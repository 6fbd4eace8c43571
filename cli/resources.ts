import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { z } from 'zod';
import { type AwsClients, awsClients } from '../functions/adapters/clients.ts';
import { STACK_OUTPUTS } from '../shared/stack-outputs.ts';
import { UsageError } from './errors.ts';

const resourcesSchema = z.object({
  region: z.string().min(1),
  bucket: z.string().min(1),
  tableName: z.string().min(1),
  recordQueueUrl: z.string().min(1),
  recordDlqUrl: z.string().min(1),
  /** Present for the local cloud: where its services listen, and its credentials. */
  endpoints: z
    .object({ s3: z.string(), sqs: z.string(), dynamodb: z.string(), bedrock: z.string() })
    .optional(),
  credentials: z.object({ accessKeyId: z.string(), secretAccessKey: z.string() }).optional(),
});

export type StackResources = z.infer<typeof resourcesSchema>;

export const DEFAULT_RESOURCES_FILE = '.bedrock-batch/local.json';

/**
 * The deployed pipeline's resources, from a stack's CloudFormation outputs (`--stack`), or from a file
 * (`--resources`, which `bedrock-batch local up` writes for the local cloud). Either way the commands then use
 * the same clients and adapters; the local cloud only adds endpoint overrides.
 */
export async function resolveResources(values: {
  stack?: string | undefined;
  resources?: string | undefined;
  region?: string | undefined;
}) {
  const resources =
    values.stack !== undefined
      ? await fromStack(values.stack, values.region)
      : await readResourcesFile(values.resources ?? DEFAULT_RESOURCES_FILE);
  const clients: AwsClients = awsClients({
    region: resources.region,
    ...(resources.endpoints === undefined ? {} : { endpoints: resources.endpoints }),
    ...(resources.credentials === undefined ? {} : { credentials: resources.credentials }),
  });
  return { resources, clients };
}

/** The resources `bedrock-batch local up` wrote (or a file of the same shape). */
export async function readResourcesFile(path: string): Promise<StackResources> {
  const text = await readFile(path, 'utf8').catch(() => undefined);
  if (text === undefined) {
    throw new UsageError(
      `No pipeline resources given and no ${path}.`,
      'Name the deployed stack with --stack <name>, or start the local cloud with "bedrock-batch local up".',
    );
  }
  const parsed = resourcesSchema.safeParse(JSON.parse(text));
  if (!parsed.success)
    throw new UsageError(`${path} does not describe pipeline resources: ${z.prettifyError(parsed.error)}`);
  const local = parsed.data.endpoints?.s3;
  if (local !== undefined && !(await answers(local))) {
    throw new UsageError(
      `The local cloud that ${path} describes is not running: nothing answers at ${local}.`,
      'Start it with "bedrock-batch local up", or name a deployed stack with --stack <name>.',
    );
  }
  return parsed.data;
}

/** How long the local cloud has to accept a connection before it is taken as stopped. */
const LOCAL_CLOUD_CONNECT_MS = 2_000;

/** Whether something accepts a TCP connection at the endpoint's host and port. */
function answers(endpoint: string): Promise<boolean> {
  const { hostname, port } = new URL(endpoint);
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port), timeout: LOCAL_CLOUD_CONNECT_MS });
    const settle = (open: boolean) => {
      socket.destroy();
      resolve(open);
    };
    socket.once('connect', () => settle(true));
    socket.once('timeout', () => settle(false));
    socket.once('error', () => settle(false));
  });
}

async function fromStack(stackName: string, region: string | undefined): Promise<StackResources> {
  const client = new CloudFormationClient(region === undefined ? {} : { region });
  try {
    const { Stacks } = await client.send(new DescribeStacksCommand({ StackName: stackName }));
    const outputs = Object.fromEntries(
      (Stacks?.[0]?.Outputs ?? []).map((output) => [output.OutputKey, output.OutputValue]),
    );
    const resolvedRegion = region ?? (await client.config.region());
    return resourcesSchema.parse({
      region: resolvedRegion,
      bucket: outputs[STACK_OUTPUTS.bucket],
      tableName: outputs[STACK_OUTPUTS.tableName],
      recordQueueUrl: outputs[STACK_OUTPUTS.recordQueueUrl],
      recordDlqUrl: outputs[STACK_OUTPUTS.recordDlqUrl],
    });
  } catch (error) {
    throw new UsageError(`Could not read the outputs of stack ${stackName}: ${(error as Error).message}`);
  } finally {
    client.destroy();
  }
}
