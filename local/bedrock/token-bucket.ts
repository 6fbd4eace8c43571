/**
 * A per-minute quota as a token bucket that refills continuously. Bedrock reserves a request's worst case when
 * it starts (input plus max_tokens at the output burndown) and corrects it when it ends, so a bucket may go
 * below zero when a request used more than it reserved; later requests then wait.
 */
export class TokenBucket {
  private level: number;
  private updatedAt: number;
  private readonly refillPerMs: number;

  constructor(
    readonly perMinute: number,
    now: number,
  ) {
    this.level = perMinute;
    this.updatedAt = now;
    this.refillPerMs = perMinute / 60_000;
  }

  available(now: number): number {
    this.refill(now);
    return this.level;
  }

  /**
   * Takes `amount` if it is there. A request larger than the whole bucket is let through when the bucket is
   * full, so it is slow rather than impossible.
   */
  tryTake(amount: number, now: number): boolean {
    this.refill(now);
    if (amount > this.level && !(amount > this.perMinute && this.level >= this.perMinute)) return false;
    this.level -= amount;
    return true;
  }

  /** Corrects a reservation by `delta` tokens: positive gives back, negative takes more. */
  adjust(delta: number, now: number): void {
    this.refill(now);
    this.level = Math.min(this.perMinute, this.level + delta);
  }

  private refill(now: number): void {
    const elapsed = Math.max(0, now - this.updatedAt);
    this.level = Math.min(this.perMinute, this.level + elapsed * this.refillPerMs);
    this.updatedAt = now;
  }
}
