import { spendingDayOf } from '../contract/ledger-table.ts';
import type { Clock } from '../core/clock.ts';
import type { DailySpend, Jobs } from '../core/ledger.ts';
import type { JobRecord } from '../core/model.ts';
import { nanoUsdToUsd } from '../cost/cost.ts';

/**
 * The spending caps as one batch sees them: a job's own (`max-cost`, against the job's counted cost as the
 * batch read it) and the deployment's daily one (against the day's counted spend, read once a batch). A job
 * at either is canceled once, with the reason, and its records not yet run end `canceled`; calls already
 * under way finish, so a cap is exceeded by at most what they cost.
 */
export class SpendingCaps {
  private daySpent: Promise<number> | undefined;
  private readonly canceling = new Map<string, Promise<boolean>>();

  constructor(
    private readonly ledger: Pick<Jobs, 'cancelJob'> & DailySpend,
    private readonly settings: { readonly maxDailyCostUsd?: number | undefined; readonly clock: Clock },
  ) {}

  /** Whether the job must stop for a cap: canceled with the reason the first time a record of it asks. */
  async stop(job: JobRecord): Promise<boolean> {
    const known = this.canceling.get(job.jobId);
    if (known !== undefined) return known;
    const reason = await this.reasonToStop(job);
    if (reason === undefined) return false;
    // The batch's records of one job share its record: the job is canceled once for them all.
    const canceling =
      this.canceling.get(job.jobId) ?? this.ledger.cancelJob(job.jobId, reason).then(() => true);
    this.canceling.set(job.jobId, canceling);
    return canceling;
  }

  /** The caps that hold the job, named: a record whose cost cannot be known cannot be held to them. */
  capsOn(job: JobRecord): string | undefined {
    const caps = [
      ...(job.settings.maxCostUsd === undefined ? [] : [`its spending cap of $${job.settings.maxCostUsd}`]),
      ...(this.settings.maxDailyCostUsd === undefined
        ? []
        : [`the deployment's daily spending cap of $${this.settings.maxDailyCostUsd}`]),
    ];
    return caps.length === 0 ? undefined : caps.join(' and ');
  }

  private async reasonToStop(job: JobRecord): Promise<string | undefined> {
    const cap = job.settings.maxCostUsd;
    const spent = nanoUsdToUsd(job.totals.costNanoUsd);
    if (cap !== undefined && spent >= cap) return `its spending cap of $${cap} was reached ($${spent} spent)`;
    const dailyCap = this.settings.maxDailyCostUsd;
    if (dailyCap === undefined) return undefined;
    const day = spendingDayOf(this.settings.clock.now());
    this.daySpent ??= this.ledger.spentOn(day);
    const daySpent = nanoUsdToUsd(await this.daySpent);
    return daySpent >= dailyCap
      ? `the deployment's daily spending cap of $${dailyCap} was reached ($${daySpent} spent on ${day}, UTC)`
      : undefined;
  }
}
