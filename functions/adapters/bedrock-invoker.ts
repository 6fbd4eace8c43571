import {
  type BedrockRuntimeClient,
  CountTokensCommand,
  InvokeModelCommand,
} from '@aws-sdk/client-bedrock-runtime';
import type { MessagesResponse } from '../../shared/output/result-records.ts';
import type { ModelInvoker } from '../../shared/pipeline/ports.ts';

/**
 * InvokeModel through the AWS SDK. The client should be built with few attempts of its own (see
 * functions/adapters/clients.ts): the queue is the outer retry loop, and retries multiply.
 */
export class BedrockInvoker implements ModelInvoker {
  constructor(private readonly bedrock: BedrockRuntimeClient) {}

  async invoke(modelId: string, bodyJson: string, signal: AbortSignal): Promise<MessagesResponse> {
    const output = await this.bedrock.send(
      new InvokeModelCommand({
        modelId,
        body: bodyJson,
        contentType: 'application/json',
        accept: 'application/json',
      }),
      { abortSignal: signal },
    );
    return JSON.parse(new TextDecoder().decode(output.body)) as MessagesResponse;
  }

  async countTokens(foundationModelId: string, bodyJson: string, signal: AbortSignal): Promise<number> {
    const output = await this.bedrock.send(
      new CountTokensCommand({
        modelId: foundationModelId,
        input: { invokeModel: { body: new TextEncoder().encode(bodyJson) } },
      }),
      { abortSignal: signal },
    );
    if (output.inputTokens === undefined) throw new Error('CountTokens answered without inputTokens');
    return output.inputTokens;
  }
}
