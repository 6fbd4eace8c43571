import { MetricUnit } from '@aws-lambda-powertools/metrics';
import middy from '@middy/core';
import type { EventBridgeEvent } from 'aws-lambda';
import type { BatchLaunchSettings } from '../../shared/batch/launch.ts';
import { onBatchJobChange, sweepBatchParts, type WatchPorts } from '../../shared/batch/watch.ts';
import { BATCH_JOB_STATE_CHANGE, batchJobChangeOf } from '../../shared/events/batch-job-change.ts';
import { METRICS } from '../metrics.ts';
import { type Observability, withObservability } from '../observability.ts';

export interface BatchDependencies extends Observability {
  readonly ports: WatchPorts;
  readonly settings: Omit<BatchLaunchSettings, 'now'>;
}

/**
 * The batch lane's watcher. Bedrock's "Batch Inference Job State Change" events collect a part once its job
 * has ended; a schedule (events are best effort) submits waiting parts, collects what no event announced and
 * stops jobs past their deadline.
 */
export function createBatchHandler(dependencies: BatchDependencies) {
  const { logger, metrics, ports } = dependencies;
  const settings = (time: string) => ({ ...dependencies.settings, now: () => new Date(time) });

  const handle = async (event: EventBridgeEvent<string, unknown>): Promise<void> => {
    if (event['detail-type'] !== BATCH_JOB_STATE_CHANGE) {
      const watched = await sweepBatchParts(ports, settings(event.time));
      metrics.addMetric(METRICS.batch.partsWatched, MetricUnit.Count, watched);
      return;
    }
    const change = batchJobChangeOf(event.detail);
    const outcome =
      change === undefined ? undefined : await onBatchJobChange(change, ports, settings(event.time));
    if (outcome?.kind !== 'collected') {
      metrics.addMetric(METRICS.batch.eventsIgnored, MetricUnit.Count, 1);
      logger.debug('batch job event changed nothing', { change, outcome: outcome?.kind ?? 'unreadable' });
      return;
    }
    metrics.addMetric(METRICS.batch.partsCollected, MetricUnit.Count, 1);
    metrics.addMetric(METRICS.batch.recordsRedriven, MetricUnit.Count, outcome.redriven);
    if (change?.status === 'Failed') metrics.addMetric(METRICS.batch.jobsFailed, MetricUnit.Count, 1);
    logger.info('batch part collected', {
      ...change,
      answered: outcome.answered,
      redriven: outcome.redriven,
    });
  };

  return withObservability(middy(handle), dependencies);
}
