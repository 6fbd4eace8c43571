import { MetricUnit } from '@aws-lambda-powertools/metrics';
import middy from '@middy/core';
import type { Context, EventBridgeEvent } from 'aws-lambda';
import { ENQUEUE_CONTINUATION, EVENT_SOURCE } from '../../shared/contract/job-events.ts';
import { METRICS } from '../../shared/contract/metrics.ts';
import { PipelineError } from '../../shared/errors.ts';
import { parseObjectCreated } from '../../shared/events/object-created.ts';
import {
  continueJob,
  type EnqueueOutcome,
  type EnqueuePorts,
  type EnqueueSettings,
  startJob,
} from '../../shared/pipeline/enqueue.ts';
import { type Observability, withObservability } from '../observability.ts';

export interface EnqueueDependencies extends Observability {
  readonly ports: EnqueuePorts;
  readonly settings: EnqueueSettings;
  /** Reading stops this long before the deadline, to save its place and hand over to a new invocation. */
  readonly stopBeforeDeadlineMs?: number;
}

/**
 * The target of the "Object Created" rule for inputs/*.jsonl, and of the pipeline's own "Enqueue
 * Continuation" events for files too large for one invocation.
 */
export function createEnqueueHandler(dependencies: EnqueueDependencies) {
  const { logger, metrics, ports, settings } = dependencies;

  const handle = async (
    event: EventBridgeEvent<string, unknown>,
    context: Context,
  ): Promise<EnqueueOutcome> => {
    const shouldStop = () =>
      context.getRemainingTimeInMillis() < (dependencies.stopBeforeDeadlineMs ?? 60_000);
    const outcome =
      event.source === EVENT_SOURCE && event['detail-type'] === ENQUEUE_CONTINUATION
        ? await continueJob(jobIdOf(event.detail), ports, settings, shouldStop, context.awsRequestId)
        : await startJob(parseObjectCreated(event), ports, settings, shouldStop, context.awsRequestId);
    if ('jobId' in outcome) logger.appendKeys({ jobId: outcome.jobId });
    logger.info('enqueue finished', {
      outcome: outcome.kind,
      ...('totalRecords' in outcome ? { totalRecords: outcome.totalRecords } : {}),
    });
    // Every outcome is counted: an invocation without a metric would only log a warning.
    if (outcome.kind === 'read')
      metrics.addMetric(METRICS.enqueue.recordsRead, MetricUnit.Count, outcome.totalRecords);
    else metrics.addMetric(OUTCOME_METRICS[outcome.kind], MetricUnit.Count, 1);
    return outcome;
  };

  return withObservability(middy(handle), dependencies);
}

const OUTCOME_METRICS: Readonly<Record<Exclude<EnqueueOutcome['kind'], 'read'>, string>> = {
  continued: METRICS.enqueue.handoffs,
  duplicate: METRICS.enqueue.duplicateEvents,
  'taken-over': METRICS.enqueue.takeovers,
  failed: METRICS.enqueue.jobsRejected,
  missing: METRICS.enqueue.missingObjects,
  ignored: METRICS.enqueue.ignoredObjects,
};

function jobIdOf(detail: unknown): string {
  const jobId = (detail as { jobId?: unknown } | undefined)?.jobId;
  if (typeof jobId !== 'string' || jobId === '') {
    throw new PipelineError('INVALID_EVENT', 'An Enqueue Continuation event needs detail.jobId.');
  }
  return jobId;
}
