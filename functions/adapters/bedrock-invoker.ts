import {
  type BedrockRuntimeClient,
  CountTokensCommand,
  InvokeModelCommand,
} from '@aws-sdk/client-bedrock-runtime';
import { serviceTierOf } from '../../shared/contract/service-tiers.ts';
import type { InvokeTarget, ModelAnswer, ModelInvoker, ModelTarget } from '../../shared/core/ports.ts';
import type { MessagesResponse } from '../../shared/output/result-records.ts';

/**
 * InvokeModel through the AWS SDK, from the target's source region (one client per region). The clients
 * should be built with few attempts of their own (see functions/adapters/clients.ts): the queue is the outer
 * retry loop, and retries multiply.
 */
export class BedrockInvoker implements ModelInvoker {
  constructor(private readonly bedrockIn: (region: string) => BedrockRuntimeClient) {}

  async invoke(target: InvokeTarget, bodyJson: string, signal: AbortSignal): Promise<ModelAnswer> {
    const output = await this.bedrockIn(target.region).send(
      new InvokeModelCommand({
        modelId: target.modelId,
        body: bodyJson,
        contentType: 'application/json',
        accept: 'application/json',
        ...(target.serviceTier === undefined ? {} : { serviceTier: target.serviceTier }),
      }),
      { abortSignal: signal },
    );
    return {
      response: JSON.parse(new TextDecoder().decode(output.body)) as MessagesResponse,
      servedTier: serviceTierOf(output.serviceTier),
    };
  }

  async countTokens(target: ModelTarget, bodyJson: string, signal: AbortSignal): Promise<number> {
    const output = await this.bedrockIn(target.region).send(
      new CountTokensCommand({
        modelId: target.modelId,
        input: { invokeModel: { body: new TextEncoder().encode(bodyJson) } },
      }),
      { abortSignal: signal },
    );
    if (output.inputTokens === undefined) throw new Error('CountTokens answered without inputTokens');
    return output.inputTokens;
  }
}
