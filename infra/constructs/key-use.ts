import { Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as sqs from 'aws-cdk-lib/aws-sqs';

/** The services that encrypt with the pipeline key on a caller's behalf. */
export type KeyService = 's3' | 'dynamodb' | 'sqs';

/**
 * What each use takes of the key: reading decrypts a data key; writing makes one (and decrypts it again, as
 * a multipart upload's parts and a queue's data key reuse do). No caller encrypts or re-encrypts directly.
 */
const KEY_ACTIONS = {
  read: ['kms:Decrypt'],
  write: ['kms:Decrypt', 'kms:GenerateDataKey'],
} as const;

/**
 * Lets `grantee` use the key only through `service` in the stack's region (kms:ViaService): the role cannot
 * decrypt anything with it by calling KMS itself.
 */
export function grantKeyUse(
  key: kms.IKey | undefined,
  grantee: iam.IGrantable,
  service: KeyService,
  access: keyof typeof KEY_ACTIONS,
): void {
  if (key === undefined) return;
  grantee.grantPrincipal.addToPrincipalPolicy(
    new iam.PolicyStatement({
      actions: [...KEY_ACTIONS[access]],
      resources: [key.keyArn],
      conditions: { StringEquals: { 'kms:ViaService': `${service}.${Stack.of(key).region}.amazonaws.com` } },
    }),
  );
}

/** Sending to `queue`, and its key through SQS: what the CDK's grantSendMessages gives, less direct key use. */
export function grantSend(queue: sqs.IQueue, grantee: iam.IGrantable): void {
  queue.grant(grantee, 'sqs:SendMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl');
  grantKeyUse(queue.encryptionMasterKey, grantee, 'sqs', 'write');
}

/** Receiving from `queue` as an event source does, and its key through SQS. */
export function grantConsume(queue: sqs.IQueue, grantee: iam.IGrantable): void {
  queue.grant(
    grantee,
    'sqs:ReceiveMessage',
    'sqs:ChangeMessageVisibility',
    'sqs:GetQueueUrl',
    'sqs:DeleteMessage',
    'sqs:GetQueueAttributes',
  );
  grantKeyUse(queue.encryptionMasterKey, grantee, 'sqs', 'read');
}
