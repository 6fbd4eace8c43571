import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { z } from 'zod';

/**
 * What a team may bring or tune: its own bucket or key, and the props of the bucket, the ledger table and the
 * functions the construct makes. What the pipeline's working depends on stays the pipeline's (the bucket's
 * EventBridge delivery, the table's keys, a function's code, role, timeout and environment), and the secure
 * defaults hold unless a prop overrides them by name.
 */

/** The props of the bucket the construct makes; its encryption follows `useKms` / `existingEncryptionKey`. */
export type BucketOverrides = Omit<s3.BucketProps, 'encryption' | 'encryptionKey' | 'eventBridgeEnabled'>;

/** The props of the ledger table; its keys, indexes, TTL attribute and encryption are the pipeline's. */
export type LedgerTableOverrides = Omit<
  dynamodb.TableProps,
  'partitionKey' | 'sortKey' | 'timeToLiveAttribute' | 'encryption' | 'encryptionKey'
>;

/** What may be tuned on the pipeline's functions: memory, disk, networking, how settings are encrypted. */
export type FunctionOverrides = Pick<
  lambda.FunctionOptions,
  | 'memorySize'
  | 'ephemeralStorageSize'
  | 'vpc'
  | 'vpcSubnets'
  | 'securityGroups'
  | 'allowAllOutbound'
  | 'environmentEncryption'
>;

const FUNCTION_OVERRIDES: ReadonlyArray<keyof FunctionOverrides> = [
  'memorySize',
  'ephemeralStorageSize',
  'vpc',
  'vpcSubnets',
  'securityGroups',
  'allowAllOutbound',
  'environmentEncryption',
];

/** An object prop whose `owned` keys are refused, each with why the pipeline keeps it. */
function propsWithout<Props extends object>(what: string, owned: Readonly<Record<string, string>>) {
  return z
    .custom<Props>(
      (value) => typeof value === 'object' && value !== null && !Array.isArray(value),
      `must be ${what}`,
    )
    .superRefine((value, ctx) => {
      for (const [key, why] of Object.entries(owned))
        if (key in value) ctx.addIssue({ code: 'custom', path: [key], message: `cannot be set: ${why}` });
    });
}

const functionOverrides = z
  .custom<FunctionOverrides>((value) => typeof value === 'object' && value !== null, 'must be function props')
  .superRefine((value, ctx) => {
    for (const key of Object.keys(value))
      if (!(FUNCTION_OVERRIDES as readonly string[]).includes(key))
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: `cannot be set: the pipeline sets it (what may be: ${FUNCTION_OVERRIDES.join(', ')})`,
        });
    const { memorySize } = value;
    if (
      memorySize !== undefined &&
      !(Number.isInteger(memorySize) && memorySize >= 128 && memorySize <= 10_240)
    )
      ctx.addIssue({
        code: 'custom',
        path: ['memorySize'],
        message: 'must be a whole number of MB from 128 to 10240',
      });
  });

const ENCRYPTION = 'the key is chosen by useKms or existingEncryptionKey, for everything the pipeline stores';

/** The schema entries of the escape hatches, checked with the rest of the props. */
export const escapeHatchSchema = {
  existingEncryptionKey: z
    .custom<kms.IKey>(
      (value) => typeof value === 'object' && value !== null && 'keyArn' in value,
      'must be a KMS key (a kms.Key, or one imported with kms.Key.fromKeyArn)',
    )
    .optional(),
  existingBucketObj: z
    .custom<s3.IBucket>(
      (value) => typeof value === 'object' && value !== null && 'bucketArn' in value,
      'must be an S3 bucket (an s3.Bucket, or one imported with s3.Bucket.fromBucketAttributes)',
    )
    .optional(),
  bucketProps: propsWithout<BucketOverrides>('bucket props', {
    encryption: ENCRYPTION,
    encryptionKey: ENCRYPTION,
    eventBridgeEnabled: 'uploads start their jobs through EventBridge, so its delivery is always on',
  }).optional(),
  ledgerTableProps: propsWithout<LedgerTableOverrides>('table props', {
    partitionKey: "the ledger's items are keyed by the pipeline",
    sortKey: "the ledger's items are keyed by the pipeline",
    timeToLiveAttribute: 'finished items expire through the attribute the pipeline writes',
    encryption: ENCRYPTION,
    encryptionKey: ENCRYPTION,
  }).optional(),
  functionProps: functionOverrides.optional(),
  workerFunctionProps: functionOverrides.optional(),
};

/** A bucket is brought or made: props for one the construct makes mean nothing with one brought. */
export function checkBucketChoice(
  props: { readonly existingBucketObj?: unknown; readonly bucketProps?: unknown },
  ctx: z.RefinementCtx,
): void {
  if (props.existingBucketObj !== undefined && props.bucketProps !== undefined)
    ctx.addIssue({
      code: 'custom',
      path: ['bucketProps'],
      message:
        'give existingBucketObj or bucketProps, not both: bucketProps shape a bucket the construct makes',
    });
}
