import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import type { Tracer } from '@aws-lambda-powertools/tracer';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import type middy from '@middy/core';
import { METRICS_NAMESPACE, type MetricsService } from '../shared/contract/metrics.ts';

/**
 * Each function's logger and metrics (EMF). Prompts and completions are never logged: records are named by
 * job id, record id and line only.
 */
export function observability(serviceName: MetricsService) {
  const logger = new Logger({ serviceName });
  // The metrics' own warnings (an invocation that ends before it counts anything) go to the function's log,
  // as structured lines at its level, not to the console.
  return { logger, metrics: new Metrics({ namespace: METRICS_NAMESPACE, serviceName, logger }) };
}

export interface Observability {
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** On Lambda only (X-Ray); locally and in tests there is none. */
  readonly tracer?: Tracer | undefined;
}

/** The Powertools middlewares every handler wears: context in the logs, EMF metrics, and tracing when on. */
export function withObservability<Event, Result>(
  handler: middy.MiddyfiedHandler<Event, Result>,
  { logger, metrics, tracer }: Observability,
): middy.MiddyfiedHandler<Event, Result> {
  handler.use(injectLambdaContext(logger, { resetKeys: true })).use(logMetrics(metrics));
  // Responses name input files and jobs: traces keep timings, not what the handlers return.
  if (tracer !== undefined) handler.use(captureLambdaHandler(tracer, { captureResponse: false }));
  return handler;
}
