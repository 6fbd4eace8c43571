import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import type { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { DynamoDbRecordLedger } from '../../functions/adapters/dynamodb-record-ledger.ts';
import { eventBridgePutEvent } from '../../functions/adapters/events.ts';
import { SqsRecordQueue } from '../../functions/adapters/sqs-record-queue.ts';
import type { RecordMessage } from '../../shared/messages/record-message.ts';
import { RETRY_LAYERS } from '../../shared/retry-layers.ts';

/** A client whose `send` answers from a script, recording the commands it got. */
function scriptedClient<Client>(answer: (input: Record<string, unknown>, call: number) => unknown) {
  const inputs: Array<Record<string, unknown>> = [];
  const client = {
    send: async (command: { input: Record<string, unknown> }) => {
      inputs.push(command.input);
      return answer(command.input, inputs.length);
    },
  } as unknown as Client;
  return { client, inputs };
}

const message = (lineNumber: number): RecordMessage => ({
  v: 2,
  jobId: 'job-1',
  recordId: `r${lineNumber}`,
  lineNumber,
  source: { bucket: 'b', key: 'inputs/a.jsonl', byteStart: 0, byteEnd: 10 },
});

describe('SqsRecordQueue', () => {
  it('sends ten per SendMessageBatch and sends again only the entries SQS refused', async () => {
    // Prepare: the first call refuses entry "3".
    const { client, inputs } = scriptedClient<SQSClient>((_, call) =>
      call === 1 ? { Failed: [{ Id: '3', Code: 'InternalError', SenderFault: false }] } : { Failed: [] },
    );

    // Act
    await new SqsRecordQueue(client, 'https://queue').send(
      Array.from({ length: 12 }, (_, index) => message(index + 1)),
    );

    // Assess
    const batches = inputs.map((input) =>
      (input.Entries as Array<{ Id: string; MessageBody: string }>).map(
        (entry) => JSON.parse(entry.MessageBody).lineNumber,
      ),
    );
    expect(batches).toHaveLength(3);
    expect(batches[0]).toHaveLength(10);
    expect(batches.slice(1)).toContainEqual([4]);
    expect(batches.flat().sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  });

  it('gives up with an error when SQS keeps refusing', async () => {
    // Prepare
    const { client } = scriptedClient<SQSClient>(() => ({
      Failed: [{ Id: '0', Code: 'InternalError', SenderFault: false }],
    }));

    // Act
    const send = new SqsRecordQueue(client, 'https://queue').send([message(1)]);

    // Assess
    await expect(send).rejects.toThrow(/SQS refused 1 record messages 5 times/);
  }, 30_000);
});

describe('eventBridgePutEvent', () => {
  it('puts the event on the named bus and fails loudly when EventBridge refuses it', async () => {
    // Prepare
    const { client, inputs } = scriptedClient<EventBridgeClient>((_, call) =>
      call === 1
        ? { FailedEntryCount: 0 }
        : { FailedEntryCount: 1, Entries: [{ ErrorMessage: 'bus not found' }] },
    );
    const put = eventBridgePutEvent(client, 'pipeline-bus');

    // Act
    await put({
      source: 'bedrock-batch-pipeline',
      detailType: 'Batch Job Completed',
      detail: { jobId: 'j' },
    });
    const refused = put({
      source: 'bedrock-batch-pipeline',
      detailType: 'Batch Job Completed',
      detail: { jobId: 'k' },
    });

    // Assess
    expect(inputs[0]).toEqual({
      Entries: [
        {
          EventBusName: 'pipeline-bus',
          Source: 'bedrock-batch-pipeline',
          DetailType: 'Batch Job Completed',
          Detail: '{"jobId":"j"}',
        },
      ],
    });
    await expect(refused).rejects.toThrow(/EventBridge refused a Batch Job Completed event: bus not found/);
  });
});

describe('DynamoDbRecordLedger record-id claims', () => {
  const canceled = (codes: ReadonlyArray<string>, holder?: number) =>
    new TransactionCanceledException({
      message: 'Transaction cancelled',
      $metadata: {},
      CancellationReasons: codes.map((Code) => ({
        Code,
        ...(Code === 'ConditionalCheckFailed' ? { Item: { lineNumber: { N: String(holder) } } } : {}),
      })),
    });
  const claimedIds = (input: Record<string, unknown>) =>
    (input.TransactItems as Array<{ Put: { Item: { sk: string } } }>).map((item) => item.Put.Item.sk);

  it('claims again what met another transaction, leaving out the ids another line holds', async () => {
    // Prepare: a conflict, then line 2's id held by line 9, then success.
    const answers = [
      canceled(['None', 'TransactionConflict', 'None']),
      canceled(['None', 'ConditionalCheckFailed', 'None'], 9),
    ];
    const { client, inputs } = scriptedClient<DynamoDBDocumentClient>(() => {
      const answer = answers.shift();
      if (answer !== undefined) throw answer;
      return {};
    });
    const claims = [1, 2, 3].map((lineNumber) => ({ recordId: `r${lineNumber}`, lineNumber }));

    // Act
    const holders = await new DynamoDbRecordLedger(client, 'ledger').claimRecordIds('job-1', claims);

    // Assess
    expect(holders).toEqual(new Map([['r2', 9]]));
    expect(inputs.map(claimedIds)).toEqual([
      ['ID#r1', 'ID#r2', 'ID#r3'],
      ['ID#r1', 'ID#r2', 'ID#r3'],
      ['ID#r1', 'ID#r3'],
    ]);
  });

  it('gives up with the conflict when it keeps meeting other transactions', async () => {
    // Prepare
    const { client, inputs } = scriptedClient<DynamoDBDocumentClient>(() => {
      throw canceled(['TransactionConflict']);
    });

    // Act
    const claim = new DynamoDbRecordLedger(client, 'ledger').claimRecordIds('job-1', [
      { recordId: 'r1', lineNumber: 1 },
    ]);

    // Assess
    await expect(claim).rejects.toBeInstanceOf(TransactionCanceledException);
    expect(inputs).toHaveLength(RETRY_LAYERS.ledgerClaimConflict.attempts);
  });
});

describe('DynamoDbRecordLedger leases', () => {
  const commandOf = (input: Record<string, unknown>) =>
    'TransactItems' in input
      ? `transaction of ${(input.TransactItems as unknown[]).length}`
      : `update of line ${String((input.Key as { sk: string }).sk).replace(/^REC#0*/, '')}`;
  const leaseAll = (ledger: DynamoDbRecordLedger, lines: readonly number[]) =>
    Promise.allSettled(lines.map((line) => ledger.leaseRecord('job-1', line, 'me', 60, 'set-me')));

  it('takes the leases asked for at once in one transaction, each the first attempt at its record', async () => {
    // Prepare
    const { client, inputs } = scriptedClient<DynamoDBDocumentClient>(() => ({}));

    // Act
    const leases = await leaseAll(new DynamoDbRecordLedger(client, 'ledger'), [1, 2, 3]);

    // Assess
    expect(inputs.map(commandOf)).toEqual(['transaction of 3']);
    expect(leases.map((lease) => lease.status === 'fulfilled' && lease.value.kind)).toEqual([
      'acquired',
      'acquired',
      'acquired',
    ]);
  });

  it('takes each lease on its own when DynamoDB cancels the transaction, and fails them all on an error', async () => {
    // Prepare: the transaction canceled, then each alone; later a transaction refused outright.
    const { client, inputs } = scriptedClient<DynamoDBDocumentClient>((input) => {
      if ('TransactItems' in input && inputs.length === 1)
        throw new TransactionCanceledException({ message: 'Transaction cancelled', $metadata: {} });
      if ('TransactItems' in input) throw new Error('throttled');
      return { Attributes: { attempts: 2, resultSet: 'set-earlier' } };
    });
    const ledger = new DynamoDbRecordLedger(client, 'ledger');

    // Act
    const alone = await leaseAll(ledger, [1, 2]);
    const refused = await leaseAll(ledger, [3, 4]);

    // Assess
    expect(inputs.map(commandOf)).toEqual([
      'transaction of 2',
      'update of line 1',
      'update of line 2',
      'transaction of 2',
    ]);
    expect(alone.map((lease) => lease.status === 'fulfilled' && lease.value)).toEqual([
      { kind: 'acquired', attempt: 3, failures: {}, releases: 0, unanswered: 0, earlierSet: 'set-earlier' },
      { kind: 'acquired', attempt: 3, failures: {}, releases: 0, unanswered: 0, earlierSet: 'set-earlier' },
    ]);
    expect(refused.map((lease) => lease.status)).toEqual(['rejected', 'rejected']);
  });
});
