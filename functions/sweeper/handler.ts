import { MetricUnit } from '@aws-lambda-powertools/metrics';
import middy from '@middy/core';
import type { ScheduledEvent } from 'aws-lambda';
import type { EventPublisher } from '../../shared/pipeline/ports.ts';
import {
  type ActiveJobs,
  type DeadLetters,
  type SweepReport,
  sweepStuckJobs,
} from '../../shared/pipeline/sweeper.ts';
import { type Observability, withObservability } from '../observability.ts';

export interface SweeperDependencies extends Observability {
  readonly ports: {
    readonly jobs: ActiveJobs;
    readonly deadLetters: DeadLetters;
    readonly events: EventPublisher;
  };
  readonly stuckAfterMinutes: number;
}

/** The target of the schedule rule: reports stuck jobs and DLQ messages (logs, metrics, a bus event). */
export function createSweeperHandler(dependencies: SweeperDependencies) {
  const { logger, metrics } = dependencies;

  const handle = async (event: ScheduledEvent): Promise<SweepReport> => {
    const report = await sweepStuckJobs(dependencies.ports, {
      stuckAfterMinutes: dependencies.stuckAfterMinutes,
      now: new Date(event.time),
    });
    metrics.addMetric('StuckJobs', MetricUnit.Count, report.stuckJobs.length);
    metrics.addMetric('DeadLetterMessages', MetricUnit.Count, report.deadLetterMessages);
    if (report.stuckJobs.length > 0 || report.deadLetterMessages > 0)
      logger.warn('jobs need attention', { ...report });
    return report;
  };

  return withObservability(middy(handle), dependencies);
}
