import { BedrockClient } from '@aws-sdk/client-bedrock';
import { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { RETRY_LAYERS } from '../../shared/retry-layers.ts';

export interface Endpoints {
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
  /** The Bedrock runtime in the functions' Bedrock region. */
  readonly bedrock: BedrockRuntimeClient;
  /** The Bedrock runtime in a source region: quota pools of other regions are called from there. */
  readonly bedrockIn: ClientsByRegion<BedrockRuntimeClient>;
  /** Bedrock's control plane: batch inference jobs. */
  readonly bedrockJobs: BedrockClient;
  readonly events: EventBridgeClient;
}

/**
 * The requests a function sends at once to one endpoint over HTTP/1.1: a worker batch's ledger writes and
 * reads (up to 100 records). The SDK's own pool of 50 sockets would queue the rest behind the first 50
 * answers, and warn of it mid-run. (The Bedrock runtime client speaks HTTP/2, a session per call: no pool.)
 */
export const FUNCTION_SOCKETS = 100;

/** An HTTP/1.1 client's connection pool: `maxSockets` to each endpoint, kept alive between requests. */
function socketPool(maxSockets: number) {
  return { requestHandler: { httpAgent: { maxSockets }, httpsAgent: { maxSockets } } };
}

export interface ClientOptions {
  readonly region: string;
  /** Sockets each HTTP/1.1 client may open to one endpoint: the most requests it sends at once (FUNCTION_SOCKETS unless given). */
  readonly maxSockets?: number;
  /** Endpoint overrides (the local cloud); AWS's own endpoints when absent. */
  readonly endpoints?: Endpoints | undefined;
  readonly credentials?: { accessKeyId: string; secretAccessKey: string } | undefined;
  /** Attempts the Bedrock client makes itself: keep it low, the queue retries (and retries multiply). */
  readonly bedrockMaxAttempts?: number;
  /** The region Bedrock is called in, when it differs from the functions' own. */
  readonly bedrockRegion?: string;
  /** Sees every client made, those made later for another Bedrock region too (tracing). */
  readonly observe?: (client: Observed) => void;
}

type Observed = AwsClients[Exclude<keyof AwsClients, 'bedrockIn'>];

/** The AWS SDK v3 clients the functions use: path-style S3 and SQS at the endpoint (not the queue URL) when overridden. */
export function awsClients(options: ClientOptions): AwsClients {
  const { region, endpoints, credentials } = options;
  // A copy each: the SDK marks the credentials object it is given with where they came from.
  const common = {
    region,
    ...(credentials === undefined
      ? {}
      : {
          credentials: { accessKeyId: credentials.accessKeyId, secretAccessKey: credentials.secretAccessKey },
        }),
  };
  // Not the Bedrock runtime's: its HTTP/2 handler, one session a call, is the SDK's choice for it.
  const pooled = { ...common, ...socketPool(options.maxSockets ?? FUNCTION_SOCKETS) };
  const dynamodb = new DynamoDBClient({
    ...pooled,
    ...(endpoints === undefined ? {} : { endpoint: endpoints.dynamodb }),
  });
  const observed = <Client extends Observed>(client: Client): Client => {
    options.observe?.(client);
    return client;
  };
  const bedrockIn = perRegion((bedrockRegion) =>
    observed(
      new BedrockRuntimeClient({
        ...common,
        region: bedrockRegion,
        maxAttempts: options.bedrockMaxAttempts ?? RETRY_LAYERS.bedrockSdkAttempts,
        ...(endpoints === undefined ? {} : { endpoint: endpoints.bedrock }),
      }),
    ),
  );
  const clients = {
    s3: new S3Client({
      ...pooled,
      ...(endpoints === undefined ? {} : { endpoint: endpoints.s3, forcePathStyle: true }),
    }),
    sqs: new SQSClient({
      ...pooled,
      ...(endpoints === undefined ? {} : { endpoint: endpoints.sqs, useQueueUrlAsEndpoint: false }),
    }),
    dynamodb,
    documents: DynamoDBDocumentClient.from(dynamodb, { marshallOptions: { removeUndefinedValues: true } }),
    bedrock: bedrockIn(options.bedrockRegion ?? region),
    bedrockIn,
    bedrockJobs: new BedrockClient({
      ...pooled,
      region: options.bedrockRegion ?? region,
      ...(endpoints === undefined ? {} : { endpoint: endpoints.bedrock }),
    }),
    events: new EventBridgeClient(pooled),
  };
  for (const [name, client] of Object.entries(clients))
    if (name !== 'bedrock' && name !== 'bedrockIn') options.observe?.(client as Observed);
  return clients;
}

/** One client per region, made when a region is first asked for; `destroy` ends them all. */
export interface ClientsByRegion<Client> {
  (region: string): Client;
  destroy(): void;
}

export function perRegion<Client extends { destroy(): void }>(
  make: (region: string) => Client,
): ClientsByRegion<Client> {
  const made = new Map<string, Client>();
  const clientIn = (region: string) => {
    const known = made.get(region) ?? make(region);
    made.set(region, known);
    return known;
  };
  return Object.assign(clientIn, {
    destroy: () => {
      for (const client of made.values()) client.destroy();
      made.clear();
    },
  });
}
