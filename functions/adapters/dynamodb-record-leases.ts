import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { recordKey } from '../../shared/contract/ledger-table.ts';
import type { RecordLedger } from '../../shared/core/ledger.ts';
import type { LeaseResult } from '../../shared/core/model.ts';
import type { RetryClass } from '../../shared/failures.ts';
import { TRANSACTION_ITEMS } from './ledger-transactions.ts';
import { isConditionFailure, itemOfConditionFailure, LedgerTableWriter } from './ledger-writes.ts';

/** One lease asked for: the record, who takes it for how long, and where its attempt stores its result. */
interface LeaseAsked {
  readonly jobId: string;
  readonly lineNumber: number;
  readonly owner: string;
  readonly leaseSeconds: number;
  readonly resultSet: string;
}

interface Asking {
  readonly asked: LeaseAsked;
  resolve(result: LeaseResult): void;
  reject(error: unknown): void;
}

/** The classes that retry, each with its own failure counter on the record item. */
export const RETRY_CLASSES: readonly RetryClass[] = ['retryable', 'limited', 'later'];

export function failureCounter(retryClass: RetryClass): string {
  return `${retryClass}Failures`;
}

/** The lease of a record no attempt has touched: its first attempt, with nothing before it. */
const FIRST_LEASE: LeaseResult = { kind: 'acquired', attempt: 1, failures: {}, releases: 0, unanswered: 0 };

const TAKE_LEASE =
  'SET #status = :running, leaseOwner = :owner, leaseUntil = :until, resultSet = :set ADD attempts :one';

/**
 * Record leases. The leases asked for in one turn of the event loop (the calls a batch starts at once) are
 * taken together, in transactions of records no attempt has touched: one request instead of one a record.
 * Every other lease, and each lease of a transaction DynamoDB cancels (a record touched after all), is taken
 * on its own, reading the item as it was: its attempts, failures and earlier result set.
 */
export class DynamoDbRecordLeases extends LedgerTableWriter {
  private asking: Asking[] = [];

  leaseRecord: RecordLedger['leaseRecord'] = (jobId, lineNumber, owner, leaseSeconds, resultSet) =>
    new Promise((resolve, reject) => {
      this.asking.push({ asked: { jobId, lineNumber, owner, leaseSeconds, resultSet }, resolve, reject });
      if (this.asking.length === 1) setImmediate(() => this.takeAsked());
    });

  private takeAsked(): void {
    const asking = this.asking;
    this.asking = [];
    // A message delivered twice names its record twice: a transaction takes each item once.
    const seen = new Set<string>();
    const together: Asking[] = [];
    for (const one of asking) {
      const key = `${one.asked.jobId}#${one.asked.lineNumber}`;
      if (seen.has(key)) this.takeAlone(one);
      else together.push(one);
      seen.add(key);
    }
    const [only] = together;
    if (together.length === 1 && only !== undefined) this.takeAlone(only);
    else
      for (let start = 0; start < together.length; start += TRANSACTION_ITEMS)
        void this.takeTogether(together.slice(start, start + TRANSACTION_ITEMS));
  }

  private async takeTogether(group: readonly Asking[]): Promise<void> {
    try {
      await this.documents.send(
        new TransactWriteCommand({
          TransactItems: group.map(({ asked }) => ({
            Update: {
              TableName: this.tableName,
              Key: recordKey(asked.jobId, asked.lineNumber),
              UpdateExpression: TAKE_LEASE,
              ConditionExpression: 'attribute_not_exists(pk)',
              ExpressionAttributeNames: { '#status': 'status' },
              ExpressionAttributeValues: leaseValues(asked, this.now()),
            },
          })),
        }),
      );
      for (const one of group) one.resolve(FIRST_LEASE);
    } catch (error) {
      // A record another attempt touched (or another transaction met): each lease on its own.
      if (error instanceof TransactionCanceledException) for (const one of group) this.takeAlone(one);
      else for (const one of group) one.reject(error);
    }
  }

  private takeAlone({ asked, resolve, reject }: Asking): void {
    this.leaseAlone(asked).then(resolve, reject);
  }

  private async leaseAlone(asked: LeaseAsked): Promise<LeaseResult> {
    const now = this.now();
    try {
      // The item as it was: its attempts and failures so far, and where an attempt whose lease ran out
      // meant to store its result.
      const { Attributes } = await this.documents.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: recordKey(asked.jobId, asked.lineNumber),
          UpdateExpression: TAKE_LEASE,
          ConditionExpression:
            'attribute_not_exists(#status) OR #status = :waiting OR (#status = :running AND leaseUntil < :now)',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ...leaseValues(asked, now), ':waiting': 'waiting', ':now': now },
          ReturnValues: 'ALL_OLD',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      const failures = Object.fromEntries(
        RETRY_CLASSES.filter((retryClass) => Attributes?.[failureCounter(retryClass)] !== undefined).map(
          (retryClass) => [retryClass, Number(Attributes?.[failureCounter(retryClass)])],
        ),
      );
      const earlierSet = Attributes?.resultSet;
      return {
        kind: 'acquired',
        attempt: Number(Attributes?.attempts ?? 0) + 1,
        failures,
        releases: Number(Attributes?.releases ?? 0),
        unanswered: Number(Attributes?.unanswered ?? 0),
        ...(typeof earlierSet === 'string' ? { earlierSet } : {}),
      };
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      return itemOfConditionFailure(error).status === 'done' ? { kind: 'done' } : { kind: 'held' };
    }
  }
}

function leaseValues(asked: LeaseAsked, now: number) {
  return {
    ':running': 'running',
    ':owner': asked.owner,
    ':until': now + asked.leaseSeconds * 1000,
    ':one': 1,
    ':set': asked.resultSet,
  };
}
