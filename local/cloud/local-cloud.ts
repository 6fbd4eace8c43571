import { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { type BedrockStandIn, type BedrockStandInOptions, startBedrockStandIn } from '../bedrock/stand-in.ts';
import { startDynamoDbLocal } from './dynamodb-local.ts';
import { type FauxqsServer, startFauxqs } from './fauxqs-server.ts';

/** Any credentials do locally; these are signed into every request like real ones. */
export const LOCAL_CREDENTIALS = {
  accessKeyId: 'AKIDLOCALCLOUD',
  secretAccessKey: 'local-cloud-secret',
} as const;

export interface LocalCloudOptions {
  readonly region?: string;
  readonly bedrock?: Omit<BedrockStandInOptions, 'region'>;
}

export interface LocalEndpoints {
  readonly s3: string;
  readonly sqs: string;
  readonly dynamodb: string;
  readonly bedrock: string;
}

export interface AwsClients {
  readonly s3: S3Client;
  readonly sqs: SQSClient;
  readonly dynamodb: DynamoDBClient;
  readonly documents: DynamoDBDocumentClient;
  readonly bedrock: BedrockRuntimeClient;
}

export interface LocalCloud {
  readonly region: string;
  readonly endpoints: LocalEndpoints;
  readonly clients: AwsClients;
  readonly bedrock: BedrockStandIn;
  readonly objectCreated: FauxqsServer['objectCreated'];
  /** The DynamoDB Local child process: the one thing this starts outside the current process. */
  readonly dynamodbPid: number;
  /** Stops every server this started, DynamoDB Local by its process id. */
  stop(): Promise<void>;
}

/** The real AWS SDK v3 clients, pointed at `endpoints` (path-style S3, SQS at the endpoint, not the queue URL). */
export function awsClients(
  region: string,
  endpoints: LocalEndpoints,
  credentials: { accessKeyId: string; secretAccessKey: string } = LOCAL_CREDENTIALS,
): AwsClients {
  const dynamodb = new DynamoDBClient({ region, endpoint: endpoints.dynamodb, credentials });
  return {
    s3: new S3Client({ region, endpoint: endpoints.s3, credentials, forcePathStyle: true }),
    sqs: new SQSClient({ region, endpoint: endpoints.sqs, credentials, useQueueUrlAsEndpoint: false }),
    dynamodb,
    documents: DynamoDBDocumentClient.from(dynamodb, { marshallOptions: { removeUndefinedValues: true } }),
    bedrock: new BedrockRuntimeClient({ region, endpoint: endpoints.bedrock, credentials }),
  };
}

/**
 * S3 and SQS (fauxqs, in process), DynamoDB (DynamoDB Local, a child process) and Bedrock (our stand-in),
 * each on a free port of 127.0.0.1, started together. Tests and the local runner share this.
 */
export async function startLocalCloud(options: LocalCloudOptions = {}): Promise<LocalCloud> {
  const region = options.region ?? 'us-west-2';
  const started = await Promise.allSettled([
    startFauxqs(region),
    startBedrockStandIn({ ...options.bedrock, region }),
    startDynamoDbLocal(LOCAL_CREDENTIALS),
  ] as const);
  const [fauxqs, bedrock, dynamodb] = started;
  if (fauxqs.status !== 'fulfilled' || bedrock.status !== 'fulfilled' || dynamodb.status !== 'fulfilled') {
    await Promise.all(
      started.map((result) => (result.status === 'fulfilled' ? result.value.close() : undefined)),
    );
    const failure = started.find((result) => result.status === 'rejected');
    throw failure?.status === 'rejected' ? failure.reason : new Error('the local cloud did not start');
  }
  const endpoints: LocalEndpoints = {
    s3: fauxqs.value.endpoint,
    sqs: fauxqs.value.endpoint,
    dynamodb: dynamodb.value.endpoint,
    bedrock: bedrock.value.endpoint,
  };
  const clients = awsClients(region, endpoints);
  return {
    region,
    endpoints,
    clients,
    bedrock: bedrock.value,
    objectCreated: fauxqs.value.objectCreated,
    dynamodbPid: dynamodb.value.pid,
    stop: async () => {
      for (const client of Object.values(clients)) client.destroy();
      await Promise.all([fauxqs.value.close(), bedrock.value.close(), dynamodb.value.close()]);
    },
  };
}
