import { BatchGetCommand, type DynamoDBDocumentClient, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { LEDGER_TABLE } from '../../shared/contract/ledger-table.ts';
import type { JobDirectory } from '../../shared/core/ledger.ts';
import type { JobRecord } from '../../shared/core/model.ts';
import { jobOf } from './job-item.ts';

const RECENT_JOBS = LEDGER_TABLE.recentJobsIndex;

/** Index entries read a page while looking for an object's job: entries are small, and jobs are few. */
const PAGE_ENTRIES = 100;

/** The jobs of the ledger table by the recent-jobs index (its entries carry the input's bucket and key). */
export class DynamoDbJobDirectory implements JobDirectory {
  constructor(
    private readonly documents: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async recentJobs(limit: number): Promise<JobRecord[]> {
    const { Items = [] } = await this.documents.send(this.newestFirst({ Limit: limit }));
    return this.jobsOf(Items.map((item) => ({ pk: item.pk, sk: item.sk })));
  }

  async newestJobOf(source: {
    readonly bucket: string;
    readonly key: string;
  }): Promise<JobRecord | undefined> {
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.documents.send(
        this.newestFirst({
          Limit: PAGE_ENTRIES,
          ExclusiveStartKey: startKey,
          FilterExpression: '#bucket = :bucket AND #key = :key',
          ExpressionAttributeNames: { '#bucket': 'bucket', '#key': 'key' },
          ExpressionAttributeValues: { ':bucket': source.bucket, ':key': source.key },
        }),
      );
      const [newest] = page.Items ?? [];
      if (newest !== undefined) return (await this.jobsOf([{ pk: newest.pk, sk: newest.sk }]))[0];
      startKey = page.LastEvaluatedKey;
    } while (startKey !== undefined);
    return undefined;
  }

  private newestFirst(input: {
    Limit: number;
    ExclusiveStartKey?: Record<string, unknown> | undefined;
    FilterExpression?: string;
    ExpressionAttributeNames?: Record<string, string>;
    ExpressionAttributeValues?: Record<string, unknown>;
  }): QueryCommand {
    return new QueryCommand({
      TableName: this.tableName,
      IndexName: RECENT_JOBS.name,
      KeyConditionExpression: '#list = :list',
      ScanIndexForward: false,
      ...input,
      ExpressionAttributeNames: { '#list': RECENT_JOBS.partitionKey, ...input.ExpressionAttributeNames },
      ExpressionAttributeValues: { ':list': RECENT_JOBS.value, ...input.ExpressionAttributeValues },
    });
  }

  /**
   * The job items of index entries (at most a batch read's 100), in their order: a batch read gives them in
   * any order, and may leave some for another read.
   */
  private async jobsOf(keys: ReadonlyArray<Record<string, unknown>>): Promise<JobRecord[]> {
    const jobs = new Map<string, JobRecord>();
    for (let pending = [...keys]; pending.length > 0; ) {
      const { Responses, UnprocessedKeys } = await this.documents.send(
        new BatchGetCommand({ RequestItems: { [this.tableName]: { Keys: pending, ConsistentRead: true } } }),
      );
      for (const item of Responses?.[this.tableName] ?? []) jobs.set(String(item.pk), jobOf(item));
      pending = UnprocessedKeys?.[this.tableName]?.Keys ?? [];
    }
    return keys.flatMap((key) => jobs.get(String(key.pk)) ?? []);
  }
}
