import type { BucketState } from '../../shared/budget/bucket.ts';
import type { BudgetReservation } from '../../shared/core/model.ts';
import type { TokenBudget } from '../../shared/core/ports.ts';

/** A shared budget that tallies what it reserved and what was settled, for benchmarks and the local runner. */
export class MeteredBudget implements TokenBudget {
  reserves = 0;
  settles = 0;
  reservedTokens = 0;
  chargedTokens = 0;

  constructor(private readonly budget: TokenBudget) {}

  async reserve(key: string, tokens: readonly number[], latestStart: number): Promise<BudgetReservation> {
    this.reserves += 1;
    const reservation = await this.budget.reserve(key, tokens, latestStart);
    this.reservedTokens += reservation.tokens;
    return reservation;
  }

  async settle(reservation: BudgetReservation, chargedTokens: number): Promise<void> {
    this.settles += 1;
    this.chargedTokens += chargedTokens;
    await this.budget.settle(reservation, chargedTokens);
  }

  recordThrottle(key: string): Promise<void> {
    return this.budget.recordThrottle(key);
  }

  pauseUntil(key: string, until: number): Promise<void> {
    return this.budget.pauseUntil(key, until);
  }

  spendableFrom(key: string): Promise<number> {
    return this.budget.spendableFrom(key);
  }

  lastSeen(key: string): Promise<BucketState | undefined> {
    return this.budget.lastSeen(key);
  }
}
