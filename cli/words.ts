import { DEFAULT_SERVICE_TIER, serviceTiers } from '../shared/contract/service-tiers.ts';
import type { TierSummary } from '../shared/output/manifest.ts';

/** Numbers and amounts as the CLI writes them: separators, plurals, signs and durations a person reads at once. */

/** `1,234,567` */
export function number(value: number): string {
  return value.toLocaleString('en-US');
}

/** `1 record`, `1,200 records` */
export function count(value: number, noun: string, plural = `${noun}s`): string {
  return `${number(value)} ${value === 1 ? noun : plural}`;
}

/** `$0.0299`, and `-$0.0079` below zero (never `$-0.0079`). */
export function usd(amount: number, digits = 4): string {
  const text = `$${Math.abs(amount).toFixed(digits)}`;
  return amount < 0 && Number(text.slice(1)) !== 0 ? `-${text}` : text;
}

/** `7.9 s`, `45 s`, `12 min`, `3.5 h`, `2.1 d`: to the unit that reads at a glance. */
export function duration(seconds: number): string {
  if (seconds === 0) return '0 s';
  if (seconds < 10) return `${seconds.toFixed(1)} s`;
  if (seconds < 120) return `${Math.round(seconds)} s`;
  if (seconds < 7_200) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172_800) return `${(seconds / 3_600).toFixed(1)} h`;
  return `${(seconds / 86_400).toFixed(1)} d`;
}

/**
 * `asked flex; served default 3 records ($0.000150), flex 3 records ($0.000075); 3 records ran on default:
 * Bedrock does not take flex for their models`, when a tier other than default was asked for or served.
 */
export function tierSentence(tiers: TierSummary | undefined): string | undefined {
  if (tiers === undefined) return undefined;
  const served = serviceTiers.filter((tier) => tiers.servedRecords[tier] > 0);
  if (tiers.requested === DEFAULT_SERVICE_TIER && served.every((tier) => tier === DEFAULT_SERVICE_TIER))
    return undefined;
  const perTier = served.map(
    (tier) => `${tier} ${count(tiers.servedRecords[tier], 'record')} (${usd(tiers.costUsd[tier], 6)})`,
  );
  const downgraded =
    tiers.downgradedRecords === 0
      ? ''
      : `; ${count(tiers.downgradedRecords, 'record')} ran on default: Bedrock does not take ${tiers.requested} for ${tiers.downgradedRecords === 1 ? 'its model' : 'their models'}`;
  return `asked ${tiers.requested}; served ${perTier.join(', ') || 'none'}${downgraded}`;
}
