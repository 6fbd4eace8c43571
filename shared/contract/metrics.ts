/**
 * Every metric the functions emit (EMF, in one namespace, with the function as the `service` dimension), by
 * function: the handlers write them and the stack's dashboard and alarms read them, from these names only.
 */
export const METRICS_NAMESPACE = 'BedrockBatchPipeline';

export const METRICS = {
  enqueue: {
    recordsRead: 'RecordsRead',
    handoffs: 'EnqueueHandoffs',
    duplicateEvents: 'DuplicateEvents',
    takeovers: 'EnqueueTakeovers',
    jobsRejected: 'JobsRejected',
    missingObjects: 'MissingObjects',
    ignoredObjects: 'IgnoredObjects',
  },
  worker: {
    /** Every receive of a record message: divided by the records done, receives per record. */
    recordsReceived: 'RecordsReceived',
    /** Bedrock calls made, answered or refused: divided by the records done, calls per record. */
    bedrockCalls: 'BedrockCalls',
    recordsSucceeded: 'RecordsSucceeded',
    recordsFailed: 'RecordsFailed',
    recordsCanceled: 'RecordsCanceled',
    duplicateDeliveries: 'DuplicateDeliveries',
    recordsRetried: 'RecordsRetried',
    recordsUnhandled: 'RecordsUnhandled',
    budgetWaits: 'BudgetWaits',
    recordsSentBackToWait: 'RecordsSentBackToWait',
    bedrockThrottles: 'BedrockThrottles',
  },
  /** The worker's, with a `model` dimension too. */
  perModel: {
    inputTokens: 'InputTokens',
    outputTokens: 'OutputTokens',
    cacheWriteInputTokens: 'CacheWriteInputTokens',
    cacheReadInputTokens: 'CacheReadInputTokens',
    /** Records whose call read the prompt cache, and those that wrote to it and read nothing: the hit rate. */
    cacheHitRecords: 'CacheHitRecords',
    cacheMissRecords: 'CacheMissRecords',
    /** What the cache saved against the same calls with none (negative while writes are not yet read). */
    cacheSavingUsd: 'CacheSavingUsd',
    estimatedCostUsd: 'EstimatedCostUsd',
    modelLatency: 'ModelLatency',
  },
  /** The worker's, with a `pool` dimension (`<source region>#<model id>`): how files spread over the quotas. */
  perPool: {
    records: 'PoolRecords',
    inputTokens: 'PoolInputTokens',
    outputTokens: 'PoolOutputTokens',
    /** Calls of the pool Bedrock throttled (each tried again). */
    throttles: 'PoolThrottles',
  },
  finalizer: {
    jobsCompleted: 'JobsCompleted',
    estimatedCostUsd: 'EstimatedCostUsd',
    handoffs: 'FinalizeHandoffs',
    alreadyDone: 'FinalizationsAlreadyDone',
  },
  batch: {
    partsCollected: 'BatchPartsCollected',
    recordsRedriven: 'BatchRecordsRedriven',
    /** Batch jobs that ended Failed: Bedrock ran none of their records. */
    jobsFailed: 'BatchJobsFailed',
    partsWatched: 'BatchPartsWatched',
    eventsIgnored: 'BatchEventsIgnored',
    /** Deadline alarms that went off (early ones set again among them). */
    deadlineAlarms: 'BatchDeadlineAlarms',
  },
  messageBatches: {
    /** Requests the Message Batches API answered, and those it failed on (answered 500). */
    apiRequests: 'MessageBatchRequests',
    apiFailures: 'MessageBatchFailures',
  },
  sweeper: {
    jobsResumed: 'JobsResumed',
    stuckJobs: 'StuckJobs',
    deadLetterMessages: 'DeadLetterMessages',
  },
} as const;

/** The service dimension of each function's metrics (the per-model and per-pool ones are the worker's). */
export type MetricsService = Exclude<keyof typeof METRICS, 'perModel' | 'perPool'>;
