import { setTimeout as sleep } from 'node:timers/promises';
import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { BatchGetCommand, GetCommand, QueryCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { z } from 'zod';
import {
  dailySpendKey,
  jobKey,
  lineNumberOfRecordKey,
  recordIdKey,
  recordKey,
  spendingDayOf,
} from '../../shared/contract/ledger-table.ts';
import { mapWithLimit } from '../../shared/core/concurrency.ts';
import type { DailySpend, RecordIdClaim, RecordIdClaims, RecordLedger } from '../../shared/core/ledger.ts';
import type {
  CountedEntry,
  CountedRecord,
  JobUpdate,
  RecordCompletion,
  Release,
} from '../../shared/core/model.ts';
import { RETRY_COUNTERS } from '../../shared/core/retries.ts';
import { totalsAddedBy } from '../../shared/output/manifest.ts';
import { RETRY_LAYERS } from '../../shared/retry-layers.ts';
import { DynamoDbRecordLeases, failureCounter } from './dynamodb-record-leases.ts';
import { POOL_RECORDS_PREFIX, RETRY_ATTRIBUTES } from './job-item.ts';
import { TRANSACTION_ITEMS, transactionGroups } from './ledger-transactions.ts';
import { LedgerTableWriter } from './ledger-writes.ts';

/** The largest line number a record key holds (ten digits). */
const LAST_LINE = 9_999_999_999;
/** DynamoDB reads at most this many keys in one BatchGetItem. */
const KEYS_PER_BATCH_GET = 100;
const READ_AGAIN = RETRY_LAYERS.ledgerBatchRead;
const CLAIM_AGAIN = RETRY_LAYERS.ledgerClaimConflict;
/** A chunk's claims go in transactions of up to 100 ids, this many at once. */
const CLAIM_TRANSACTIONS_AT_ONCE = 4;

/** The job counter each record outcome adds to. */
/**
 * The records in the ledger table: one `REC#<line>` item per record that has started or finished (its lease,
 * its attempts and failures per class, done or not) and one `ID#<recordId>` item per claimed id. Finishing
 * records adds them to their jobs' counters and, under a daily cap, their cost to the day's spend in the same
 * transaction.
 */
export class DynamoDbRecordLedger
  extends LedgerTableWriter
  implements RecordLedger, RecordIdClaims, DailySpend
{
  async claimRecordIds(
    jobId: string,
    claims: readonly RecordIdClaim[],
  ): Promise<ReadonlyMap<string, number>> {
    const groups: RecordIdClaim[][] = [];
    for (let start = 0; start < claims.length; start += TRANSACTION_ITEMS)
      groups.push(claims.slice(start, start + TRANSACTION_ITEMS));
    const held = await mapWithLimit(groups, CLAIM_TRANSACTIONS_AT_ONCE, (group) =>
      this.claimTogether(jobId, group),
    );
    return new Map(held.flatMap((holders) => [...holders]));
  }

  /**
   * Claims in one transaction (one request instead of one a record): the ids another line holds are left out
   * and the rest claimed again, so the loop ends within one try per claim and a few conflicts.
   */
  private async claimTogether(jobId: string, claims: readonly RecordIdClaim[]): Promise<Map<string, number>> {
    const holders = new Map<string, number>();
    let pending = claims;
    for (let attempt = 1; pending.length > 0; attempt += 1) {
      try {
        await this.documents.send(
          new TransactWriteCommand({ TransactItems: pending.map((claim) => this.claimItem(jobId, claim)) }),
        );
        return holders;
      } catch (error) {
        if (!(error instanceof TransactionCanceledException)) throw error;
        const reasons = error.CancellationReasons ?? [];
        pending.forEach((claim, index) => {
          const reason = reasons[index];
          if (reason?.Code === 'ConditionalCheckFailed')
            holders.set(claim.recordId, Number(unmarshall(reason.Item ?? {}).lineNumber));
        });
        const refused = pending.filter((claim) => holders.has(claim.recordId));
        if (refused.length === 0) {
          // Another transaction wrote one of these ids at the same moment (the same chunk read twice).
          if (attempt >= CLAIM_AGAIN.attempts) throw error;
          await sleep(Math.random() * CLAIM_AGAIN.baseDelayMs * 2 ** attempt);
        }
        pending = pending.filter((claim) => !holders.has(claim.recordId));
      }
    }
    return holders;
  }

  private claimItem(jobId: string, { recordId, lineNumber }: RecordIdClaim) {
    return {
      Put: {
        TableName: this.tableName,
        Item: { ...recordIdKey(jobId, recordId), lineNumber, expiresAt: this.expiresAt() },
        ConditionExpression: 'attribute_not_exists(pk) OR lineNumber = :line',
        ExpressionAttributeValues: { ':line': lineNumber },
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD' as const,
      },
    };
  }

  async doneRecords(jobId: string, lineNumbers: readonly number[]): Promise<ReadonlySet<number>> {
    const done = new Set<number>();
    // A message delivered twice in one batch names its line twice; BatchGetItem refuses a repeated key.
    const distinct = [...new Set(lineNumbers)];
    for (let start = 0; start < distinct.length; start += KEYS_PER_BATCH_GET) {
      let keys: Array<Record<string, unknown>> = distinct
        .slice(start, start + KEYS_PER_BATCH_GET)
        .map((lineNumber) => recordKey(jobId, lineNumber));
      for (let attempt = 1; keys.length > 0; attempt += 1) {
        const { Responses, UnprocessedKeys } = await this.documents.send(
          new BatchGetCommand({
            RequestItems: {
              [this.tableName]: {
                Keys: keys,
                ConsistentRead: true,
                ProjectionExpression: 'sk, #status',
                ExpressionAttributeNames: { '#status': 'status' },
              },
            },
          }),
        );
        for (const item of Responses?.[this.tableName] ?? [])
          if (item.status === 'done') done.add(lineNumberOfRecordKey(item.sk));
        keys = UnprocessedKeys?.[this.tableName]?.Keys ?? [];
        if (keys.length === 0) break;
        if (attempt >= READ_AGAIN.attempts)
          throw new Error(`DynamoDB left ${keys.length} record items unread ${attempt} times.`);
        // Full jitter: workers refused together do not all come back at the same moment.
        await sleep(Math.random() * READ_AGAIN.baseDelayMs * 2 ** attempt);
      }
    }
    return done;
  }

  private readonly leases = new DynamoDbRecordLeases(this.documents, this.tableName, this.options);
  leaseRecord: RecordLedger['leaseRecord'] = (...call) => this.leases.leaseRecord(...call);

  async releaseRecord(jobId: string, lineNumber: number, owner: string, release: Release): Promise<void> {
    // A wait takes back the attempt the lease counted; a failure counts in its class, as a release, and as
    // unanswered when its call got none. A released attempt stored no result: the next one has none to look for.
    const additions =
      'waited' in release
        ? 'attempts :step'
        : `${failureCounter(release.failed)} :step, releases :step${release.unanswered === true ? ', unanswered :step' : ''}`;
    const step = 'waited' in release ? -1 : 1;
    // Refused when the condition no longer holds: nothing to do then.
    await this.updateIf({
      Key: recordKey(jobId, lineNumber),
      UpdateExpression: `SET #status = :waiting REMOVE resultSet ADD ${additions}`,
      ConditionExpression: '#status = :running AND leaseOwner = :owner',
      ExpressionAttributeNames: { '#status': 'status' },
      ExpressionAttributeValues: {
        ':waiting': 'waiting',
        ':running': 'running',
        ':owner': owner,
        ':step': step,
      },
    });
  }

  async completeRecords(updates: readonly JobUpdate[]): Promise<readonly CountedRecord[]> {
    const counted: CountedRecord[] = [];
    for (const group of transactionGroups(updates)) counted.push(...(await this.completeTogether(group)));
    return counted;
  }

  /** One transaction: each record marked done unless it is, each job's counters raised by what was not. */
  private async completeTogether(updates: readonly JobUpdate[]): Promise<readonly CountedRecord[]> {
    let pending = updates;
    // Each failed try leaves out the records it found done, so the loop ends within one try per record.
    for (;;) {
      const records = pending.flatMap((update) =>
        update.completions.map((completion) => ({ jobId: update.jobId, lineNumber: completion.lineNumber })),
      );
      const items = [
        ...pending.flatMap((update) =>
          update.completions.map((completion) => this.markDone(update.jobId, completion, update.resultSet)),
        ),
        ...pending.map((update) => this.addToJob(update)).filter((item) => item !== undefined),
        ...this.addToDay(pending),
      ];
      if (items.length === 0) return [];
      try {
        await this.documents.send(new TransactWriteCommand({ TransactItems: items }));
        return records;
      } catch (error) {
        if (!(error instanceof TransactionCanceledException)) throw error;
        const reasons = error.CancellationReasons;
        const alreadyDone = new Set(
          records
            .filter((_, index) => reasons?.[index]?.Code === 'ConditionalCheckFailed')
            .map((record) => `${record.jobId}#${record.lineNumber}`),
        );
        if (alreadyDone.size === 0) throw error;
        pending = pending.map((update) => ({
          ...update,
          completions: update.completions.filter(
            (completion) => !alreadyDone.has(`${update.jobId}#${completion.lineNumber}`),
          ),
        }));
      }
    }
  }

  /** The transaction item that marks a record done, with where its result is, unless it is done already. */
  private markDone(jobId: string, completion: RecordCompletion, resultSet: string | undefined) {
    const withSet = resultSet === undefined ? '' : ', resultSet = :set';
    return {
      Update: {
        TableName: this.tableName,
        Key: recordKey(jobId, completion.lineNumber),
        UpdateExpression: `SET #status = :done, outcome = :outcome, expiresAt = :expires${withSet} REMOVE leaseOwner, leaseUntil`,
        ConditionExpression: 'attribute_not_exists(#status) OR #status <> :done',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: {
          ':done': 'done',
          ':outcome': completion.status,
          ':expires': this.expiresAt(),
          ...(resultSet === undefined ? {} : { ':set': resultSet }),
        },
      },
    };
  }

  /**
   * The transaction item that adds the completions' cost to today's spend: none when they cost nothing or the
   * deployment keeps no daily spend.
   */
  private addToDay(updates: readonly JobUpdate[]) {
    if (this.options.countsDailySpend !== true) return [];
    const cost = updates
      .flatMap((update) => update.completions)
      .reduce((sum, completion) => sum + completion.costNanoUsd, 0);
    if (cost === 0) return [];
    return [
      {
        Update: {
          TableName: this.tableName,
          Key: dailySpendKey(spendingDayOf(this.now())),
          UpdateExpression: 'SET expiresAt = :expires ADD costNanoUsd :cost',
          ExpressionAttributeValues: { ':expires': this.expiresAt(), ':cost': cost },
        },
      },
    ];
  }

  async spentOn(day: string): Promise<number> {
    const { Item } = await this.documents.send(
      new GetCommand({ TableName: this.tableName, Key: dailySpendKey(day) }),
    );
    return dailySpendOf(Item);
  }

  async *countedRecords(jobId: string, afterLine: number): AsyncIterable<CountedEntry> {
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.documents.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
          FilterExpression: '#status = :done',
          ProjectionExpression: 'sk, resultSet',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: {
            ':pk': recordKey(jobId, 0).pk,
            ':from': recordKey(jobId, afterLine + 1).sk,
            ':to': recordKey(jobId, LAST_LINE).sk,
            ':done': 'done',
          },
          ConsistentRead: true,
          ...(startKey === undefined ? {} : { ExclusiveStartKey: startKey }),
        }),
      );
      for (const item of page.Items ?? []) {
        yield {
          lineNumber: lineNumberOfRecordKey(item.sk),
          resultSet: typeof item.resultSet === 'string' ? item.resultSet : undefined,
        };
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey !== undefined);
  }

  /** The transaction item that adds a batch's records and retries to their job, when there is anything to add. */
  private addToJob(update: JobUpdate) {
    const sums = new Map<string, number>();
    const add = (attribute: string, value: number) => {
      if (value !== 0) sums.set(attribute, (sums.get(attribute) ?? 0) + value);
    };
    const families = [...new Set(update.completions.map((completion) => completion.family))].filter(
      (family) => family !== undefined,
    );
    const pools = [...new Set(update.completions.map((completion) => completion.pool))].filter(
      (pool) => pool !== undefined,
    );
    for (const completion of update.completions) {
      add('doneRecords', 1);
      for (const [counter, value] of Object.entries(totalsAddedBy(completion))) add(counter, value);
      if (completion.family !== undefined) add(`familyCounts.#f${families.indexOf(completion.family)}`, 1);
      if (completion.pool !== undefined) add(`#p${pools.indexOf(completion.pool)}`, 1);
    }
    for (const name of RETRY_COUNTERS) add(RETRY_ATTRIBUTES[name], update.retries[name]);
    if (sums.size === 0) return undefined;
    const additions = [...sums.entries()];
    return {
      Update: {
        TableName: this.tableName,
        Key: jobKey(update.jobId),
        UpdateExpression: `SET updatedAt = :now ADD ${additions.map(([attribute], index) => `${attribute} :v${index}`).join(', ')}`,
        ...(families.length + pools.length > 0
          ? {
              ExpressionAttributeNames: {
                ...Object.fromEntries(families.map((family, index) => [`#f${index}`, family])),
                ...Object.fromEntries(
                  pools.map((pool, index) => [`#p${index}`, `${POOL_RECORDS_PREFIX}${pool}`]),
                ),
              },
            }
          : {}),
        ExpressionAttributeValues: {
          ':now': this.isoNow(),
          ...Object.fromEntries(additions.map(([, value], index) => [`:v${index}`, value])),
        },
      },
    };
  }
}

/** A day's spend item as stored; a day with no item has spent nothing. */
const dailySpendItem = z.object({ costNanoUsd: z.number().nonnegative() }).optional();

function dailySpendOf(item: unknown): number {
  return dailySpendItem.parse(item)?.costNanoUsd ?? 0;
}
