/** The CloudFormation outputs the stack publishes and the CLI reads to find the pipeline's resources. */
export const STACK_OUTPUTS = {
  bucket: 'BucketName',
  tableName: 'LedgerTableName',
  recordQueueUrl: 'RecordQueueUrl',
  recordDlqUrl: 'RecordDlqUrl',
} as const;
