import { GetObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { loadConfig, messageBatchesSettings } from '../../shared/config.ts';
import { outputLocations } from '../../shared/contract/storage-layout.ts';
import { systemClock } from '../../shared/core/clock.ts';
import { MessageBatches, type MessageBatchPorts } from '../../shared/message-batches/message-batches.ts';
import { DynamoDbJobDirectory } from '../adapters/dynamodb-job-directory.ts';
import { DynamoDbLedger } from '../adapters/dynamodb-ledger.ts';
import { S3ObjectStore } from '../adapters/s3-object-store.ts';
import { jobDefaultsOf, lambdaEnvironment } from '../environment.ts';
import { createMessageBatchesHandler } from './handler.ts';

const config = loadConfig(messageBatchesSettings);
const { clients, ...observed } = lambdaEnvironment('messageBatches', config);

/** How long a results address stays good: time enough to download a large batch's results. */
const RESULTS_URL_SECONDS = 3_600;

const presign = (location: { bucket: string; key: string }) =>
  getSignedUrl(clients.s3, new GetObjectCommand({ Bucket: location.bucket, Key: location.key }), {
    expiresIn: RESULTS_URL_SECONDS,
  });
const directory = new DynamoDbJobDirectory(clients.documents, config.LEDGER_TABLE_NAME);
const ledger = new DynamoDbLedger(clients.documents, config.LEDGER_TABLE_NAME, {
  retentionDays: config.RETENTION_DAYS,
});
const ports: MessageBatchPorts = {
  store: new S3ObjectStore(clients.s3),
  ledger: {
    newestJobOf: (source) => directory.newestJobOf(source),
    cancelJob: (jobId, reason) => ledger.cancelJob(jobId, reason),
  },
  bucket: config.BUCKET_NAME,
  jobDefaults: jobDefaultsOf(config),
  clock: systemClock,
  resultsUrl: (_batchId, job) => presign(outputLocations(job).output),
  sharedAcrossCallers: config.MESSAGE_BATCHES_SHARED === 'true',
};

export const handler = createMessageBatchesHandler({
  ...observed,
  apiFor: (caller) => new MessageBatches(ports, caller),
  presign,
});
