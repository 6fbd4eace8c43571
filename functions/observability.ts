import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';

export const METRICS_NAMESPACE = 'BedrockBatchPipeline';

/**
 * Each function's logger and metrics (EMF). Prompts and completions are never logged: records are named by
 * job id, record id and line only.
 */
export function observability(serviceName: string) {
  return {
    logger: new Logger({ serviceName }),
    metrics: new Metrics({ namespace: METRICS_NAMESPACE, serviceName }),
  };
}

export type Observability = ReturnType<typeof observability>;
