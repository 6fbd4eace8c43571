import { randomUUID } from 'node:crypto';
import type { RecordMessage } from '../messages/record-message.ts';
import { SpendingCaps } from '../pipeline/spending-caps.ts';
import { arrange } from './arrange.ts';
import type { Batch, BatchDeadline, RecordVerdict, WorkerPorts, WorkerSettings } from './batch.ts';
import { callArranged } from './call.ts';
import { count } from './count.ts';
import { prepare } from './prepare.ts';

/**
 * A batch of records from the queue to their verdicts, in four stages. Prepare: records that need no call
 * (done, broken, canceled) get their verdict at once; the others become calls. Arrange: one call writes each
 * shared prefix before the calls that read it. Call: the calls reserve from the shared budget together, one
 * reservation per budget, and start in this invocation as their tokens arrive; calls the budget cannot start
 * before the batch's deadline go back to the queue with a delay, which is not a failure; each call takes its
 * record's lease and calls Bedrock, every failure through the failure table, and every reservation is settled
 * to what Bedrock charged. Count: the batch's results are stored as one result set per job, and its records
 * and counters counted in the ledger in one transaction.
 */
export async function processBatch(
  messages: readonly RecordMessage[],
  ports: WorkerPorts,
  settings: WorkerSettings,
  deadline: BatchDeadline,
): Promise<RecordVerdict[]> {
  const batch: Batch = {
    ports,
    settings,
    deadline,
    caps: new SpendingCaps(ports.ledger, settings),
    size: messages.length,
    setId: randomUUID(),
  };
  const prepared = await prepare(messages, batch);
  const calls = prepared.flatMap((entry) => ('call' in entry ? [entry.call] : []));
  const called = new Map(
    (await callArranged(await arrange(calls, batch))).map(([call, verdict]) => [call.message, verdict]),
  );
  return count(
    prepared.map((entry) => ({
      message: entry.message,
      job: entry.job,
      verdict: 'verdict' in entry ? entry.verdict : (called.get(entry.message) ?? noVerdict()),
    })),
    batch,
  );
}

function noVerdict(): RecordVerdict {
  return { kind: 'unhandled', error: new Error('the record got no verdict') };
}
