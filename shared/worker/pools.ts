import { type BucketState, THROTTLE_MEMORY_MS, takeEach } from '../budget/bucket.ts';
import { type Catalog, catalogInUse } from '../catalog/catalog.ts';
import { requireRegion } from '../models/resolve-model.ts';
import { choiceOf, poolName, poolsFor, type QuotaPool } from '../quotas/pools.ts';
import type { Batch, Call } from './batch.ts';

/** Placing a batch's calls on the quota pools their job allows: each call where its tokens arrive soonest. */

/** Arrivals this close count as a tie, which the cheaper pool takes (budget times are sums of fractions). */
const SAME_MOMENT_MS = 1;

/** Calls placed on one budget, and how late they may start there before another pool could start them. */
export interface Placement {
  readonly budgetKey: string;
  readonly calls: readonly Call[];
  /** Unset when no other pool is left to try: the calls wait for this one. */
  readonly startBy?: number;
}

/** A call placed here may start this much after another pool could have started it. */
const PATIENCE_MS = 250;

/**
 * Places each call on one of its job's quota pools not `tried` yet: the pool whose bucket, as this worker
 * last saw it and with the batch's calls already placed there, has the call's tokens soonest; the cheaper
 * pool when two tie (as when both have tokens now). Calls on a pool may start there until another untried
 * pool could start them: past that they are placed again, on the others (`startBy`). A call stays where it
 * is when its record named a prefixed model id (the line pins its pool) or carries the job's cached prefix
 * (the cache is per pool: one pool keeps it warm).
 */
export async function placeOnPools(
  calls: readonly Call[],
  batch: Batch,
  tried: ReadonlySet<string> = new Set(),
): Promise<Placement[]> {
  const catalog = batch.settings.catalog ?? catalogInUse();
  const now = batch.settings.clock.now();
  const groups = new Map<string, UsablePools & { calls: Call[] }>();
  const placed = new Map<string, { calls: Call[]; startBy?: number }>();
  // Calls on one pool may start there as late as the latest of them could have started elsewhere.
  const place = (budgetKey: string, call: Call, startBy?: number) => {
    const placement = placed.get(budgetKey) ?? { calls: [] };
    placement.calls.push(call);
    if (startBy !== undefined) placement.startBy = Math.max(placement.startBy ?? startBy, startBy);
    placed.set(budgetKey, placement);
  };
  for (const call of calls) {
    if (call.pinned || call.prefixTtl !== undefined) {
      place(call.budgetKey, call);
      continue;
    }
    // The job's pools for the model, worked out once for the batch's calls that share them.
    const key = `${call.job.jobId}#${call.invocation.resolved.model.bedrockId}`;
    const group = groups.get(key) ?? (await usablePools(poolsOf(call, catalog), tried, batch));
    groups.set(key, group);
    if (group.pools.length === 0) place(call.budgetKey, call);
    else group.calls.push(call);
  }
  for (const { pools, states, calls: grouped } of groups.values()) {
    if (grouped.length === 0) continue;
    // A call holds at least what Bedrock reserves for it until its answer is in: placed by that.
    const holds = grouped.map((call) => Math.max(call.cost.reserved, call.cost.charge));
    const choices = choosePools(holds, states, now);
    grouped.forEach((call, index) => {
      const chosen = choices[index] ?? 0;
      const pool = pools[chosen];
      if (pool === undefined) return;
      const others = states
        .filter((_, other) => other !== chosen)
        .map((state) => takeEach(state, [holds[index] ?? 0], now).startAts.at(-1) ?? now);
      const startBy = others.length === 0 ? undefined : Math.max(now, Math.min(...others)) + PATIENCE_MS;
      place(poolName(pool), onPool(call, pool, catalog), startBy);
    });
  }
  return [...placed].map(([budgetKey, { calls: onBudget, startBy }]) => ({
    budgetKey,
    calls: onBudget,
    ...(startBy === undefined ? {} : { startBy }),
  }));
}

interface UsablePools {
  readonly pools: readonly QuotaPool[];
  /** Each pool's bucket as this worker last saw it. */
  readonly states: readonly BucketState[];
}

/** Of `pools`, those not tried yet and not left out for having no quota, with their buckets. */
async function usablePools(
  pools: readonly QuotaPool[],
  tried: ReadonlySet<string>,
  batch: Batch,
): Promise<UsablePools & { calls: Call[] }> {
  const untried = pools.filter((pool) => !tried.has(poolName(pool)));
  const seen = await Promise.all(untried.map((pool) => batch.ports.budget.lastSeen(poolName(pool))));
  const usable = untried.flatMap((pool, index) => {
    const state = seen[index];
    return state === undefined ? [] : [{ pool, state }];
  });
  return { pools: usable.map(({ pool }) => pool), states: usable.map(({ state }) => state), calls: [] };
}

/**
 * For calls taking `charges` in turn, the index of the bucket each goes to: the one that has its tokens
 * soonest after the calls placed before it; of those that tie, the first (cheapest) that Bedrock has not
 * throttled within the last minute. A pool another application spends refills in the budget's view while
 * Bedrock's stays empty: preferred on ties, it would take a record back again and again.
 */
export function choosePools(
  charges: readonly number[],
  buckets: readonly BucketState[],
  now: number,
): number[] {
  const taken: number[][] = buckets.map(() => []);
  const throttledLately = buckets.map(
    (bucket) => bucket.throttledAt !== undefined && now - bucket.throttledAt < THROTTLE_MEMORY_MS,
  );
  return charges.map((charge) => {
    const arrivals = buckets.map(
      (bucket, index) => takeEach(bucket, [...(taken[index] ?? []), charge], now).startAts.at(-1) ?? now,
    );
    const soonest = Math.min(...arrivals);
    const tied = arrivals.flatMap((arrival, index) => (arrival <= soonest + SAME_MOMENT_MS ? [index] : []));
    const chosen = tied.find((index) => throttledLately[index] !== true) ?? tied[0] ?? 0;
    taken[chosen]?.push(charge);
    return chosen;
  });
}

/** The pools a call's job allows for its model, cheapest first (the job's preference among equals). */
function poolsOf(call: Call, catalog: Catalog): QuotaPool[] {
  const { settings } = call.job;
  const { pools } = poolsFor(call.invocation.resolved.model, choiceOf(settings), catalog);
  const price = (pool: QuotaPool) => catalog.endpointPriceMultiplier[pool.endpoint];
  return pools
    .map((pool, order) => ({ pool, order }))
    .sort((a, b) => price(a.pool) - price(b.pool) || a.order - b.order)
    .map(({ pool }) => pool);
}

/** The call as made through `pool`: its id and source region, its budget, its price. */
function onPool(call: Call, pool: QuotaPool, catalog: Catalog): Call {
  const { invocation } = call;
  const resolved = {
    ...invocation.resolved,
    endpoint: pool.endpoint,
    region: pool.region,
    geography:
      catalog.geographyFor(invocation.resolved.model, pool.region) ??
      requireRegion(pool.region, catalog).geography,
    modelId: pool.modelId,
  };
  return {
    ...call,
    invocation: { ...invocation, resolved, modelId: pool.modelId },
    budgetKey: poolName(pool),
  };
}
