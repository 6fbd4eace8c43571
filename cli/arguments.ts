import { catalogInUse } from '../shared/catalog/catalog.ts';
import { UsageError } from './errors.ts';

/** A whole number of at least 1, written in decimal digits (not 0x10, 1e3 or 2.5). */
export function positiveInteger(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  if (!/^\d+$/.test(text.trim()) || Number(text) < 1)
    throw new UsageError(`--${name} must be a whole number of at least 1, not "${text}".`);
  return Number(text);
}

/** A number of 0 or more, written as one (not empty, not "abc"). */
export function nonNegativeNumber(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || value < 0)
    throw new UsageError(`--${name} must be a number of 0 or more, not "${text}".`);
  return value;
}

/** An amount of USD above 0, written as a number; undefined when not given. */
export function usdAmount(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || value <= 0)
    throw new UsageError(`--${name} must be an amount of USD above 0, such as 25 or 0.5, not "${text}".`);
  return value;
}

/** A region that serves Claude on Bedrock, by the catalog. */
export function knownRegion(text: string): string {
  const region = text.trim();
  if (catalogInUse().geographyOfRegion(region) === undefined) {
    throw new UsageError(
      `--region ${text === '' ? '""' : text} does not serve Claude on Bedrock.`,
      `Use one of ${catalogInUse().knownRegions.join(', ')}.`,
    );
  }
  return region;
}
