/** The CloudFormation outputs the stack publishes and the CLI reads to find the pipeline's resources. */
export const STACK_OUTPUTS = {
  bucket: 'BucketName',
  tableName: 'LedgerTableName',
  recordQueueUrl: 'RecordQueueUrl',
  recordDlqUrl: 'RecordDlqUrl',
  /** Present when the stack serves the Message Batches API: the base URL to give Anthropic's SDK. */
  messageBatchesApiUrl: 'MessageBatchesApiUrl',
} as const;
