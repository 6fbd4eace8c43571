import type { AwsClients } from '../../functions/adapters/clients.ts';

/** What a DynamoDB write touched, by the ledger's key layout. */
export type ItemKind = 'job' | 'record' | 'record-id' | 'budget' | 'other';

type Key = Record<string, { S?: string } | undefined>;

/** The part of the SDK's middleware stack the meter uses, alike for every client. */
interface MiddlewareStack {
  add(
    middleware: (
      next: (args: { input: unknown }) => Promise<{ output: unknown }>,
      context: { commandName?: string },
    ) => (args: { input: unknown }) => Promise<{ output: unknown }>,
    options: { step: 'build'; name: string; override: boolean },
  ): void;
}

/**
 * Counts the requests the pipeline makes through the local cloud's SDK clients, for benchmarks and tests:
 * requests by service and operation, DynamoDB item writes by the kind of item written (a transaction counts
 * each item), and how often each record's message was received from SQS.
 */
export class RequestMeter {
  readonly requests = new Map<string, number>();
  readonly dynamodbWrites = new Map<ItemKind, number>();
  /** Receives per record (`jobId#lineNumber`), counting a record sent again as the same record. */
  readonly receivesByRecord = new Map<string, number>();

  /** Meters every request sent through `clients` from now on. */
  attach(clients: AwsClients): void {
    for (const [service, client] of [
      ['s3', clients.s3],
      ['sqs', clients.sqs],
      ['dynamodb', clients.dynamodb],
    ] as const) {
      (client.middlewareStack as unknown as MiddlewareStack).add(
        (next, context) => async (args) => {
          const operation = String(context.commandName ?? 'unknown').replace(/Command$/, '');
          this.add(this.requests, `${service}:${operation}`, 1);
          if (service === 'dynamodb') this.countWrites(operation, args.input as Record<string, unknown>);
          const result = await next(args);
          if (operation === 'ReceiveMessage')
            this.countReceives(result.output as { Messages?: Array<{ Body?: string }> });
          return result;
        },
        { step: 'build', name: `requestMeter-${service}`, override: true },
      );
    }
  }

  count(service: 's3' | 'sqs' | 'dynamodb', operation?: string): number {
    let total = 0;
    for (const [name, value] of this.requests) {
      if (name === `${service}:${operation}` || (operation === undefined && name.startsWith(`${service}:`))) {
        total += value;
      }
    }
    return total;
  }

  private countWrites(operation: string, input: Record<string, unknown>): void {
    if (operation === 'PutItem' || operation === 'UpdateItem' || operation === 'DeleteItem') {
      const key = (operation === 'PutItem' ? input.Item : input.Key) as Key;
      this.add(this.dynamodbWrites, kindOf(key), 1);
    }
    if (operation === 'TransactWriteItems') {
      for (const item of (input.TransactItems ?? []) as Array<Record<string, { Key?: Key; Item?: Key }>>) {
        const action = Object.values(item)[0];
        this.add(this.dynamodbWrites, kindOf(action?.Key ?? action?.Item ?? {}), 1);
      }
    }
  }

  private countReceives(output: { Messages?: Array<{ Body?: string }> } | undefined): void {
    for (const message of output?.Messages ?? []) {
      try {
        const body = JSON.parse(message.Body ?? '') as { jobId?: unknown; lineNumber?: unknown };
        if (typeof body.jobId === 'string' && typeof body.lineNumber === 'number') {
          this.add(this.receivesByRecord, `${body.jobId}#${body.lineNumber}`, 1);
        }
      } catch {
        // Not a record message (the finalize queue's): not a record's receive.
      }
    }
  }

  private add<Name>(counts: Map<Name, number>, name: Name, value: number): void {
    counts.set(name, (counts.get(name) ?? 0) + value);
  }
}

function kindOf(key: Key): ItemKind {
  const pk = key.pk?.S ?? '';
  const sk = key.sk?.S ?? '';
  if (pk.startsWith('BUDGET#')) return 'budget';
  if (sk === 'JOB') return 'job';
  if (sk.startsWith('REC#')) return 'record';
  if (sk.startsWith('ID#')) return 'record-id';
  return 'other';
}
