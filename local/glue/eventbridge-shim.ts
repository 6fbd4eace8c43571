import { randomUUID } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { EventBridgeEvent } from 'aws-lambda';
import { encodeEventKey } from '../../shared/events/object-created.ts';
import type { ObjectCreatedNotice } from '../cloud/fauxqs-server.ts';
import { type EventPattern, matchesPattern } from './event-pattern.ts';

export type BusEvent = EventBridgeEvent<string, unknown>;

export interface EventRule {
  readonly name: string;
  readonly eventPattern: EventPattern;
  /** Invoked asynchronously, as EventBridge invokes a Lambda target. */
  readonly target: (event: BusEvent) => Promise<unknown>;
}

export interface FailedDelivery {
  readonly rule: string;
  readonly event: BusEvent;
  readonly error: unknown;
}

export interface EventBridgeShimOptions {
  readonly region: string;
  readonly s3: S3Client;
  readonly objectCreated: EventEmitter<{ created: [ObjectCreatedNotice] }>;
  /** Attempts per delivery: a Lambda target invoked asynchronously gets the first try and two retries. */
  readonly attempts?: number;
  /** The pause between attempts (EventBridge backs off; immediate by default). */
  readonly retryDelayMs?: number;
  /** Whether an "Object Created" event is delivered twice, as S3 may do. */
  readonly duplicateEvent?: () => boolean;
  readonly account?: string;
}

/**
 * The default event bus, locally: buckets with EventBridge delivery on send "Object Created" events in S3's
 * shape; events are matched against rules by real EventBridge patterns and handed to the rules' targets,
 * retried on failure and, past the retries, kept as failed deliveries (a rule's target DLQ).
 */
export class EventBridgeShim {
  /** Every event the bus received, in order. */
  readonly events: BusEvent[] = [];
  readonly failedDeliveries: FailedDelivery[] = [];
  private readonly rules: EventRule[] = [];
  private readonly buckets = new Set<string>();
  private readonly inFlight = new Set<Promise<void>>();
  private sequence = 0;
  private closed = false;
  private readonly onCreated = (notice: ObjectCreatedNotice) => {
    if (this.buckets.has(notice.bucket)) this.track(this.publishObjectCreated(notice));
  };

  constructor(private readonly options: EventBridgeShimOptions) {
    options.objectCreated.on('created', this.onCreated);
  }

  /** Like the bucket property EventBridgeEnabled (CDK `eventBridgeEnabled: true`). */
  enableBucket(bucket: string): void {
    this.buckets.add(bucket);
  }

  addRule(rule: EventRule): void {
    this.rules.push(rule);
  }

  /** PutEvents: publishes an event of our own (a job's completion, say) to the bus. */
  putEvent(event: { source: string; detailType: string; detail: unknown; resources?: string[] }): void {
    this.publish(this.envelope(event.source, event.detailType, event.detail, event.resources ?? []));
  }

  /** Resolves when every delivery started so far has finished (tests and the runner wait on this). */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  /** Stops delivering: events are still recorded, and deliveries under way go on to their end (see idle). */
  close(): void {
    this.closed = true;
    this.options.objectCreated.off('created', this.onCreated);
  }

  private async publishObjectCreated(notice: ObjectCreatedNotice): Promise<void> {
    const created = notice.object ?? (await this.headOf(notice));
    this.sequence += 1;
    const object = {
      key: encodeEventKey(notice.key),
      ...created,
      sequencer: this.sequence.toString(16).toUpperCase().padStart(18, '0'),
    };
    this.publish(
      this.envelope(
        'aws.s3',
        'Object Created',
        {
          version: '0',
          bucket: { name: notice.bucket },
          object,
          'request-id': randomUUID(),
          requester: this.account,
          'source-ip-address': '127.0.0.1',
          reason: notice.reason,
        },
        [`arn:aws:s3:::${notice.bucket}`],
      ),
    );
  }

  /** What the notice does not say of the object, from S3 (a copy, a multipart upload). */
  private async headOf(notice: ObjectCreatedNotice) {
    const head = await this.options.s3.send(
      new HeadObjectCommand({ Bucket: notice.bucket, Key: notice.key }),
    );
    return {
      size: head.ContentLength ?? 0,
      etag: (head.ETag ?? '').replaceAll('"', ''),
      ...(head.VersionId === undefined ? {} : { 'version-id': head.VersionId }),
    };
  }

  private publish(event: BusEvent): void {
    this.events.push(event);
    if (this.closed) return;
    const matched = this.rules.filter((rule) => matchesPattern(rule.eventPattern, event));
    // S3 delivers at least once: a rule may see the same object's event twice, each with its own id.
    const copies =
      event.source === 'aws.s3' && matched.length > 0 && this.options.duplicateEvent?.() === true ? 2 : 1;
    for (let copy = 0; copy < copies; copy += 1) {
      const delivered = copy === 0 ? event : { ...event, id: randomUUID() };
      for (const rule of matched) this.track(this.deliver(rule, delivered));
    }
  }

  private async deliver(rule: EventRule, event: BusEvent): Promise<void> {
    const attempts = this.options.attempts ?? 3;
    let lastError: unknown;
    for (let attempt = 1; attempt <= attempts; attempt += 1) {
      try {
        await rule.target(event);
        return;
      } catch (error) {
        lastError = error;
        if (attempt < attempts && this.options.retryDelayMs !== undefined)
          await new Promise((resolve) => setTimeout(resolve, this.options.retryDelayMs));
      }
    }
    this.failedDeliveries.push({ rule: rule.name, event, error: lastError });
  }

  private envelope(source: string, detailType: string, detail: unknown, resources: string[]): BusEvent {
    return {
      version: '0',
      id: randomUUID(),
      'detail-type': detailType,
      source,
      account: this.account,
      time: new Date().toISOString(),
      region: this.options.region,
      resources,
      detail,
    };
  }

  private get account(): string {
    return this.options.account ?? '000000000000';
  }

  private track(work: Promise<void>): void {
    const tracked = work.catch((error: unknown) => {
      console.error('eventbridge shim: an event could not be published', error);
    });
    this.inFlight.add(tracked);
    void tracked.finally(() => this.inFlight.delete(tracked));
  }
}
