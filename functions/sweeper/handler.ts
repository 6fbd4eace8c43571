import { MetricUnit } from '@aws-lambda-powertools/metrics';
import middy from '@middy/core';
import type { ScheduledEvent } from 'aws-lambda';
import { METRICS } from '../../shared/contract/metrics.ts';
import { type SweepPorts, type SweepReport, sweepStuckJobs } from '../../shared/pipeline/sweeper.ts';
import { type Observability, withObservability } from '../observability.ts';

export interface SweeperDependencies extends Observability {
  readonly ports: SweepPorts;
  readonly resumeAfterMinutes: number;
  readonly stuckAfterMinutes: number;
}

/**
 * The target of the schedule rule: takes up steps that stopped (reading a file, finalizing, publishing the
 * completion event) and reports stuck jobs and DLQ messages (logs, metrics, a bus event).
 */
export function createSweeperHandler(dependencies: SweeperDependencies) {
  const { logger, metrics } = dependencies;

  const handle = async (event: ScheduledEvent): Promise<SweepReport> => {
    const report = await sweepStuckJobs(dependencies.ports, {
      resumeAfterMinutes: dependencies.resumeAfterMinutes,
      stuckAfterMinutes: dependencies.stuckAfterMinutes,
      now: new Date(event.time),
    });
    metrics.addMetric(METRICS.sweeper.jobsResumed, MetricUnit.Count, report.resumed.length);
    metrics.addMetric(METRICS.sweeper.stuckJobs, MetricUnit.Count, report.stuckJobs.length);
    if (report.resumed.length > 0) logger.info('stopped steps taken up again', { resumed: report.resumed });
    metrics.addMetric(METRICS.sweeper.deadLetterMessages, MetricUnit.Count, report.deadLetterMessages);
    if (report.stuckJobs.length > 0 || report.deadLetterMessages > 0)
      logger.warn('jobs need attention', { ...report });
    return report;
  };

  return withObservability(middy(handle), dependencies);
}
