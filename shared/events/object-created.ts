import { z } from 'zod';
import { PipelineError } from '../errors.ts';

/** The EventBridge form of S3's "Object Created" event, the fields the pipeline uses (see events/). */
const objectCreatedEvent = z.object({
  id: z.string().min(1),
  source: z.literal('aws.s3'),
  'detail-type': z.literal('Object Created'),
  time: z.string().min(1),
  region: z.string().min(1),
  detail: z.object({
    bucket: z.object({ name: z.string().min(1) }),
    object: z.object({
      key: z.string().min(1),
      size: z.number().int().nonnegative().optional(),
      etag: z.string().optional(),
      'version-id': z.string().optional(),
      sequencer: z.string().optional(),
    }),
    reason: z.string().optional(),
  }),
});

export interface ObjectCreated {
  readonly eventId: string;
  readonly time: string;
  readonly region: string;
  readonly bucket: string;
  /** The key as the event carries it. */
  readonly eventKey: string;
  /** The object keys the event may mean, most likely first (see `objectKeyCandidates`). */
  readonly keyCandidates: readonly string[];
  readonly size: number | undefined;
  readonly etag: string | undefined;
  readonly versionId: string | undefined;
  readonly sequencer: string | undefined;
}

export function parseObjectCreated(event: unknown): ObjectCreated {
  const parsed = objectCreatedEvent.safeParse(event);
  if (!parsed.success) {
    throw new PipelineError(
      'INVALID_EVENT',
      `Not an S3 "Object Created" event: ${z.prettifyError(parsed.error)}`,
    );
  }
  const { id, time, region, detail } = parsed.data;
  return {
    eventId: id,
    time,
    region,
    bucket: detail.bucket.name,
    eventKey: detail.object.key,
    keyCandidates: objectKeyCandidates(detail.object.key),
    size: detail.object.size,
    etag: detail.object.etag,
    versionId: detail.object['version-id'],
    sequencer: detail.object.sequencer,
  };
}

/**
 * The one place an event's object key is decoded. S3 notifications form-URL-encode keys ("red flower.jpg"
 * arrives as "red+flower.jpg"); whether EventBridge's form does is not settled, and a real key may itself
 * hold "+" or "%". So the decoded key comes first and the key as sent second (when they differ); the
 * reader takes the first that exists.
 */
export function objectKeyCandidates(eventKey: string): readonly string[] {
  let decoded: string | undefined;
  try {
    decoded = decodeURIComponent(eventKey.replaceAll('+', ' '));
  } catch {
    // A lone "%" cannot be an encoded key: the key was sent as it is.
    decoded = undefined;
  }
  return decoded === undefined || decoded === eventKey ? [eventKey] : [decoded, eventKey];
}

/**
 * An object key as S3 puts it in an event: form-URL-encoded ("red flower.jpg" as "red+flower.jpg"), with "/"
 * kept. The local EventBridge shim writes keys this way; `objectKeyCandidates` reads both ways.
 */
export function encodeEventKey(key: string): string {
  return encodeURIComponent(key).replaceAll('%2F', '/').replaceAll('%20', '+');
}
