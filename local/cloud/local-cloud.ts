import { S3Client } from '@aws-sdk/client-s3';
import { type AwsClients, awsClients, type Endpoints } from '../../functions/adapters/clients.ts';
import { S3BatchStorage } from '../bedrock/s3-batch-storage.ts';
import { type BedrockStandIn, type BedrockStandInOptions, startBedrockStandIn } from '../bedrock/stand-in.ts';
import { startDynamoDbLocal } from './dynamodb-local.ts';
import { warmUpDynamoDbLocal } from './dynamodb-warm-up.ts';
import { type FauxqsServer, startFauxqs } from './fauxqs-server.ts';

/** Any credentials do locally; these are signed into every request like real ones. */
/**
 * The local pipeline runs every invocation in this process over one client per service, so a client sends
 * what all of them send at once (invocations x batch, which the budget bounds): a pool this large never binds
 * first, where the SDK's 50 sockets would queue the ledger's writes behind each other.
 */
export const LOCAL_SOCKETS = 1_000;

export const LOCAL_CREDENTIALS = {
  accessKeyId: 'AKIDLOCALCLOUD',
  secretAccessKey: 'local-cloud-secret',
} as const;

export interface LocalCloudOptions {
  readonly region?: string;
  readonly bedrock?: Omit<BedrockStandInOptions, 'region'>;
  /**
   * Warm DynamoDB Local's request paths once it is up (about a second more to start), so a job's first
   * records are not slowed by its compiling them: for what users run and what benchmarks time.
   */
  readonly warmDynamoDb?: boolean;
}

export interface LocalCloud {
  readonly region: string;
  readonly endpoints: Endpoints;
  readonly clients: AwsClients;
  /**
   * An S3 client of the local cloud's own, for what AWS would do itself (the EventBridge shim reading the
   * objects it announces), so that a meter on `clients` sees only what the pipeline sends.
   */
  readonly emulationS3: S3Client;
  readonly bedrock: BedrockStandIn;
  readonly objectCreated: FauxqsServer['objectCreated'];
  /** The DynamoDB Local child process: the one thing this starts outside the current process. */
  readonly dynamodbPid: number;
  /** Stops every server this started, DynamoDB Local by its process id. */
  stop(): Promise<void>;
}

/**
 * S3 and SQS (fauxqs, in process), DynamoDB (DynamoDB Local, a child process) and Bedrock (our stand-in),
 * each on a free port of 127.0.0.1, started together, with the real AWS SDK clients pointed at them.
 * Tests and the local runner share this.
 */
export async function startLocalCloud(options: LocalCloudOptions = {}): Promise<LocalCloud> {
  const region = options.region ?? 'us-west-2';
  const started = await Promise.allSettled([
    startStorageAndModels(region, options.bedrock),
    startDynamoDbLocal(LOCAL_CREDENTIALS),
  ] as const);
  const [storageAndModels, dynamodb] = started;
  if (storageAndModels.status !== 'fulfilled' || dynamodb.status !== 'fulfilled') {
    await Promise.all(
      started.map((result) => (result.status === 'fulfilled' ? result.value.close() : undefined)),
    );
    const failure = started.find((result) => result.status === 'rejected');
    throw failure?.status === 'rejected' ? failure.reason : new Error('the local cloud did not start');
  }
  const { fauxqs, bedrock } = storageAndModels.value;
  const endpoints: Endpoints = {
    s3: fauxqs.endpoint,
    sqs: fauxqs.endpoint,
    dynamodb: dynamodb.value.endpoint,
    bedrock: bedrock.endpoint,
  };
  const clients = awsClients({
    region,
    endpoints,
    credentials: LOCAL_CREDENTIALS,
    bedrockMaxAttempts: 1,
    maxSockets: LOCAL_SOCKETS,
  });
  const emulationS3 = awsClients({ region, endpoints, credentials: LOCAL_CREDENTIALS }).s3;
  const cloud: LocalCloud = {
    region,
    endpoints,
    clients,
    emulationS3,
    bedrock,
    objectCreated: fauxqs.objectCreated,
    dynamodbPid: dynamodb.value.pid,
    stop: async () => {
      for (const client of [...Object.values(clients), emulationS3]) client.destroy();
      await Promise.all([storageAndModels.value.close(), dynamodb.value.close()]);
    },
  };
  if (options.warmDynamoDb === true)
    await warmUpDynamoDbLocal(clients).catch(async (error: unknown) => {
      await cloud.stop();
      throw error;
    });
  return cloud;
}

/**
 * S3 and SQS, then the Bedrock stand-in, whose batch jobs read and write that S3 with a client of their own
 * (as Bedrock's service role would).
 */
async function startStorageAndModels(
  region: string,
  options: LocalCloudOptions['bedrock'],
): Promise<{ fauxqs: FauxqsServer; bedrock: BedrockStandIn; close(): Promise<void> }> {
  const fauxqs = await startFauxqs(region);
  const bedrockS3 = new S3Client({
    region,
    endpoint: fauxqs.endpoint,
    forcePathStyle: true,
    credentials: LOCAL_CREDENTIALS,
  });
  try {
    const bedrock = await startBedrockStandIn({
      ...options,
      region,
      batch: { ...options?.batch, storage: new S3BatchStorage(bedrockS3) },
    });
    return {
      fauxqs,
      bedrock,
      close: async () => {
        await bedrock.close();
        bedrockS3.destroy();
        await fauxqs.close();
      },
    };
  } catch (error) {
    bedrockS3.destroy();
    await fauxqs.close();
    throw error;
  }
}
