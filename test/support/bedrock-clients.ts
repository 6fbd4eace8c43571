import { BedrockRuntimeClient, InvokeModelCommand } from '@aws-sdk/client-bedrock-runtime';
import type { BedrockStandIn } from '../../local/bedrock/stand-in.ts';
import type { MessagesBody } from '../../shared/input/records.ts';

export const LOCAL_CREDENTIALS = { accessKeyId: 'AKIDLOCALSTANDIN', secretAccessKey: 'local-secret' };

/** The real AWS SDK client, pointed at the stand-in, with its own retries off so each call is one request. */
export function bedrockClient(
  standIn: BedrockStandIn,
  overrides: { region?: string; accessKeyId?: string } = {},
) {
  return new BedrockRuntimeClient({
    region: overrides.region ?? standIn.region,
    endpoint: standIn.endpoint,
    credentials: {
      ...LOCAL_CREDENTIALS,
      ...(overrides.accessKeyId === undefined ? {} : { accessKeyId: overrides.accessKeyId }),
    },
    maxAttempts: 1,
  });
}

export function invokeBody(
  overrides: Partial<MessagesBody> & Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    anthropic_version: 'bedrock-2023-05-31',
    max_tokens: 200,
    messages: [{ role: 'user', content: 'Summarise the batch.' }],
    ...overrides,
  };
}

export async function invoke(
  client: BedrockRuntimeClient,
  body: Record<string, unknown>,
  modelId = 'global.anthropic.claude-opus-4-6-v1',
) {
  const output = await client.send(
    new InvokeModelCommand({
      modelId,
      body: JSON.stringify(body),
      contentType: 'application/json',
      accept: 'application/json',
    }),
  );
  return JSON.parse(new TextDecoder().decode(output.body)) as {
    id: string;
    type: string;
    content: Array<{ type: string; text: string }>;
    stop_reason: string;
    usage: {
      input_tokens: number;
      output_tokens: number;
      cache_creation_input_tokens: number;
      cache_read_input_tokens: number;
    };
  };
}

/** What a call failed with, as the SDK surfaced it. */
export async function failureOf(call: Promise<unknown>) {
  try {
    await call;
  } catch (error) {
    const sdkError = error as Error & { $metadata?: { httpStatusCode?: number } };
    return { name: sdkError.name, status: sdkError.$metadata?.httpStatusCode, message: sdkError.message };
  }
  throw new Error('expected the call to fail');
}
