import { z } from 'zod';
import type { Catalog } from '../catalog/catalog.ts';
import type { Lane } from '../contract/lanes.ts';
import { DEFAULT_LANE } from '../contract/lanes.ts';
import { catalogModelOf } from '../models/resolve-model.ts';

const DURATION = /^(\d+(?:\.\d+)?)\s*(s|m|h|d)$/i;
const HOURS_PER_UNIT: Readonly<Record<string, number>> = { s: 1 / 3_600, m: 1 / 60, h: 1, d: 24 };

/** `90s`, `30m`, `6h`, `2d`: a deadline in hours; undefined when the text is not such a duration. */
export function parseDeadlineHours(text: string): number | undefined {
  const match = DURATION.exec(text.trim());
  if (match === null) return undefined;
  const hours = Number(match[1]) * (HOURS_PER_UNIT[(match[2] ?? '').toLowerCase()] ?? Number.NaN);
  return Number.isFinite(hours) && hours > 0 ? hours : undefined;
}

/** A deadline as a file option or setting gives it (`6h`), as hours. */
export const deadlineHoursSchema = z
  .string()
  .trim()
  .transform((text, ctx) => {
    const hours = parseDeadlineHours(text);
    if (hours === undefined)
      ctx.addIssue({ code: 'custom', message: 'must be a duration such as 30m, 6h or 2d' });
    return hours ?? 0;
  });

/**
 * The lane a job starts in: on-demand sends records to the queue as it reads them; batch stages them for
 * batch jobs. Auto stages them unless its deadline is too short for batch inference. A model batch inference
 * does not take runs on demand whatever the lane.
 */
export function startingLane(
  settings: {
    readonly model: string;
    readonly lane?: Lane | undefined;
    readonly deadlineHours?: number | undefined;
  },
  catalog: Catalog,
): 'on-demand' | 'staged' {
  const lane = settings.lane ?? DEFAULT_LANE;
  if (lane === 'on-demand' || !takesBatchInference(settings.model, catalog)) return 'on-demand';
  if (lane === 'batch') return 'staged';
  const deadline = settings.deadlineHours;
  return deadline !== undefined && deadline < catalog.batch.autoMinimumDeadlineHours ? 'on-demand' : 'staged';
}

function takesBatchInference(model: string, catalog: Catalog): boolean {
  try {
    return catalogModelOf(model, catalog).batchInference;
  } catch {
    // A model the catalog cannot name fails the job elsewhere, with its reason.
    return false;
  }
}

/**
 * Where staged records go once the file is read: batch jobs, or the on-demand queue when there are fewer than
 * a batch job may hold (Bedrock would refuse the job: there is no point in paying for the attempt).
 */
export function stagedRecordsLane(stagedRecords: number, minimumRecords: number): 'batch' | 'on-demand' {
  return stagedRecords >= minimumRecords ? 'batch' : 'on-demand';
}
