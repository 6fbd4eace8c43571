import { type DynamoDBDocumentClient, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { BudgetReservation, TokenBudget } from '../../shared/pipeline/ports.ts';

export interface BudgetSettings {
  /** The quota this pipeline may use per model id and region, in tokens per minute. */
  readonly tokensPerMinute: number;
  /** After a Bedrock throttle the rate is multiplied by this (multiplicative decrease). */
  readonly decreaseFactor?: number;
  /** Each success adds this share of the quota back (additive increase). */
  readonly increaseShare?: number;
  /** The rate never drops below this share of the quota. */
  readonly floorShare?: number;
  /** How long a worker trusts the rate it read. */
  readonly rateCacheMs?: number;
}

const WINDOW_MS = 60_000;

/**
 * A token budget all workers share through DynamoDB: one counter per model id, region and minute, raised
 * with a conditional ADD that fails when the minute's rate would be exceeded, and corrected with the real
 * usage afterwards. The rate itself adapts (AIMD): Bedrock throttles, which mean another application shares
 * the quota, cut it; successes creep it back up to the configured quota.
 */
export class DynamoDbTokenBudget implements TokenBudget {
  private readonly rates = new Map<string, { rate: number; readAt: number }>();

  constructor(
    private readonly documents: DynamoDBDocumentClient,
    private readonly tableName: string,
    private readonly settings: BudgetSettings,
    private readonly now: () => number = Date.now,
  ) {}

  async reserve(key: string, tokens: number): Promise<BudgetReservation | { retryAfterSeconds: number }> {
    const now = this.now();
    const window = Math.floor(now / WINDOW_MS);
    const rate = await this.rateOf(key);
    try {
      await this.documents.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: `BUDGET#${key}`, sk: `W#${window}` },
          UpdateExpression: 'ADD used :tokens SET expiresAt = :expires',
          // A request larger than a whole minute's rate still goes, alone, in an empty window.
          ConditionExpression: 'attribute_not_exists(used) OR used <= :room',
          ExpressionAttributeValues: {
            ':tokens': tokens,
            ':room': Math.max(0, rate - tokens),
            ':expires': Math.floor(now / 1000) + 3_600,
          },
        }),
      );
      return { key, window, tokens };
    } catch (error) {
      if ((error as { name?: string }).name !== 'ConditionalCheckFailedException') throw error;
      return { retryAfterSeconds: Math.max(1, Math.ceil(((window + 1) * WINDOW_MS - now) / 1000)) };
    }
  }

  async settle(reservation: BudgetReservation, usedTokens: number): Promise<void> {
    const correction = usedTokens - reservation.tokens;
    if (correction === 0) return;
    await this.documents.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: { pk: `BUDGET#${reservation.key}`, sk: `W#${reservation.window}` },
        UpdateExpression: 'ADD used :correction',
        ExpressionAttributeValues: { ':correction': correction },
      }),
    );
  }

  async recordThrottle(key: string): Promise<void> {
    const current = await this.rateOf(key, true);
    const floor = this.settings.tokensPerMinute * (this.settings.floorShare ?? 0.1);
    await this.setRate(
      key,
      current,
      Math.max(floor, Math.floor(current * (this.settings.decreaseFactor ?? 0.7))),
    );
  }

  async recordSuccess(key: string): Promise<void> {
    const current = await this.rateOf(key);
    if (current >= this.settings.tokensPerMinute) return;
    const step = this.settings.tokensPerMinute * (this.settings.increaseShare ?? 0.02);
    await this.setRate(key, current, Math.min(this.settings.tokensPerMinute, Math.ceil(current + step)));
  }

  /** The current rate for `key`: the configured quota until a throttle has lowered it. */
  async rateOf(key: string, fresh = false): Promise<number> {
    const cached = this.rates.get(key);
    if (!fresh && cached !== undefined && this.now() - cached.readAt < (this.settings.rateCacheMs ?? 5_000)) {
      return cached.rate;
    }
    const { Item } = await this.documents.send(
      new GetCommand({
        TableName: this.tableName,
        Key: { pk: `BUDGET#${key}`, sk: 'RATE' },
        ConsistentRead: true,
      }),
    );
    const rate = typeof Item?.rate === 'number' ? Item.rate : this.settings.tokensPerMinute;
    this.rates.set(key, { rate, readAt: this.now() });
    return rate;
  }

  /** Compare-and-set, so two workers adjusting at once do not both apply their change to the same old rate. */
  private async setRate(key: string, expected: number, rate: number): Promise<void> {
    try {
      await this.documents.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: `BUDGET#${key}`, sk: 'RATE' },
          UpdateExpression: 'SET rate = :rate',
          ConditionExpression: 'attribute_not_exists(rate) OR rate = :expected',
          ExpressionAttributeValues: { ':rate': rate, ':expected': expected },
        }),
      );
      this.rates.set(key, { rate, readAt: this.now() });
    } catch (error) {
      if ((error as { name?: string }).name !== 'ConditionalCheckFailedException') throw error;
      this.rates.delete(key);
    }
  }
}
