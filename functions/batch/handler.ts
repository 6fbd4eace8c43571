import { MetricUnit } from '@aws-lambda-powertools/metrics';
import middy from '@middy/core';
import type { EventBridgeEvent, SQSEvent } from 'aws-lambda';
import type { BatchLaunchSettings } from '../../shared/batch/launch.ts';
import {
  onBatchJobChange,
  onDeadlineAlarm,
  sweepBatchParts,
  type WatchPorts,
} from '../../shared/batch/watch.ts';
import { METRICS } from '../../shared/contract/metrics.ts';
import type { DeadlineAlarms } from '../../shared/core/ports.ts';
import { BATCH_JOB_STATE_CHANGE, batchJobChangeOf } from '../../shared/events/batch-job-change.ts';
import { parseDeadlineAlarm } from '../../shared/messages/deadline-alarm.ts';
import { type Observability, withObservability } from '../observability.ts';

export interface BatchDependencies extends Observability {
  readonly ports: WatchPorts & { readonly alarms?: DeadlineAlarms };
  readonly settings: Omit<BatchLaunchSettings, 'clock'>;
}

/**
 * The batch lane's watcher. Bedrock's "Batch Inference Job State Change" events collect a part once its job
 * has ended; deadline alarms (from its SQS queue) stop a job's batch jobs at its deadline; a schedule (events
 * are best effort) submits waiting parts, collects what no event announced and stops jobs past their deadline.
 */
export function createBatchHandler(dependencies: BatchDependencies) {
  const { logger, metrics, ports } = dependencies;
  // The event's time is the sweep's: what is late is judged at the moment the schedule fired.
  const settings = (time: string) => ({ ...dependencies.settings, clock: { now: () => Date.parse(time) } });

  const handle = async (event: EventBridgeEvent<string, unknown> | SQSEvent): Promise<void> => {
    if ('Records' in event) {
      await alarmsWentOff(event, new Date().toISOString());
      return;
    }
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

  /** One alarm a message (the queue gives them one at a time); a failure throws, and SQS tries again. */
  const alarmsWentOff = async (event: SQSEvent, time: string): Promise<void> => {
    const { alarms } = ports;
    if (alarms === undefined)
      throw new Error('deadline alarms arrived at a watcher wired without their queue');
    for (const record of event.Records) {
      const alarm = parseDeadlineAlarm(record.body);
      const outcome = await onDeadlineAlarm(alarm, { ...ports, alarms }, settings(time));
      metrics.addMetric(METRICS.batch.deadlineAlarms, MetricUnit.Count, 1);
      logger.info('deadline alarm', { jobId: alarm.jobId, at: new Date(alarm.at).toISOString(), outcome });
    }
  };

  return withObservability(middy(handle), dependencies);
}
