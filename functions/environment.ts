import { Tracer } from '@aws-lambda-powertools/tracer';
import { defaultCatalog } from '../shared/catalog/catalog.ts';
import type { JobSettings } from '../shared/pipeline/model.ts';
import { type AwsClients, awsClients } from './adapters/clients.ts';
import { BusEventPublisher, eventBridgePutEvent } from './adapters/events.ts';
import { observability } from './observability.ts';

/**
 * What every Lambda entry point builds once, at cold start, from its validated settings: the AWS clients
 * (traced), logger, metrics and tracer.
 */
export function lambdaEnvironment(
  serviceName: string,
  settings: { readonly BEDROCK_REGION?: string; readonly SDK_MAX_ATTEMPTS?: number } & Record<
    string,
    unknown
  >,
) {
  const region = process.env.AWS_REGION ?? settings.BEDROCK_REGION ?? 'us-east-1';
  const tracer = new Tracer({ serviceName });
  const clients: AwsClients = awsClients({
    region,
    ...(settings.BEDROCK_REGION === undefined ? {} : { bedrockRegion: settings.BEDROCK_REGION }),
    ...(settings.SDK_MAX_ATTEMPTS === undefined ? {} : { bedrockMaxAttempts: settings.SDK_MAX_ATTEMPTS }),
  });
  for (const client of Object.values(clients)) tracer.captureAWSv3Client(client);
  return { clients, tracer, ...observability(serviceName) };
}

export function busPublisher(clients: AwsClients, eventBusName: string): BusEventPublisher {
  return new BusEventPublisher(eventBridgePutEvent(clients.events, eventBusName));
}

export function jobDefaultsOf(settings: {
  BEDROCK_MODEL: string;
  BEDROCK_REGION: string;
  BEDROCK_ENDPOINT: JobSettings['endpoint'];
  DEFAULT_MAX_TOKENS: number;
  ALLOWED_MODEL_IDS?: readonly string[] | undefined;
}): JobSettings {
  return {
    model: settings.BEDROCK_MODEL,
    region: settings.BEDROCK_REGION,
    endpoint: settings.BEDROCK_ENDPOINT,
    defaultMaxTokens: settings.DEFAULT_MAX_TOKENS,
    ...(settings.ALLOWED_MODEL_IDS === undefined ? {} : { allowedModelIds: settings.ALLOWED_MODEL_IDS }),
  };
}

export const maxLineBytes = defaultCatalog.requestBodyLimitBytes;
