import type { Arranged } from './arrange.ts';
import type { Batch, Call, RecordVerdict } from './batch.ts';
import { callWithin } from './budget-share.ts';
import { placeOnPools } from './pools.ts';

/**
 * The call stage: the arranged calls under the shared budget, the writers of shared prefixes first. Every
 * call ends in a verdict, the calls sent back to wait for a prefix included.
 */
export async function callArranged({
  batch,
  writers,
  free,
  waiting,
}: Arranged): Promise<Array<readonly [Call, RecordVerdict]>> {
  const written = await callAll(writers, batch);
  for (const [call, verdict] of written)
    if (verdict.kind === 'done' && verdict.status === 'succeeded')
      await batch.ports.ledger.markPrefixWritten(
        call.job.jobId,
        call.invocation.modelId,
        batch.settings.clock.now(),
      );
  return [...waiting, ...written, ...(await callAll(free, batch))];
}

/**
 * Calls placed on their quota pools (see placeOnPools), each pool's calls reserving once; calls a pool cannot
 * start before another could are placed again on the pools not tried yet.
 */
async function callAll(
  calls: readonly Call[],
  batch: Batch,
  tried: ReadonlySet<string> = new Set(),
): Promise<Array<[Call, RecordVerdict]>> {
  const placements = await placeOnPools(calls, batch, tried);
  const results = await Promise.all(
    placements.map(({ budgetKey, calls: placed, startBy }) =>
      callWithin(
        budgetKey,
        placed,
        batch,
        startBy === undefined
          ? undefined
          : { startBy, call: (rest) => callAll(rest, batch, new Set([...tried, budgetKey])) },
      ),
    ),
  );
  return results.flat();
}
