import { MetricUnit } from '@aws-lambda-powertools/metrics';
import middy from '@middy/core';
import type { Context, SQSEvent } from 'aws-lambda';
import { z } from 'zod';
import { METRICS } from '../../shared/contract/metrics.ts';
import { type FinalizePorts, finalizeJob } from '../../shared/pipeline/finalize.ts';
import { type Observability, withObservability } from '../observability.ts';

export interface FinalizerDependencies extends Observability {
  readonly ports: FinalizePorts;
  /** Output is written until this long before the deadline, then the rest goes to a new invocation. */
  readonly stopBeforeDeadlineMs?: number;
  /** Bytes of output per part; the finalizer's default (8 MiB) unless given. */
  readonly partBytes?: number;
  /** How long a claim to publish a job's event holds; the finalizer's default unless given. */
  readonly announceLeaseSeconds?: number;
}

const finalizeMessage = z.object({ jobId: z.string().min(1) });

/** Fed by the finalize queue (batch size 1): a failure throws, and the queue tries again from the checkpoint. */
export function createFinalizerHandler(dependencies: FinalizerDependencies) {
  const { logger, metrics, ports } = dependencies;

  const handle = async (event: SQSEvent, context: Context): Promise<void> => {
    const shouldStop = () =>
      context.getRemainingTimeInMillis() < (dependencies.stopBeforeDeadlineMs ?? 60_000);
    for (const record of event.Records) {
      const { jobId } = finalizeMessage.parse(JSON.parse(record.body));
      const outcome = await finalizeJob(jobId, ports, {
        shouldStop,
        ...(dependencies.partBytes === undefined ? {} : { partBytes: dependencies.partBytes }),
        ...(dependencies.announceLeaseSeconds === undefined
          ? {}
          : { announceLeaseSeconds: dependencies.announceLeaseSeconds }),
      });
      logger.info('finalizer finished', {
        jobId,
        outcome: outcome.kind,
        ...(outcome.kind === 'completed' ? { records: outcome.manifest.totalRecordCount } : {}),
        ...(outcome.kind === 'continued' ? { linesWritten: outcome.linesWritten } : {}),
      });
      // Every outcome is counted: an invocation without a metric would only log a warning.
      if (outcome.kind === 'completed') {
        metrics.addMetric(METRICS.finalizer.jobsCompleted, MetricUnit.Count, 1);
        metrics.addMetric(
          METRICS.finalizer.estimatedCostUsd,
          MetricUnit.NoUnit,
          outcome.manifest.estimatedCostUsd,
        );
      } else {
        metrics.addMetric(
          outcome.kind === 'continued' ? METRICS.finalizer.handoffs : METRICS.finalizer.alreadyDone,
          MetricUnit.Count,
          1,
        );
      }
    }
  };

  return withObservability(middy(handle), dependencies);
}
