import { MessageBatches } from '../../shared/message-batches/message-batches.ts';
import { BUCKET, type pipelineHarness } from './pipeline-harness.ts';

/**
 * The Message Batches API over a pipeline harness's bucket and ledger, as `caller` sees it, its results at
 * `resultsBase` (a server's base URL, say).
 */
export function messageBatchesOf(
  pipeline: ReturnType<typeof pipelineHarness>,
  caller: string | undefined,
  resultsBase = 'https://results.example',
): MessageBatches {
  return new MessageBatches(
    {
      store: pipeline.store,
      ledger: pipeline.ledger,
      bucket: BUCKET,
      jobDefaults: pipeline.enqueueSettings.defaults,
      clock: pipeline.workerSettings.clock,
      resultsUrl: (batchId) => `${resultsBase}/v1/messages/batches/${batchId}/results`,
    },
    caller,
  );
}
