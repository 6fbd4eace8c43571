/**
 * Every layer of the pipeline that tries something again, with its numbers, in one place: the functions, the
 * stack and the retries table in docs/using.md read them from here. A record's own retries (backoff, attempts per failure
 * class) are the failure table's policy, DEFAULT_RETRY_POLICY in failures.ts.
 */
export const RETRY_LAYERS = {
  /** Attempts the AWS SDK makes at one Bedrock call before the failure table decides (SDK_MAX_ATTEMPTS). */
  bedrockSdkAttempts: 2,
  /** SendMessageBatch entries SQS refuses are sent again: attempts, and full-jitter backoff doubling from this. */
  sqsSend: { attempts: 5, baseDelayMs: 100 },
  /** Keys DynamoDB leaves unread in a BatchGetItem are read again: attempts, and full-jitter backoff doubling from this. */
  ledgerBatchRead: { attempts: 5, baseDelayMs: 50 },
  /** A transaction of record-id claims that met another transaction on the same ids is tried again: attempts, full jitter. */
  ledgerClaimConflict: { attempts: 5, baseDelayMs: 50 },
  /** Receives before a message goes to its DLQ: records (only messages the code cannot handle reach it), finalizations, enqueue failures. */
  maxReceives: { records: 100, finalize: 5, enqueueFailures: 5, deadlineAlarms: 5 },
  /** EventBridge hands an upload's or a continuation's event to the enqueue function this often, for up to this long. */
  enqueueEvent: { retryAttempts: 185, maxEventAgeHours: 24 },
  /** Lambda's own retries of an asynchronous enqueue invocation that failed, before the enqueue-failures queue. */
  enqueueAsyncRetries: 2,
  /** EventBridge's retries of the sweeper's schedule. */
  sweeperRetries: 2,
} as const;
