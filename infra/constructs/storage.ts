import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import type { z } from 'zod';
import type { EnvironmentOf, storageSettings } from '../../shared/config.ts';
import { LEDGER_TABLE } from '../../shared/contract/ledger-table.ts';
import type { RESULTS_KEY_PATTERN } from '../../shared/contract/storage-layout.ts';
import type { BucketOverrides, LedgerTableOverrides } from '../escape-hatches.ts';
import { grantKeyUse } from './key-use.ts';
import { acknowledge, findingResource, type PipelineFunction } from './pipeline-function.ts';

const OBJECT_ACTIONS = {
  read: ['s3:GetObject'],
  write: ['s3:PutObject', 's3:AbortMultipartUpload'],
  delete: ['s3:DeleteObject'],
} as const satisfies Record<string, readonly string[]>;

/**
 * The prefixes of the bucket: uploads, the pipeline's intermediate objects (every job's results among them),
 * and what users collect.
 */
export type BucketPrefix =
  | 'inputs'
  | 'work'
  | typeof RESULTS_KEY_PATTERN
  | 'outputs'
  | 'message-batches'
  | 'inputs/message-batches'
  | 'outputs/message-batches';

/** The ledger actions a function may be granted; a transaction's items need the item actions they carry. */
export type LedgerAction =
  | 'dynamodb:GetItem'
  | 'dynamodb:BatchGetItem'
  | 'dynamodb:PutItem'
  | 'dynamodb:UpdateItem'
  | 'dynamodb:Query';

export interface StorageProps {
  /** A customer-managed key for everything the pipeline stores; AWS-managed encryption when false. */
  readonly useKms: boolean;
  /** The team's own key, used instead of making one. */
  readonly existingEncryptionKey?: kms.IKey | undefined;
  /** The team's own bucket, used instead of making one. */
  readonly existingBucketObj?: s3.IBucket | undefined;
  readonly bucketProps?: BucketOverrides | undefined;
  readonly ledgerTableProps?: LedgerTableOverrides | undefined;
  /** Days before finished jobs' intermediate objects, old versions and ledger items expire. */
  readonly retentionDays: number;
}

/**
 * Where the pipeline keeps things: the bucket (EventBridge delivery, versioned, access-logged), the ledger
 * table and, when asked for, the key that encrypts them and the queues. Functions get access through the
 * grant methods, each acknowledging the cdk-nag findings its scoping causes.
 */
export class Storage extends Construct {
  readonly key: kms.IKey | undefined;
  readonly bucket: s3.IBucket;
  /** The key the bucket's objects are encrypted with: the pipeline's, or a brought bucket's own. */
  readonly objectKey: kms.IKey | undefined;
  readonly ledger: dynamodb.Table;
  /** The settings every function that touches storage reads. */
  readonly environment: EnvironmentOf<z.ZodObject<typeof storageSettings>>;

  constructor(scope: Construct, id: string, props: StorageProps) {
    super(scope, id);
    this.key =
      props.existingEncryptionKey ??
      (props.useKms
        ? new kms.Key(this, 'Key', { enableKeyRotation: true, description: 'bedrock-batch-pipeline data' })
        : undefined);
    const retention = Duration.days(props.retentionDays);
    this.bucket =
      props.existingBucketObj === undefined
        ? this.createBucket(retention, props.bucketProps)
        : adoptBucket(props.existingBucketObj, retention);
    this.objectKey = props.existingBucketObj === undefined ? this.key : props.existingBucketObj.encryptionKey;
    this.ledger = this.createLedger(props.ledgerTableProps);
    this.environment = {
      BUCKET_NAME: this.bucket.bucketName,
      LEDGER_TABLE_NAME: this.ledger.tableName,
      RETENTION_DAYS: String(props.retentionDays),
    };
  }

  /**
   * Object reads (GetObject also answers HeadObject), writes (PutObject also covers multipart parts) or
   * deletes.
   */
  grantObjects(
    fn: PipelineFunction,
    access: 'read' | 'write' | 'delete',
    prefixes: readonly BucketPrefix[],
  ): void {
    fn.function.addToRolePolicy(
      new iam.PolicyStatement({
        actions: [...OBJECT_ACTIONS[access]],
        resources: prefixes.map((prefix) => this.bucket.arnForObjects(`${prefix}/*`)),
      }),
    );
    if (access !== 'delete') grantKeyUse(this.objectKey, fn.function, 's3', access);
    acknowledge(
      fn,
      Object.fromEntries(
        prefixes.map((prefix) => [
          `AwsSolutions-IAM5[Resource::${findingResource(this, this.bucket.arnForObjects(`${prefix}/*`))}]`,
          'Object access is limited to the prefixes the function works in; keys under them are per job and per record, so they cannot be listed in advance.',
        ]),
      ),
    );
  }

  /**
   * Listing one prefix's objects (the jobs' working objects, the message batches), and nothing else of the
   * bucket: also what makes S3 answer a read of a missing object there with 404 rather than 403.
   */
  grantList(fn: PipelineFunction, prefix: 'work' | 'message-batches' = 'work'): void {
    fn.function.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['s3:ListBucket'],
        resources: [this.bucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': `${prefix}/*` } },
      }),
    );
  }

  grantLedger(fn: PipelineFunction, actions: readonly LedgerAction[]): void {
    this.ledger.grant(fn.function, ...actions);
    const reads: readonly LedgerAction[] = ['dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:Query'];
    grantKeyUse(
      this.key,
      fn.function,
      'dynamodb',
      actions.every((action) => reads.includes(action)) ? 'read' : 'write',
    );
    const tableArn = Stack.of(this).getLogicalId(this.ledger.node.defaultChild as dynamodb.CfnTable);
    acknowledge(fn, {
      [`AwsSolutions-IAM5[Resource::<${tableArn}.Arn>/index/*]`]:
        "The ledger's own indexes (the active-jobs index), granted with the table.",
    });
  }

  /**
   * Expires the objects under `prefixes` `after` their creation, on a bucket the pipeline may change (its
   * own, or one made in the same app); an imported bucket's owner sees to its rules.
   */
  expireObjects(name: string, prefixes: readonly BucketPrefix[], after: Duration): void {
    if (!(this.bucket instanceof s3.Bucket)) return;
    for (const prefix of prefixes)
      this.bucket.addLifecycleRule({
        id: `${name}-${prefix.replaceAll('/', '-')}`,
        prefix: `${prefix}/`,
        expiration: after,
      });
  }

  /** Lets a role other than a function's use the key for the objects it reads and writes. */
  grantObjectEncryption(role: iam.Role): void {
    grantKeyUse(this.objectKey, role, 's3', 'write');
  }

  private createBucket(retention: Duration, overrides: BucketOverrides = {}): s3.IBucket {
    const accessLogs = new s3.Bucket(this, 'AccessLogs', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      encryption: s3.BucketEncryption.S3_MANAGED,
      lifecycleRules: [{ expiration: Duration.days(90) }],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const bucket = new s3.Bucket(this, 'Bucket', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      versioned: true,
      // CDK's own types do not satisfy exactOptionalPropertyTypes (Bucket.isWebsite); the value is right.
      serverAccessLogsBucket: accessLogs as unknown as s3.IBucket,
      serverAccessLogsPrefix: 'bucket/',
      removalPolicy: RemovalPolicy.RETAIN,
      ...overrides,
      // The team's rules come on top of the pipeline's, which keep its working objects from piling up.
      lifecycleRules: [
        workExpiry(retention),
        {
          id: 'old-versions',
          noncurrentVersionExpiration: retention,
          abortIncompleteMultipartUploadAfter: Duration.days(7),
        },
        ...(overrides.lifecycleRules ?? []),
      ],
      ...(this.key === undefined
        ? { encryption: s3.BucketEncryption.S3_MANAGED }
        : { encryption: s3.BucketEncryption.KMS, encryptionKey: this.key, bucketKeyEnabled: true }),
      eventBridgeEnabled: true,
    });
    // eventBridgeEnabled adds CDK's notifications handler to the stack itself.
    for (const child of Stack.of(this).node.children.filter((construct) =>
      construct.node.id.startsWith('BucketNotificationsHandler'),
    )) {
      acknowledge(child, {
        'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]':
          "CDK's own handler that turns on the bucket's EventBridge delivery; it only writes its logs.",
      });
    }
    // CDK's own types do not satisfy exactOptionalPropertyTypes (Bucket.isWebsite); the value is right.
    return bucket as unknown as s3.IBucket;
  }

  private createLedger(overrides: LedgerTableOverrides = {}): dynamodb.Table {
    const ledger = new dynamodb.Table(this, 'Ledger', {
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      removalPolicy: RemovalPolicy.RETAIN,
      ...overrides,
      partitionKey: { name: LEDGER_TABLE.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: LEDGER_TABLE.sortKey, type: dynamodb.AttributeType.STRING },
      timeToLiveAttribute: LEDGER_TABLE.timeToLive,
      ...(this.key === undefined
        ? { encryption: dynamodb.TableEncryption.AWS_MANAGED }
        : { encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED, encryptionKey: this.key }),
    });
    ledger.addGlobalSecondaryIndex({
      indexName: LEDGER_TABLE.activeJobsIndex.name,
      partitionKey: { name: LEDGER_TABLE.activeJobsIndex.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: LEDGER_TABLE.activeJobsIndex.sortKey, type: dynamodb.AttributeType.STRING },
      projectionType: dynamodb.ProjectionType.KEYS_ONLY,
    });
    const recent = LEDGER_TABLE.recentJobsIndex;
    ledger.addGlobalSecondaryIndex({
      indexName: recent.name,
      partitionKey: { name: recent.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: recent.sortKey, type: dynamodb.AttributeType.STRING },
      projectionType: dynamodb.ProjectionType.INCLUDE,
      nonKeyAttributes: [...recent.projected],
    });
    return ledger;
  }
}

/** Finished jobs' intermediate objects (their results among them) expire after the retention. */
function workExpiry(retention: Duration): s3.LifecycleRule {
  return { id: 'intermediate-results', prefix: 'work/', expiration: retention };
}

/**
 * A team's bucket as the pipeline needs it. One made in the same app gets EventBridge delivery and the
 * expiry of the pipeline's working objects; an imported one cannot be changed here, so its owner sees to both.
 */
function adoptBucket(bucket: s3.IBucket, retention: Duration): s3.IBucket {
  if (bucket instanceof s3.Bucket) {
    bucket.enableEventBridgeNotification();
    bucket.addLifecycleRule(workExpiry(retention));
  }
  return bucket;
}
