import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { CreateQueueCommand, GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import type { AwsClients } from '../../functions/adapters/clients.ts';
import { LEDGER_TABLE } from '../../shared/contract/ledger-table.ts';
import { RETRY_LAYERS } from '../../shared/retry-layers.ts';

export interface PipelineResources {
  readonly bucket: string;
  readonly tableName: string;
  readonly recordQueueUrl: string;
  readonly recordQueueArn: string;
  readonly recordDlqUrl: string;
  readonly finalizeQueueUrl: string;
  readonly finalizeQueueArn: string;
  readonly finalizeDlqUrl: string;
  /** Deadline alarms for the batch watcher. */
  readonly deadlineQueueUrl: string;
  readonly deadlineQueueArn: string;
}

export interface ProvisionOptions {
  readonly prefix?: string;
  /** Seconds a received message stays hidden on each queue: six times its consumer's timeout, as in the stack. */
  readonly recordVisibilitySeconds: number;
  readonly finalizeVisibilitySeconds: number;
  readonly maxReceiveCount?: number;
}

/**
 * The resources the CDK stack creates, created locally: bucket, ledger table, record queue and DLQ, finalize
 * queue, deadline alarm queue.
 */
export async function provisionPipeline(
  clients: AwsClients,
  options: ProvisionOptions,
): Promise<PipelineResources> {
  const prefix = options.prefix ?? 'bedrock-batch';
  const bucket = `${prefix}-bucket`;
  const tableName = `${prefix}-ledger`;
  await clients.s3.send(new CreateBucketCommand({ Bucket: bucket }));
  await createLedgerTable(clients, tableName);
  const redrive = (dlqArn: string) =>
    JSON.stringify({
      deadLetterTargetArn: dlqArn,
      maxReceiveCount: options.maxReceiveCount ?? RETRY_LAYERS.maxReceives.records,
    });
  const recordDlq = await createQueue(clients, `${prefix}-records-dlq`);
  const records = await createQueue(clients, `${prefix}-records`, {
    VisibilityTimeout: String(options.recordVisibilitySeconds),
    RedrivePolicy: redrive(recordDlq.arn),
  });
  const finalizeDlq = await createQueue(clients, `${prefix}-finalize-dlq`);
  const finalize = await createQueue(clients, `${prefix}-finalize`, {
    VisibilityTimeout: String(options.finalizeVisibilitySeconds),
    RedrivePolicy: redrive(finalizeDlq.arn),
  });
  const deadlineDlq = await createQueue(clients, `${prefix}-deadlines-dlq`);
  const deadlines = await createQueue(clients, `${prefix}-deadlines`, {
    VisibilityTimeout: String(options.finalizeVisibilitySeconds),
    RedrivePolicy: redrive(deadlineDlq.arn),
  });
  return {
    bucket,
    tableName,
    recordQueueUrl: records.url,
    recordQueueArn: records.arn,
    recordDlqUrl: recordDlq.url,
    finalizeQueueUrl: finalize.url,
    finalizeQueueArn: finalize.arn,
    finalizeDlqUrl: finalizeDlq.url,
    deadlineQueueUrl: deadlines.url,
    deadlineQueueArn: deadlines.arn,
  };
}

/** The ledger table on the key schema the stack gives it, with its indexes. */
async function createLedgerTable(clients: AwsClients, tableName: string): Promise<void> {
  const activeJobs = LEDGER_TABLE.activeJobsIndex;
  const recentJobs = LEDGER_TABLE.recentJobsIndex;
  await clients.dynamodb.send(
    new CreateTableCommand({
      TableName: tableName,
      BillingMode: 'PAY_PER_REQUEST',
      KeySchema: [
        { AttributeName: LEDGER_TABLE.partitionKey, KeyType: 'HASH' },
        { AttributeName: LEDGER_TABLE.sortKey, KeyType: 'RANGE' },
      ],
      AttributeDefinitions: [
        { AttributeName: LEDGER_TABLE.partitionKey, AttributeType: 'S' },
        { AttributeName: LEDGER_TABLE.sortKey, AttributeType: 'S' },
        { AttributeName: activeJobs.partitionKey, AttributeType: 'S' },
        { AttributeName: activeJobs.sortKey, AttributeType: 'S' },
        { AttributeName: recentJobs.partitionKey, AttributeType: 'S' },
      ],
      GlobalSecondaryIndexes: [
        {
          IndexName: activeJobs.name,
          KeySchema: [
            { AttributeName: activeJobs.partitionKey, KeyType: 'HASH' },
            { AttributeName: activeJobs.sortKey, KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'KEYS_ONLY' },
        },
        {
          IndexName: recentJobs.name,
          KeySchema: [
            { AttributeName: recentJobs.partitionKey, KeyType: 'HASH' },
            { AttributeName: recentJobs.sortKey, KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'INCLUDE', NonKeyAttributes: [...recentJobs.projected] },
        },
      ],
    }),
  );
}

async function createQueue(
  clients: AwsClients,
  name: string,
  attributes: Record<string, string> = {},
): Promise<{ url: string; arn: string }> {
  const { QueueUrl = '' } = await clients.sqs.send(
    new CreateQueueCommand({ QueueName: name, Attributes: attributes }),
  );
  const { Attributes } = await clients.sqs.send(
    new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }),
  );
  return { url: QueueUrl, arn: Attributes?.QueueArn ?? '' };
}
