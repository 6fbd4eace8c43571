import { MetricUnit } from '@aws-lambda-powertools/metrics';
import middy from '@middy/core';
import type { SQSEvent } from 'aws-lambda';
import { z } from 'zod';
import { type FinalizePorts, finalizeJob } from '../../shared/pipeline/finalize.ts';
import { type Observability, withObservability } from '../observability.ts';

export interface FinalizerDependencies extends Observability {
  readonly ports: FinalizePorts;
}

const finalizeMessage = z.object({ jobId: z.string().min(1) });

/** Fed by the finalize queue (batch size 1): a failure throws, and the queue tries again. */
export function createFinalizerHandler(dependencies: FinalizerDependencies) {
  const { logger, metrics, ports } = dependencies;

  const handle = async (event: SQSEvent): Promise<void> => {
    for (const record of event.Records) {
      const { jobId } = finalizeMessage.parse(JSON.parse(record.body));
      const manifest = await finalizeJob(jobId, ports);
      logger.info('job finalized', {
        jobId,
        records: manifest?.totalRecordCount,
        alreadyDone: manifest === undefined,
      });
      if (manifest !== undefined) {
        metrics.addMetric('JobsCompleted', MetricUnit.Count, 1);
        metrics.addMetric('EstimatedCostUsd', MetricUnit.NoUnit, manifest.estimatedCostUsd);
      }
    }
  };

  return withObservability(middy(handle), dependencies);
}
