/**
 * A quota as a token bucket that refills continuously: `capacity` tokens over `periodMs`. A request may take
 * more than it finally uses or less (Bedrock reserves at the start and settles at the end), so the level may
 * go below zero: the quota is then in debt and later requests wait until it has refilled.
 */
export class TokenBucket {
  private level: number;
  private updatedAt: number;
  private readonly refillPerMs: number;

  constructor(
    readonly capacity: number,
    readonly periodMs: number,
    now: number,
  ) {
    this.level = capacity;
    this.updatedAt = now;
    this.refillPerMs = capacity / periodMs;
  }

  available(now: number): number {
    this.refill(now);
    return this.level;
  }

  /**
   * Whether `amount` can be taken now. A request larger than the whole bucket may go when the bucket is full,
   * so it is slow rather than impossible.
   */
  canTake(amount: number, now: number): boolean {
    this.refill(now);
    return amount <= this.level || (amount > this.capacity && this.level >= this.capacity);
  }

  take(amount: number, now: number): void {
    this.refill(now);
    this.level -= amount;
  }

  /** Corrects an earlier take by `delta` tokens: positive gives back, negative takes more (possibly into debt). */
  adjust(delta: number, now: number): void {
    this.refill(now);
    this.level = Math.min(this.capacity, this.level + delta);
  }

  private refill(now: number): void {
    const elapsed = Math.max(0, now - this.updatedAt);
    this.level = Math.min(this.capacity, this.level + elapsed * this.refillPerMs);
    this.updatedAt = Math.max(this.updatedAt, now);
  }
}
