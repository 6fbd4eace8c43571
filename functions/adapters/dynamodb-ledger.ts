import { ConditionalCheckFailedException, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import {
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  TransactWriteCommand,
  UpdateCommand,
  type UpdateCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { RetryClass } from '../../shared/failures.ts';
import { NO_RETRIES } from '../../shared/pipeline/job.ts';
import type {
  Announcement,
  CountedRecord,
  FinalizeCheckpoint,
  JobRecord,
  JobSettings,
  JobStatus,
  JobUpdate,
  LeaseResult,
  ObjectLocation,
  ReadingLease,
  RecordCompletion,
  Release,
} from '../../shared/pipeline/model.ts';
import type { Ledger } from '../../shared/pipeline/ports.ts';
import { jobIdOfKey, jobKey, LEDGER_TABLE, recordIdKey, recordKey } from './ledger-table.ts';

const ACTIVE_JOBS = LEDGER_TABLE.activeJobsIndex;

/** The job counter each record outcome adds to. */
const STATUS_COUNTERS: Readonly<Record<RecordCompletion['status'], string>> = {
  succeeded: 'successRecordCount',
  errored: 'errorRecordCount',
  canceled: 'canceledRecordCount',
  expired: 'canceledRecordCount',
};

/**
 * The job ledger in one DynamoDB table (pk, sk): the job item `JOB#<id>`/`JOB` with its counters, one
 * `ID#<recordId>` item per claimed id, and one `REC#<line>` item per record that has started or finished.
 * Unfinished jobs also carry `activeFlag`, the key of the sparse active-jobs index (keys only).
 */
export class DynamoDbLedger implements Ledger {
  constructor(
    private readonly documents: DynamoDBDocumentClient,
    private readonly tableName: string,
    private readonly now: () => number = Date.now,
    /** Finished jobs, finished records and claimed ids expire (DynamoDB TTL on `expiresAt`) this many days later. */
    private readonly retentionDays = 30,
  ) {}

  async createJob(job: JobRecord): Promise<boolean> {
    const { totals, source, retries, announcement, ...rest } = job;
    try {
      await this.documents.send(
        new PutCommand({
          TableName: this.tableName,
          Item: {
            ...jobKey(job.jobId),
            ...withoutUndefined(rest),
            bucket: source.bucket,
            key: source.key,
            ...(source.versionId === undefined ? {} : { versionId: source.versionId }),
            ...(source.etag === undefined ? {} : { etag: source.etag }),
            ...totals,
            retriedCount: retries.retried,
            bedrockThrottleCount: retries.bedrockThrottles,
            budgetWaitCount: retries.budgetWaits,
            ...(announcement === undefined ? {} : { announcement: JSON.stringify(announcement) }),
            // A job stays on the sweeper's index until it has finished and its event is published.
            ...(job.status === 'failed' && announcement === undefined
              ? {}
              : { activeFlag: ACTIVE_JOBS.value }),
          },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  async getJob(jobId: string): Promise<JobRecord | undefined> {
    const { Item } = await this.documents.send(
      new GetCommand({ TableName: this.tableName, Key: jobKey(jobId), ConsistentRead: true }),
    );
    return Item === undefined ? undefined : jobOf(Item);
  }

  async claimRecordId(jobId: string, recordId: string, lineNumber: number): Promise<number | undefined> {
    try {
      await this.documents.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { ...recordIdKey(jobId, recordId), lineNumber, expiresAt: this.expiresAt() },
          ConditionExpression: 'attribute_not_exists(pk) OR lineNumber = :line',
          ExpressionAttributeValues: { ':line': lineNumber },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      return undefined;
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      return Number(itemOfConditionFailure(error).lineNumber);
    }
  }

  async leaseReading(jobId: string, lease: ReadingLease): Promise<JobRecord | undefined> {
    const now = this.now();
    try {
      const { Attributes } = await this.documents.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: jobKey(jobId),
          UpdateExpression: 'SET readerId = :owner, readerUntil = :until',
          ConditionExpression:
            '#status = :enqueuing AND (attribute_not_exists(readerUntil) OR readerUntil < :now OR readerId = :owner)',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: {
            ':enqueuing': 'enqueuing',
            ':owner': lease.owner,
            ':until': now + lease.leaseSeconds * 1000,
            ':now': now,
          },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return jobOf(Attributes ?? {});
    } catch (error) {
      if (isConditionFailure(error)) return undefined;
      throw error;
    }
  }

  async releaseReading(jobId: string, owner: string): Promise<void> {
    // Refused when the condition no longer holds: nothing to do then.
    await this.updateIf({
      Key: jobKey(jobId),
      UpdateExpression: 'REMOVE readerId, readerUntil',
      ConditionExpression: 'readerId = :owner',
      ExpressionAttributeValues: { ':owner': owner },
    });
  }

  async saveReadProgress(
    jobId: string,
    progress: { readOffset: number; readLine: number; recordsRead: number },
    lease: ReadingLease,
  ): Promise<boolean> {
    return this.updateIf({
      Key: jobKey(jobId),
      UpdateExpression:
        'SET readOffset = :offset, readLine = :line, recordsRead = :read, readerUntil = :until, updatedAt = :now',
      ConditionExpression: 'readerId = :owner',
      ExpressionAttributeValues: {
        ':offset': progress.readOffset,
        ':line': progress.readLine,
        ':read': progress.recordsRead,
        ':owner': lease.owner,
        ':until': this.now() + lease.leaseSeconds * 1000,
        ':now': this.isoNow(),
      },
    });
  }

  async saveDecompressed(jobId: string, location: ObjectLocation, lease: ReadingLease): Promise<boolean> {
    return this.updateIf({
      Key: jobKey(jobId),
      UpdateExpression: 'SET decompressed = :location, updatedAt = :now',
      ConditionExpression: 'readerId = :owner',
      ExpressionAttributeValues: {
        ':location': JSON.stringify(location),
        ':owner': lease.owner,
        ':now': this.isoNow(),
      },
    });
  }

  async failReading(
    jobId: string,
    reason: string,
    finishedAt: string,
    announcement: Announcement,
  ): Promise<boolean> {
    return this.updateIf({
      Key: jobKey(jobId),
      UpdateExpression:
        'SET #status = :failed, failureReason = :reason, finishedAt = :finished, cancelRequested = :yes, announcement = :announcement, updatedAt = :now, expiresAt = :expires REMOVE readerId, readerUntil',
      ConditionExpression: '#status = :enqueuing',
      ExpressionAttributeNames: { '#status': 'status' },
      ExpressionAttributeValues: {
        ':failed': 'failed',
        ':reason': reason,
        ':finished': finishedAt,
        ':yes': true,
        ':announcement': JSON.stringify(announcement),
        ':enqueuing': 'enqueuing',
        ':now': this.isoNow(),
        ':expires': this.expiresAt(),
      },
    });
  }

  async setTotal(jobId: string, totalRecords: number): Promise<JobRecord> {
    const { Attributes } = await this.documents.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: jobKey(jobId),
        UpdateExpression: 'SET totalRecords = :total, totalRecordCount = :total, updatedAt = :now',
        ExpressionAttributeValues: { ':total': totalRecords, ':now': this.isoNow() },
        ReturnValues: 'ALL_NEW',
      }),
    );
    // Only an enqueuing job moves on to running (a cancelled or failed one keeps its status).
    // Refused when the condition no longer holds: nothing to do then.
    await this.updateIf({
      Key: jobKey(jobId),
      UpdateExpression: 'SET #status = :running REMOVE readerId, readerUntil',
      ConditionExpression: '#status = :enqueuing',
      ExpressionAttributeNames: { '#status': 'status' },
      ExpressionAttributeValues: { ':running': 'running', ':enqueuing': 'enqueuing' },
    });
    const job = jobOf(Attributes ?? {});
    return { ...job, status: job.status === 'enqueuing' ? 'running' : job.status };
  }

  async isRecordDone(jobId: string, lineNumber: number): Promise<boolean> {
    const { Item } = await this.documents.send(
      new GetCommand({ TableName: this.tableName, Key: recordKey(jobId, lineNumber), ConsistentRead: true }),
    );
    return Item?.status === 'done';
  }

  async leaseRecord(
    jobId: string,
    lineNumber: number,
    owner: string,
    leaseSeconds: number,
  ): Promise<LeaseResult> {
    const now = this.now();
    try {
      const { Attributes } = await this.documents.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: recordKey(jobId, lineNumber),
          UpdateExpression:
            'SET #status = :running, leaseOwner = :owner, leaseUntil = :until ADD attempts :one',
          ConditionExpression:
            'attribute_not_exists(#status) OR #status = :waiting OR (#status = :running AND leaseUntil < :now)',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: {
            ':running': 'running',
            ':waiting': 'waiting',
            ':owner': owner,
            ':until': now + leaseSeconds * 1000,
            ':now': now,
            ':one': 1,
          },
          ReturnValues: 'ALL_NEW',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      const failures = Object.fromEntries(
        RETRY_CLASSES.filter((retryClass) => Attributes?.[failureCounter(retryClass)] !== undefined).map(
          (retryClass) => [retryClass, Number(Attributes?.[failureCounter(retryClass)])],
        ),
      );
      return { kind: 'acquired', attempt: Number(Attributes?.attempts ?? 1), failures };
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      return itemOfConditionFailure(error).status === 'done' ? { kind: 'done' } : { kind: 'held' };
    }
  }

  async releaseRecord(jobId: string, lineNumber: number, owner: string, release: Release): Promise<void> {
    // A wait takes back the attempt the lease counted; a failure counts in its class.
    const [counter, step] = 'waited' in release ? ['attempts', -1] : [failureCounter(release.failed), 1];
    // Refused when the condition no longer holds: nothing to do then.
    await this.updateIf({
      Key: recordKey(jobId, lineNumber),
      UpdateExpression: `SET #status = :waiting ADD ${counter} :step`,
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
          update.completions.map((completion) => this.markDone(update.jobId, completion)),
        ),
        ...pending.map((update) => this.addToJob(update)).filter((item) => item !== undefined),
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

  /** The transaction item that marks a record done, unless it is done already. */
  private markDone(jobId: string, completion: RecordCompletion) {
    return {
      Update: {
        TableName: this.tableName,
        Key: recordKey(jobId, completion.lineNumber),
        UpdateExpression:
          'SET #status = :done, outcome = :outcome, expiresAt = :expires REMOVE leaseOwner, leaseUntil',
        ConditionExpression: 'attribute_not_exists(#status) OR #status <> :done',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: {
          ':done': 'done',
          ':outcome': completion.status,
          ':expires': this.expiresAt(),
        },
      },
    };
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
    for (const completion of update.completions) {
      add('doneRecords', 1);
      add(STATUS_COUNTERS[completion.status], 1);
      add('inputTokenCount', completion.inputTokens);
      add('outputTokenCount', completion.outputTokens);
      add('cacheCreationInputTokenCount', completion.cacheCreationInputTokens);
      add('cacheReadInputTokenCount', completion.cacheReadInputTokens);
      add('costNanoUsd', completion.costNanoUsd);
      if (completion.family !== undefined) add(`familyCounts.#f${families.indexOf(completion.family)}`, 1);
    }
    add('retriedCount', update.retries.retried);
    add('bedrockThrottleCount', update.retries.bedrockThrottles);
    add('budgetWaitCount', update.retries.budgetWaits);
    if (sums.size === 0) return undefined;
    const additions = [...sums.entries()];
    return {
      Update: {
        TableName: this.tableName,
        Key: jobKey(update.jobId),
        UpdateExpression: `SET updatedAt = :now ADD ${additions.map(([attribute], index) => `${attribute} :v${index}`).join(', ')}`,
        ...(families.length > 0
          ? {
              ExpressionAttributeNames: Object.fromEntries(
                families.map((family, index) => [`#f${index}`, family]),
              ),
            }
          : {}),
        ExpressionAttributeValues: {
          ':now': this.isoNow(),
          ...Object.fromEntries(additions.map(([, value], index) => [`:v${index}`, value])),
        },
      },
    };
  }

  async saveFinalizeCheckpoint(jobId: string, checkpoint: FinalizeCheckpoint): Promise<void> {
    await this.documents.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: jobKey(jobId),
        UpdateExpression: 'SET finalizeCheckpoint = :checkpoint, updatedAt = :now',
        ConditionExpression: '#status = :finalizing',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: {
          ':checkpoint': JSON.stringify(checkpoint),
          ':finalizing': 'finalizing',
          ':now': this.isoNow(),
        },
      }),
    );
  }

  async claimFinalization(jobId: string): Promise<boolean> {
    return this.updateIf({
      Key: jobKey(jobId),
      UpdateExpression: 'SET #status = :finalizing, updatedAt = :now',
      ConditionExpression: '#status = :running AND doneRecords >= totalRecords',
      ExpressionAttributeNames: { '#status': 'status' },
      ExpressionAttributeValues: {
        ':finalizing': 'finalizing',
        ':running': 'running',
        ':now': this.isoNow(),
      },
    });
  }

  async finishJob(
    jobId: string,
    status: 'completed' | 'cancelled',
    finishedAt: string,
    announcement: Announcement,
  ): Promise<boolean> {
    return this.updateIf({
      Key: jobKey(jobId),
      UpdateExpression:
        'SET #status = :status, finishedAt = :finished, announcement = :announcement, updatedAt = :now, expiresAt = :expires REMOVE finalizeCheckpoint',
      ConditionExpression: '#status = :finalizing',
      ExpressionAttributeNames: { '#status': 'status' },
      ExpressionAttributeValues: {
        ':status': status,
        ':finished': finishedAt,
        ':announcement': JSON.stringify(announcement),
        ':finalizing': 'finalizing',
        ':now': this.isoNow(),
        ':expires': this.expiresAt(),
      },
    });
  }

  async markAnnounced(jobId: string): Promise<void> {
    await this.documents.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: jobKey(jobId),
        UpdateExpression: 'SET updatedAt = :now REMOVE announcement, activeFlag',
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeValues: { ':now': this.isoNow() },
      }),
    );
  }

  async cancelJob(jobId: string): Promise<boolean> {
    return this.updateIf({
      Key: jobKey(jobId),
      UpdateExpression: 'SET cancelRequested = :yes, updatedAt = :now',
      ConditionExpression: '#status IN (:enqueuing, :running)',
      ExpressionAttributeNames: { '#status': 'status' },
      ExpressionAttributeValues: {
        ':yes': true,
        ':now': this.isoNow(),
        ':enqueuing': 'enqueuing',
        ':running': 'running',
      },
    });
  }

  async *listActiveJobs(): AsyncIterable<JobRecord> {
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.documents.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: ACTIVE_JOBS.name,
          KeyConditionExpression: `${ACTIVE_JOBS.partitionKey} = :active`,
          ExpressionAttributeValues: { ':active': ACTIVE_JOBS.value },
          ExclusiveStartKey: startKey,
        }),
      );
      for (const key of page.Items ?? []) {
        const job = await this.getJob(jobIdOfKey(key.pk));
        if (job !== undefined) yield job;
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey !== undefined);
  }

  /** An update its condition may refuse: true when it was made. */
  private async updateIf(input: Omit<UpdateCommandInput, 'TableName'>): Promise<boolean> {
    try {
      await this.documents.send(new UpdateCommand({ TableName: this.tableName, ...input }));
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  /** When an item written now may go: DynamoDB TTL removes it `retentionDays` later. */
  private expiresAt(): number {
    return Math.floor(this.now() / 1000) + this.retentionDays * 86_400;
  }

  private isoNow(): string {
    return new Date(this.now()).toISOString();
  }
}

/** The classes that retry, each with its own failure counter. */
const RETRY_CLASSES: readonly RetryClass[] = ['retryable', 'limited', 'later'];

/** The record item's counter of failures in one retry class. */
function failureCounter(retryClass: RetryClass): string {
  return `${retryClass}Failures`;
}

function jobOf(item: Record<string, unknown>): JobRecord {
  const number = (field: string) => Number(item[field] ?? 0);
  const text = (field: string) => (item[field] === undefined ? undefined : String(item[field]));
  return {
    jobId: String(item.jobId),
    status: item.status as JobStatus,
    source: {
      bucket: String(item.bucket),
      key: String(item.key),
      versionId: text('versionId'),
      etag: text('etag'),
    },
    settings: item.settings as JobSettings,
    createdAt: String(item.createdAt),
    updatedAt: String(item.updatedAt),
    readOffset: number('readOffset'),
    readLine: number('readLine'),
    recordsRead: number('recordsRead'),
    totalRecords: item.totalRecords === undefined ? undefined : number('totalRecords'),
    doneRecords: number('doneRecords'),
    totals: {
      totalRecordCount: number('totalRecordCount'),
      successRecordCount: number('successRecordCount'),
      errorRecordCount: number('errorRecordCount'),
      canceledRecordCount: number('canceledRecordCount'),
      inputTokenCount: number('inputTokenCount'),
      outputTokenCount: number('outputTokenCount'),
      cacheCreationInputTokenCount: number('cacheCreationInputTokenCount'),
      cacheReadInputTokenCount: number('cacheReadInputTokenCount'),
      costNanoUsd: number('costNanoUsd'),
    },
    familyCounts: (item.familyCounts ?? {}) as JobRecord['familyCounts'],
    failureReason: text('failureReason'),
    finishedAt: text('finishedAt'),
    cancelRequested: item.cancelRequested === true,
    retries: {
      retried: number('retriedCount'),
      bedrockThrottles: number('bedrockThrottleCount'),
      budgetWaits: number('budgetWaitCount'),
    },
    announcement:
      typeof item.announcement === 'string' ? (JSON.parse(item.announcement) as Announcement) : undefined,
    decompressed:
      typeof item.decompressed === 'string' ? (JSON.parse(item.decompressed) as ObjectLocation) : undefined,
    finalizeCheckpoint:
      typeof item.finalizeCheckpoint === 'string'
        ? (JSON.parse(item.finalizeCheckpoint) as FinalizeCheckpoint)
        : undefined,
  };
}

/** DynamoDB's limit on the items of one transaction. */
const TRANSACTION_ITEMS = 100;

/** Splits updates into groups of at most 100 transaction items: one per record, one per job. */
function transactionGroups(updates: readonly JobUpdate[]): JobUpdate[][] {
  const groups: JobUpdate[][] = [];
  let group: JobUpdate[] = [];
  let items = 0;
  for (const update of updates) {
    for (let start = 0; start === 0 || start < update.completions.length; start += TRANSACTION_ITEMS - 1) {
      const piece = {
        ...update,
        completions: update.completions.slice(start, start + TRANSACTION_ITEMS - 1),
        retries: start === 0 ? update.retries : NO_RETRIES,
      };
      if (items + piece.completions.length + 1 > TRANSACTION_ITEMS) {
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

function withoutUndefined<Value extends object>(value: Value): Value {
  return Object.fromEntries(Object.entries(value).filter(([, field]) => field !== undefined)) as Value;
}

/** The item a failed condition saw (ReturnValuesOnConditionCheckFailure), which the document client leaves marshalled. */
function itemOfConditionFailure(error: ConditionalCheckFailedException): Record<string, unknown> {
  return error.Item === undefined ? {} : unmarshall(error.Item);
}

function isConditionFailure(error: unknown): error is ConditionalCheckFailedException {
  return error instanceof ConditionalCheckFailedException;
}
