import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import middy from '@middy/core';
import type { Context, SQSBatchItemFailure, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { parseRecordMessage } from '../../shared/messages/record-message.ts';
import type { JobRecord, RecordQueue } from '../../shared/pipeline/ports.ts';
import {
  processRecord,
  type RecordVerdict,
  type WorkerPorts,
  type WorkerSettings,
} from '../../shared/pipeline/worker.ts';
import { METRICS_NAMESPACE, type Observability, withObservability } from '../observability.ts';

export interface WorkerDependencies extends Observability {
  readonly ports: WorkerPorts & { readonly queue: RecordQueue };
  readonly settings: Omit<WorkerSettings, 'owner'>;
  /** Time kept back from the deadline to report records that could not finish. */
  readonly wrapUpMs?: number;
}

/**
 * The worker: every record of the batch at once, each to a verdict. Records to retry go back with a
 * visibility delay chosen by the failure table and are reported as batch item failures; a record that throws
 * is reported too and returns after the queue's visibility timeout (and, if it always throws, reaches the DLQ).
 */
export function createWorkerHandler(dependencies: WorkerDependencies) {
  const { logger, metrics, ports } = dependencies;

  const handle = async (
    event: SQSEvent,
    context: Context,
    { signal }: { signal: AbortSignal },
  ): Promise<SQSBatchResponse> => {
    const deadline = AbortSignal.timeout(
      Math.max(1, context.getRemainingTimeInMillis() - (dependencies.wrapUpMs ?? 5_000)),
    );
    const recordsSignal = AbortSignal.any([signal, deadline]);
    const settings: WorkerSettings = { ...dependencies.settings, owner: context.awsRequestId };
    const jobs = new Map<string, Promise<JobRecord | undefined>>();
    const jobOf = (jobId: string) => {
      let job = jobs.get(jobId);
      if (job === undefined) {
        job = ports.ledger.getJob(jobId);
        jobs.set(jobId, job);
      }
      return job;
    };

    const usageByModel = new Map<
      string,
      {
        input: number;
        output: number;
        cacheWrite: number;
        cacheRead: number;
        costNanoUsd: number;
        latencyMs: number[];
      }
    >();
    const tally = (verdict: RecordVerdict) => {
      count(verdict);
      if (verdict.kind !== 'done' || verdict.model === undefined || verdict.completion === undefined) return;
      const usage = usageByModel.get(verdict.model.modelId) ?? {
        input: 0,
        output: 0,
        cacheWrite: 0,
        cacheRead: 0,
        costNanoUsd: 0,
        latencyMs: [],
      };
      usage.input += verdict.completion.inputTokens;
      usage.output += verdict.completion.outputTokens;
      usage.cacheWrite += verdict.completion.cacheCreationInputTokens;
      usage.cacheRead += verdict.completion.cacheReadInputTokens;
      usage.costNanoUsd += verdict.completion.costNanoUsd;
      usage.latencyMs.push(verdict.model.latencyMs);
      usageByModel.set(verdict.model.modelId, usage);
    };

    const failures = await Promise.all(
      event.Records.map(async (record): Promise<SQSBatchItemFailure | undefined> => {
        try {
          const message = parseRecordMessage(record.body);
          const verdict = await processRecord(
            message,
            await jobOf(message.jobId),
            ports,
            settings,
            recordsSignal,
          );
          tally(verdict);
          logger.debug('record processed', {
            jobId: message.jobId,
            recordId: message.recordId,
            line: message.lineNumber,
            verdict: verdict.kind,
          });
          if (verdict.kind === 'done') return undefined;
          await ports.queue.changeVisibility(record.receiptHandle, verdict.delaySeconds);
          return { itemIdentifier: record.messageId };
        } catch (error) {
          metrics.addMetric('RecordsUnhandled', MetricUnit.Count, 1);
          logger.error('record could not be handled; it returns through the queue', {
            messageId: record.messageId,
            ...keysOf(record),
            error,
          });
          return { itemIdentifier: record.messageId };
        }
      }),
    );
    // Tokens, cost and latency per model: the one dimension worth its cost (a job is a property, not a dimension).
    for (const [modelId, usage] of usageByModel) {
      const perModel = new Metrics({
        namespace: METRICS_NAMESPACE,
        serviceName: 'worker',
        defaultDimensions: { model: modelId },
      });
      perModel.addMetric('InputTokens', MetricUnit.Count, usage.input);
      perModel.addMetric('OutputTokens', MetricUnit.Count, usage.output);
      perModel.addMetric('CacheWriteInputTokens', MetricUnit.Count, usage.cacheWrite);
      perModel.addMetric('CacheReadInputTokens', MetricUnit.Count, usage.cacheRead);
      perModel.addMetric('EstimatedCostUsd', MetricUnit.NoUnit, usage.costNanoUsd / 1e9);
      for (const latency of usage.latencyMs)
        perModel.addMetric('ModelLatency', MetricUnit.Milliseconds, latency);
      perModel.publishStoredMetrics();
    }
    return {
      batchItemFailures: failures.filter((failure): failure is SQSBatchItemFailure => failure !== undefined),
    };
  };

  const count = (verdict: RecordVerdict) => {
    if (verdict.kind === 'retry') {
      const code = verdict.failure?.code;
      metrics.addMetric(code === 'BUDGET_EXHAUSTED' ? 'BudgetWaits' : 'RecordsRetried', MetricUnit.Count, 1);
      if (verdict.failure?.throttle === true) metrics.addMetric('BedrockThrottles', MetricUnit.Count, 1);
      return;
    }
    const name = {
      succeeded: 'RecordsSucceeded',
      errored: 'RecordsFailed',
      canceled: 'RecordsCanceled',
      expired: 'RecordsCanceled',
      'already-done': 'DuplicateDeliveries',
    }[verdict.status];
    metrics.addMetric(name, MetricUnit.Count, 1);
  };

  return withObservability(middy(handle, { timeoutEarlyInMillis: 1_000 }), dependencies);
}

/** What can be said of a record whose message could not be parsed, without its content. */
function keysOf(record: SQSRecord): Record<string, string> {
  return { receiveCount: record.attributes.ApproximateReceiveCount };
}
