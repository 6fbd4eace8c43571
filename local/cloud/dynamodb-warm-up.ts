import { randomUUID } from 'node:crypto';
import { CreateTableCommand, DeleteTableCommand } from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
  GetCommand,
  PutCommand,
  QueryCommand,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import type { AwsClients } from '../../functions/adapters/clients.ts';
import { LEDGER_TABLE } from '../../shared/contract/ledger-table.ts';

/** Rounds of the ledger's operations, and how many run side by side in each. */
const ROUNDS = 3;
const LANES = 8;

/**
 * DynamoDB Local compiles its request paths as they are first used: a job's first writes on a fresh local
 * cloud took 100 to 200 ms each, where a warm DynamoDB Local (and DynamoDB) answers in a few. Running the
 * kinds of request the ledger makes (conditional puts and updates, consistent reads, batch reads,
 * transactions, queries) on a scratch table of the ledger's key shape, with an index, before a job starts
 * keeps the time to a job's first call to what the pipeline itself costs. The table is dropped after.
 */
export async function warmUpDynamoDbLocal(
  clients: Pick<AwsClients, 'dynamodb' | 'documents'>,
): Promise<void> {
  const tableName = `warm-up-${randomUUID()}`;
  const { partitionKey, sortKey } = LEDGER_TABLE;
  await clients.dynamodb.send(
    new CreateTableCommand({
      TableName: tableName,
      BillingMode: 'PAY_PER_REQUEST',
      KeySchema: [
        { AttributeName: partitionKey, KeyType: 'HASH' },
        { AttributeName: sortKey, KeyType: 'RANGE' },
      ],
      AttributeDefinitions: [
        { AttributeName: partitionKey, AttributeType: 'S' },
        { AttributeName: sortKey, AttributeType: 'S' },
        { AttributeName: 'state', AttributeType: 'S' },
      ],
      // An index, as the ledger's: its upkeep is part of every write's path.
      GlobalSecondaryIndexes: [
        {
          IndexName: 'by-state',
          KeySchema: [{ AttributeName: 'state', KeyType: 'HASH' }],
          Projection: { ProjectionType: 'KEYS_ONLY' },
        },
      ],
    }),
  );
  try {
    for (let round = 0; round < ROUNDS; round += 1)
      await Promise.all(
        Array.from({ length: LANES }, (_, lane) => ledgerRequests(clients, tableName, `${round}-${lane}`)),
      );
  } finally {
    await clients.dynamodb.send(new DeleteTableCommand({ TableName: tableName }));
  }
}

async function ledgerRequests(
  { documents }: Pick<AwsClients, 'documents'>,
  TableName: string,
  id: string,
): Promise<void> {
  const { partitionKey, sortKey } = LEDGER_TABLE;
  const key = (name: string) => ({ [partitionKey]: `WARM#${id}`, [sortKey]: name });
  await documents.send(
    new PutCommand({
      TableName,
      Item: { ...key('item'), count: 0, state: 'new' },
      ConditionExpression: `attribute_not_exists(${partitionKey})`,
    }),
  );
  await documents.send(
    new UpdateCommand({
      TableName,
      Key: key('item'),
      UpdateExpression: 'SET #state = :state ADD #count :one',
      ConditionExpression: `attribute_exists(${partitionKey}) AND #state <> :state`,
      ExpressionAttributeNames: { '#state': 'state', '#count': 'count' },
      ExpressionAttributeValues: { ':state': 'seen', ':one': 1 },
    }),
  );
  await documents.send(new GetCommand({ TableName, Key: key('item'), ConsistentRead: true }));
  await documents.send(
    new BatchGetCommand({ RequestItems: { [TableName]: { Keys: [key('item'), key('absent')] } } }),
  );
  await documents.send(
    new TransactWriteCommand({
      TransactItems: [
        { Put: { TableName, Item: { ...key('other'), state: 'new' } } },
        {
          Update: {
            TableName,
            Key: key('item'),
            UpdateExpression: 'ADD #count :one',
            ExpressionAttributeNames: { '#count': 'count' },
            ExpressionAttributeValues: { ':one': 1 },
          },
        },
      ],
    }),
  );
  await documents.send(
    new QueryCommand({
      TableName,
      KeyConditionExpression: `${partitionKey} = :pk`,
      ExpressionAttributeValues: { ':pk': `WARM#${id}` },
    }),
  );
}
