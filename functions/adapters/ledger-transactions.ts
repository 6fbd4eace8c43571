import type { JobUpdate } from '../../shared/core/model.ts';
import { NO_RETRIES } from '../../shared/core/retries.ts';

/** DynamoDB's limit on the items of one transaction. */
export const TRANSACTION_ITEMS = 100;
/** The items of one group: each transaction also adds to the day's spend. */
const GROUP_ITEMS = TRANSACTION_ITEMS - 1;

/**
 * Splits updates into groups that fit one transaction each: one item per record, one per job, and the day's
 * spend.
 */
export function transactionGroups(updates: readonly JobUpdate[]): JobUpdate[][] {
  const groups: JobUpdate[][] = [];
  let group: JobUpdate[] = [];
  let items = 0;
  for (const update of updates) {
    for (let start = 0; start === 0 || start < update.completions.length; start += GROUP_ITEMS - 1) {
      const piece = {
        ...update,
        completions: update.completions.slice(start, start + GROUP_ITEMS - 1),
        retries: start === 0 ? update.retries : NO_RETRIES,
      };
      if (items + piece.completions.length + 1 > GROUP_ITEMS) {
        groups.push(group);
        group = [];
        items = 0;
      }
      group.push(piece);
      items += piece.completions.length + 1;
    }
  }
  if (group.length > 0) groups.push(group);
  return groups;
}
