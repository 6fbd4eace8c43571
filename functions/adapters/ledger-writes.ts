import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { type DynamoDBDocumentClient, UpdateCommand, type UpdateCommandInput } from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';

/**
 * What the ledger's adapters share: the table, the clock, how long finished items are kept, and conditional
 * updates, whose refusal (a ConditionalCheckFailedException) is an answer, not an error.
 */
export interface LedgerOptions {
  readonly now?: () => number;
  /** Finished jobs, finished records and claimed ids expire (DynamoDB TTL on `expiresAt`) this many days later. */
  readonly retentionDays?: number;
  /**
   * Completions add their cost to the day's spend item: only a deployment with a daily spending cap needs it,
   * and without one no item is written by every job at once.
   */
  readonly countsDailySpend?: boolean;
}

export abstract class LedgerTableWriter {
  protected readonly now: () => number;
  protected readonly retentionDays: number;

  constructor(
    protected readonly documents: DynamoDBDocumentClient,
    protected readonly tableName: string,
    protected readonly options: LedgerOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.retentionDays = options.retentionDays ?? 30;
  }

  /** An update its condition may refuse: true when it was made. */
  protected async updateIf(input: Omit<UpdateCommandInput, 'TableName'>): Promise<boolean> {
    try {
      await this.documents.send(new UpdateCommand({ TableName: this.tableName, ...input }));
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  /** When an item written now may go: DynamoDB TTL removes it `retentionDays` later. */
  protected expiresAt(): number {
    return Math.floor(this.now() / 1000) + this.retentionDays * 86_400;
  }

  protected isoNow(): string {
    return new Date(this.now()).toISOString();
  }
}

export function withoutUndefined<Value extends object>(value: Value): Value {
  return Object.fromEntries(Object.entries(value).filter(([, field]) => field !== undefined)) as Value;
}

/** The item a failed condition saw (ReturnValuesOnConditionCheckFailure), which the document client leaves marshalled. */
export function itemOfConditionFailure(error: ConditionalCheckFailedException): Record<string, unknown> {
  return error.Item === undefined ? {} : unmarshall(error.Item);
}

export function isConditionFailure(error: unknown): error is ConditionalCheckFailedException {
  return error instanceof ConditionalCheckFailedException;
}
