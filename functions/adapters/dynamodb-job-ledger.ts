// Over 250 lines: one conditional write per step of a job's life (create, lease and read, fail, total,
// checkpoint, finalize, finish, announce, cancel), each an expression and its values; split further, one
// job item's rules would be spread over several files.
import { GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { jobIdOfKey, jobKey, LEDGER_TABLE } from '../../shared/contract/ledger-table.ts';
import { type ServiceTier, tierRefusalKey } from '../../shared/contract/service-tiers.ts';
import { batchPartName } from '../../shared/contract/storage-layout.ts';
import type { JobLedger } from '../../shared/core/ledger.ts';
import type {
  Announcement,
  BatchPart,
  BatchPartState,
  CachedPrefix,
  DecompressCheckpoint,
  FinalizeCheckpoint,
  JobEnding,
  JobRecord,
  JobStatus,
  ObjectLocation,
  ReadingLease,
  ReadProgress,
} from '../../shared/core/model.ts';
import { jobItem, jobOf } from './job-item.ts';
import { isConditionFailure, LedgerTableWriter, withoutUndefined } from './ledger-writes.ts';

const ACTIVE_JOBS = LEDGER_TABLE.activeJobsIndex;

/**
 * The jobs in the ledger table: one `JOB#<id>`/`JOB` item each, with its counters, its reading lease, its
 * pending event and its finalization checkpoint. Unfinished jobs also carry `activeFlag`, the key of the
 * sparse active-jobs index (keys only).
 */
export class DynamoDbJobLedger extends LedgerTableWriter implements JobLedger {
  async createJob(job: JobRecord): Promise<boolean> {
    try {
      await this.documents.send(
        new PutCommand({
          TableName: this.tableName,
          Item: jobItem(job),
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

  async saveReadProgress(jobId: string, progress: ReadProgress, lease: ReadingLease): Promise<boolean> {
    return this.updateIf({
      Key: jobKey(jobId),
      UpdateExpression:
        'SET readOffset = :offset, readLine = :line, recordsRead = :read, invalidLines = :invalid, readerUntil = :until, updatedAt = :now',
      ConditionExpression: 'readerId = :owner',
      ExpressionAttributeValues: {
        ':offset': progress.readOffset,
        ':line': progress.readLine,
        ':read': progress.recordsRead,
        ':invalid': progress.invalidLines,
        ':owner': lease.owner,
        ':until': this.now() + lease.leaseSeconds * 1000,
        ':now': this.isoNow(),
      },
    });
  }

  async saveDecompressing(
    jobId: string,
    checkpoint: DecompressCheckpoint,
    lease: ReadingLease,
  ): Promise<boolean> {
    return this.updateIf({
      Key: jobKey(jobId),
      UpdateExpression: 'SET decompressing = :checkpoint, readerUntil = :until, updatedAt = :now',
      ConditionExpression: 'readerId = :owner',
      ExpressionAttributeValues: {
        ':checkpoint': JSON.stringify(checkpoint),
        ':owner': lease.owner,
        ':until': this.now() + lease.leaseSeconds * 1000,
        ':now': this.isoNow(),
      },
    });
  }

  async saveDecompressed(
    jobId: string,
    location: ObjectLocation,
    lease: ReadingLease,
    notice?: string,
  ): Promise<boolean> {
    return this.updateIf({
      Key: jobKey(jobId),
      UpdateExpression: `SET decompressed = :location, updatedAt = :now${notice === undefined ? '' : ', inputNotice = :notice'} REMOVE decompressing`,
      ConditionExpression: 'readerId = :owner',
      ExpressionAttributeValues: {
        ':location': JSON.stringify(location),
        ':owner': lease.owner,
        ':now': this.isoNow(),
        ...(notice === undefined ? {} : { ':notice': notice }),
      },
    });
  }

  async failReading(
    jobId: string,
    ending: Required<JobEnding<'failed' | 'superseded'>>,
    finishedAt: string,
    announcement: Announcement,
  ): Promise<boolean> {
    return this.endJob(jobId, {
      from: 'enqueuing',
      to: ending.status,
      finishedAt,
      announcement,
      // Records already sent finish as canceled.
      also: { failureReason: ending.reason, cancelRequested: true },
      forget: ['readerId', 'readerUntil'],
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
    // Only an enqueuing job moves on to running (a canceled or failed one keeps its status).
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

  async claimPrefixWrite(
    jobId: string,
    modelId: string,
    claim: { owner: string; until: number; freshAfter: number; now: number },
  ): Promise<'write' | 'written' | 'busy'> {
    const claimed = await this.updateIf({
      Key: jobKey(jobId),
      UpdateExpression: 'SET prefixWrites.#model = :claim',
      ConditionExpression:
        'attribute_exists(prefixWrites) AND (attribute_not_exists(prefixWrites.#model) OR ' +
        '(attribute_not_exists(prefixWrites.#model.writtenAt) AND prefixWrites.#model.#until < :now) OR ' +
        'prefixWrites.#model.writtenAt < :freshAfter)',
      ExpressionAttributeNames: { '#model': modelId, '#until': 'until' },
      ExpressionAttributeValues: {
        ':claim': { writer: claim.owner, until: claim.until },
        ':now': claim.now,
        ':freshAfter': claim.freshAfter,
      },
    });
    if (claimed) return 'write';
    const write = (await this.getJob(jobId))?.prefixWrites[modelId];
    return write?.writtenAt !== undefined && write.writtenAt >= claim.freshAfter ? 'written' : 'busy';
  }

  async markPrefixWritten(jobId: string, modelId: string, at: number): Promise<void> {
    await this.updateIf({
      Key: jobKey(jobId),
      UpdateExpression: 'SET prefixWrites.#model.writtenAt = :at',
      ConditionExpression: 'attribute_exists(prefixWrites.#model)',
      ExpressionAttributeNames: { '#model': modelId },
      ExpressionAttributeValues: { ':at': at },
    });
  }

  async refuseTier(jobId: string, modelId: string, tier: ServiceTier): Promise<void> {
    await this.updateIf({
      Key: jobKey(jobId),
      UpdateExpression: 'ADD tierRefusals :refusal SET updatedAt = :now',
      ConditionExpression: 'attribute_exists(pk)',
      ExpressionAttributeValues: {
        ':refusal': new Set([tierRefusalKey(modelId, tier)]),
        ':now': this.isoNow(),
      },
    });
  }

  setSharedPrefixes(jobId: string, prefixes: Readonly<Record<string, CachedPrefix>>): Promise<boolean> {
    return this.setOnce(jobId, 'sharedPrefixes', prefixes);
  }

  planBatchParts(jobId: string, parts: Readonly<Record<string, BatchPart>>): Promise<boolean> {
    return this.setOnce(jobId, 'batchParts', parts);
  }

  /** A decision taken once per job: the first writer's stands, a later one is told it lost (false). */
  private setOnce(
    jobId: string,
    attribute: 'sharedPrefixes' | 'batchParts',
    value: object,
  ): Promise<boolean> {
    return this.updateIf({
      Key: jobKey(jobId),
      UpdateExpression: 'SET #decision = :value, updatedAt = :now',
      ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(#decision)',
      ExpressionAttributeNames: { '#decision': attribute },
      ExpressionAttributeValues: { ':value': value, ':now': this.isoNow() },
    });
  }

  async moveBatchPart(jobId: string, from: readonly BatchPartState[], next: BatchPart): Promise<boolean> {
    const states = Object.fromEntries(from.map((state, index) => [`:from${index}`, state]));
    return this.updateIf({
      Key: jobKey(jobId),
      UpdateExpression: 'SET batchParts.#part = :next, updatedAt = :now',
      ConditionExpression: `batchParts.#part.#state IN (${Object.keys(states).join(', ')})`,
      ExpressionAttributeNames: { '#part': batchPartName(next.part), '#state': 'state' },
      ExpressionAttributeValues: { ':next': withoutUndefined(next), ':now': this.isoNow(), ...states },
    });
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
    ending: JobEnding<'completed' | 'canceled' | 'superseded'>,
    finishedAt: string,
    announcement: Announcement,
  ): Promise<boolean> {
    return this.endJob(jobId, {
      from: 'finalizing',
      to: ending.status,
      finishedAt,
      announcement,
      ...(ending.reason === undefined ? {} : { also: { failureReason: ending.reason } }),
      forget: ['finalizeCheckpoint'],
    });
  }

  /**
   * Ends a job that is in `from` as `to`, with the event that announces it (kept until it is published), and
   * forgets what only the step it was in needed; false when the job was not in `from`.
   */
  private endJob(
    jobId: string,
    end: {
      from: JobStatus;
      to: JobStatus;
      finishedAt: string;
      announcement: Announcement;
      also?: Readonly<Record<string, unknown>>;
      forget: readonly string[];
    },
  ): Promise<boolean> {
    const also = Object.entries(end.also ?? {});
    return this.updateIf({
      Key: jobKey(jobId),
      UpdateExpression: `SET #status = :to, finishedAt = :finished, announcement = :announcement, updatedAt = :now, expiresAt = :expires${also.map(([name], index) => `, ${name} = :also${index}`).join('')} REMOVE ${end.forget.join(', ')}`,
      ConditionExpression: '#status = :from',
      ExpressionAttributeNames: { '#status': 'status' },
      ExpressionAttributeValues: {
        ':to': end.to,
        ':from': end.from,
        ':finished': end.finishedAt,
        ':announcement': JSON.stringify(end.announcement),
        ':now': this.isoNow(),
        ':expires': this.expiresAt(),
        ...Object.fromEntries(also.map(([, value], index) => [`:also${index}`, value])),
      },
    });
  }

  async claimAnnouncement(jobId: string, leaseSeconds: number): Promise<boolean> {
    const now = this.now();
    return this.updateIf({
      Key: jobKey(jobId),
      UpdateExpression: 'SET announcingUntil = :until',
      ConditionExpression:
        'attribute_exists(announcement) AND (attribute_not_exists(announcingUntil) OR announcingUntil < :now)',
      ExpressionAttributeValues: { ':until': now + leaseSeconds * 1000, ':now': now },
    });
  }

  async releaseAnnouncement(jobId: string): Promise<void> {
    await this.updateIf({
      Key: jobKey(jobId),
      UpdateExpression: 'REMOVE announcingUntil',
      ConditionExpression: 'attribute_exists(pk)',
    });
  }

  async markAnnounced(jobId: string): Promise<void> {
    await this.documents.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: jobKey(jobId),
        UpdateExpression: 'SET updatedAt = :now REMOVE announcement, announcingUntil, activeFlag',
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeValues: { ':now': this.isoNow() },
      }),
    );
  }

  async cancelJob(jobId: string, reason?: string): Promise<boolean> {
    return this.updateIf({
      Key: jobKey(jobId),
      // The first reason stands: a later cancel (by a person, or another worker over the cap) keeps it.
      UpdateExpression: `SET cancelRequested = :yes, updatedAt = :now${reason === undefined ? '' : ', cancelReason = if_not_exists(cancelReason, :reason)'}`,
      ConditionExpression: '#status IN (:enqueuing, :running)',
      ExpressionAttributeNames: { '#status': 'status' },
      ExpressionAttributeValues: {
        ':yes': true,
        ':now': this.isoNow(),
        ':enqueuing': 'enqueuing',
        ':running': 'running',
        ...(reason === undefined ? {} : { ':reason': reason }),
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
}
