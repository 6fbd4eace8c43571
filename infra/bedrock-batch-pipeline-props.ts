import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type { EndpointKind } from '../shared/catalog/catalog.ts';
import type { UserCatalog } from '../shared/catalog/user-catalog.ts';
import type { Lane } from '../shared/contract/lanes.ts';
import type { ServiceTier } from '../shared/contract/service-tiers.ts';
import type { BucketOverrides, FunctionOverrides, LedgerTableOverrides } from './escape-hatches.ts';

/**
 * What a deployment of the pipeline chooses. Everything has a secure, working default except the Bedrock
 * region; every value is checked when the construct is created, and a bad one (or a bad combination, such as
 * a model the region does not offer) throws a ConfigurationError that says which and why.
 */
export interface BedrockBatchPipelineProps {
  /** The region Bedrock is called in. Never defaulted: a default region may not offer the model. */
  readonly bedrockRegion: string;
  /**
   * The model for files that do not name one: an alias (`opus-4.6`), an Anthropic name or a Bedrock id.
   * @default 'opus-4.6'
   */
  readonly defaultModel?: string;
  /**
   * Every model files may use; IAM allows exactly these.
   * @default - the default model alone
   */
  readonly allowedModels?: readonly string[];
  /**
   * The inference endpoint: a global or geographic cross-region profile, or the region itself.
   * @default 'global'
   */
  readonly endpoint?: EndpointKind;
  /**
   * Endpoint kinds files may use too, after `endpoint`, in order of preference: each is a quota pool of its
   * own. A file keeps to those no looser than its own endpoint (see docs/using.md, "several pools").
   * @default - `endpoint` alone
   */
  readonly additionalEndpoints?: readonly EndpointKind[];
  /**
   * Source regions files may call Bedrock from too, besides `bedrockRegion` (the home region): each has
   * quota pools of its own. IAM allows the pools they make and nothing more.
   * @default - `bedrockRegion` alone
   */
  readonly additionalBedrockRegions?: readonly string[];
  /**
   * The part of each quota the pipeline spends, when the quotas are read from Service Quotas (other
   * applications in the account keep the rest).
   * @default 1
   */
  readonly quotaShare?: number;
  /**
   * The Bedrock tokens-per-minute quota the pipeline may spend, per model and pool. When not given, the worker
   * reads each pool's applied quota from Service Quotas (and again every five minutes), and this default
   * only sizes the worker and stands in for a quota that cannot be read.
   * @default 400000
   */
  readonly tokensPerMinute?: number;
  /**
   * `max_tokens` for records that do not set it.
   * @default 4096
   */
  readonly defaultMaxTokens?: number;
  /**
   * Alarms notify this address (through a new SNS topic).
   * @default - no email subscription
   */
  readonly alarmEmail?: string;
  /**
   * Alarms notify this existing SNS topic.
   * @default - no topic
   */
  readonly alarmTopicArn?: string;
  /**
   * Each job's end (completed, canceled, superseded or failed) is sent to this address, through a new SNS
   * topic, as a line naming the job, its input, how it ended, its output and the reason.
   * @default - no email
   */
  readonly notifyEmail?: string;
  /**
   * Each job's end is sent to this existing SNS topic; its policy must let events.amazonaws.com publish.
   * @default - no topic
   */
  readonly notifyTopicArn?: string;
  /**
   * A customer-managed, rotating KMS key for the bucket, queues and table.
   * @default false - AWS-managed encryption
   */
  readonly useKms?: boolean;
  /**
   * Your own KMS key for the bucket, the table and the queues, instead of one the construct makes (so
   * `useKms` is implied): a key your organisation manages and rotates. Functions use it only through S3,
   * DynamoDB and SQS, as they would the construct's. A key made in the same app gets the statement that lets
   * EventBridge encrypt into the event rules' dead-letter queue; an imported key's policy must allow
   * `events.amazonaws.com` `kms:GenerateDataKey` and `kms:Decrypt` itself.
   * @example kms.Key.fromKeyArn(stack, 'DataKey', 'arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab')
   * @default - a new rotating key when useKms, else AWS-managed encryption
   */
  readonly existingEncryptionKey?: kms.IKey;
  /**
   * Your own bucket, instead of one the construct makes: uploads under `inputs/` start jobs, the pipeline's
   * objects go under `work/` and outputs under `outputs/`. Its EventBridge delivery must be on: the construct
   * turns it on, and expires `work/` after `retentionDays`, for a bucket made in the same app; an imported
   * bucket's owner does both. A bucket encrypted with its own KMS key is imported with that key
   * (`encryptionKey` in `s3.Bucket.fromBucketAttributes`), which the functions then use through S3.
   * @example s3.Bucket.fromBucketAttributes(stack, 'Batches', { bucketName: 'team-prompts', encryptionKey: dataKey })
   * @default - a new bucket: versioned, TLS only, no public access, access-logged, EventBridge delivery on
   */
  readonly existingBucketObj?: s3.IBucket;
  /**
   * Props of the bucket the construct makes, over its secure defaults: its name, removal policy, object lock,
   * inventory... Its encryption follows `useKms` / `existingEncryptionKey`, and its EventBridge delivery is
   * always on. Not with `existingBucketObj`.
   * @example { bucketName: 'team-prompts', removalPolicy: RemovalPolicy.DESTROY, autoDeleteObjects: true }
   * @default - the secure defaults alone
   */
  readonly bucketProps?: BucketOverrides;
  /**
   * Props of the ledger table, over its defaults (on-demand billing, point-in-time recovery, retained): its
   * name, deletion protection, billing mode, contributor insights... Its keys, indexes, TTL attribute and
   * encryption are the pipeline's.
   * @example { tableName: 'team-batch-ledger', deletionProtection: true }
   * @default - the defaults alone
   */
  readonly ledgerTableProps?: LedgerTableOverrides;
  /**
   * Props for every function of the pipeline: memory, ephemeral storage, a VPC (with its subnets and
   * security groups; the VPC then needs routes or endpoints to S3, DynamoDB, SQS, EventBridge, Bedrock and
   * Service Quotas), and how its settings are encrypted. Code, role, runtime, timeout and settings are the
   * pipeline's.
   * @example { vpc, vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS } }
   * @default - no VPC, each function's own memory
   */
  readonly functionProps?: FunctionOverrides;
  /**
   * Props for the worker alone, over `functionProps`: the function that calls Bedrock.
   * @example { memorySize: 2048 }
   * @default - `functionProps`, with 1,024 MB
   */
  readonly workerFunctionProps?: FunctionOverrides;
  /**
   * The worker's timeout; the record queue hides a message six times as long.
   * @default 300
   */
  readonly workerTimeoutSeconds?: number;
  /**
   * Records per worker invocation: they share one budget reservation and one settlement.
   * @default 20
   */
  readonly workerBatchSize?: number;
  /**
   * A record as the quota sees it, to size the workers and the alarms: input and output tokens, and how
   * long Bedrock takes to answer it.
   * @default { inputTokens: 1000, outputTokens: 400, latencySeconds: 10 }
   */
  readonly typicalRecord?: {
    readonly inputTokens: number;
    readonly outputTokens: number;
    readonly latencySeconds: number;
  };
  /**
   * The largest file expected: the queue-age alarm allows for the time the quota takes to drain it.
   * @default 100000
   */
  readonly largestFileRecords?: number;
  /**
   * Minutes without progress after which the sweeper reports a job stuck.
   * @default 30
   */
  readonly stuckAfterMinutes?: number;
  /**
   * Days before finished jobs' intermediate objects and ledger items expire.
   * @default 30
   */
  readonly retentionDays?: number;
  /**
   * The lane of files that do not choose one: on-demand, batch (Bedrock batch inference) or auto.
   * @default 'on-demand'
   */
  readonly defaultLane?: Lane;
  /**
   * Prompt caching of a file's shared prefix for files that do not choose (file option cache=off|auto).
   * @default 'auto'
   */
  readonly promptCache?: 'auto' | 'off';
  /**
   * The Bedrock service tier of files that do not choose one (file option tier=default|priority|flex). A
   * tier a model does not take is refused by Bedrock; the pipeline then runs that model's records on default
   * and the manifest says so.
   * @example 'flex'
   * @default 'default'
   */
  readonly serviceTier?: ServiceTier;
  /**
   * The deadline of files that do not set one (30m, 6h, 2d): batch jobs still running then are stopped.
   * @example '6h'
   * @default - none
   */
  readonly defaultDeadline?: string;
  /**
   * The part of a file's records, from 0 to 1, that may be invalid before its job stops reading and fails,
   * for files that do not set one (file option max-error-rate): a file mostly of errors is the wrong file.
   * Judged from the 100th record on; 1 never stops.
   * @default 0.5
   */
  readonly maxErrorRate?: number;
  /**
   * The most a compressed input (.jsonl.gz) may decompress to, in bytes: a small gzip of gigabytes (of blank
   * lines, say) fails its job at once instead of being read for hours. As much as one Bedrock batch
   * inference file by default.
   * @default 1 GiB
   */
  readonly maxDecompressedBytes?: number;
  /**
   * A daily spending cap for the whole deployment, in US dollars: once the cost counted on a day (UTC) reaches
   * it, every job stops, canceled with the reason in its manifest and end event, its records not yet run ending
   * `canceled`; calls already under way finish. Files uploaded later that day stop at their first records.
   * Counted as records complete (batch-lane records when their batch job is collected).
   * @example 200
   * @default - no cap
   */
  readonly maxDailyCost?: number;
  /**
   * Models to add to the catalog or change in it, in the built-in catalog's form (shared/catalog/models.json):
   * a model that shipped after this release, or a price the catalog lacks. An entry with a known key changes
   * only the fields it gives; a new key is a whole entry. Checked like the built-in catalog when the construct
   * is created (a bad entry names the field), used for `defaultModel`, `allowedModels` and IAM, and given to
   * every function. At most 2,500 bytes as JSON: a function's settings hold 4 KB in all, and the construct
   * refuses settings that would not fit (a long catalog beside many allowed models).
   * @example { models: [{ key: 'opus-4.6', prices: { standard: { input: 5, output: 25, cacheWrite: 6.25, cacheWrite1h: 10, cacheRead: 0.5 }, longContext: { input: 10, output: 37.5, cacheWrite: 12.5, cacheWrite1h: 20, cacheRead: 1 } } }] }
   * @default - the built-in catalog alone
   */
  readonly catalog?: UserCatalog;
  /**
   * Runs model ids of Bedrock's form (`anthropic.claude-…`, with or without a profile prefix) that the catalog
   * does not list, the day a model ships: name them in `defaultModel` or `allowedModels` (IAM allows only
   * those). Their cost and 1M-context behaviour are unknown, and the manifest says so.
   * @default false
   */
  readonly allowUnknownModels?: boolean;
  /**
   * Serves Anthropic's Message Batches API over the pipeline (code written for Anthropic's batches runs with
   * only its base URL and signing changed): an HTTP API whose routes need IAM authorization (SigV4: the
   * package's `signedFetch`), throttled (`rateLimit` requests a second, `burstLimit` at once), with access
   * logs. Each IAM principal sees only the batches it created unless `shareAcrossCallers`. A batch (its
   * requests and results) is kept `retentionDays` (29 by default, as Anthropic keeps results), on a bucket
   * the pipeline made or one made in the same app.
   * @example { shareAcrossCallers: false, retentionDays: 29, rateLimit: 20, burstLimit: 40 }
   * @default false
   */
  readonly messageBatchesApi?:
    | boolean
    | {
        readonly shareAcrossCallers?: boolean;
        readonly retentionDays?: number;
        readonly rateLimit?: number;
        readonly burstLimit?: number;
      };
}
