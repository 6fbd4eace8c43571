import type { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import type { EnqueuePorts } from '../../shared/pipeline/enqueue.ts';
import type { FinalizePorts } from '../../shared/pipeline/finalize.ts';
import type { RecordQueue, TokenBudget } from '../../shared/pipeline/ports.ts';
import type { SweepPorts } from '../../shared/pipeline/sweeper.ts';
import type { WorkerPorts } from '../../shared/pipeline/worker-batch.ts';
import { BedrockInvoker } from './bedrock-invoker.ts';
import type { AwsClients } from './clients.ts';
import { DynamoDbLedger } from './dynamodb-ledger.ts';
import { BusEventPublisher, type PutEvent, QueueDeadLetters, QueueFinalizeTrigger } from './events.ts';
import { S3ObjectStore } from './s3-object-store.ts';
import { SqsRecordQueue } from './sqs-record-queue.ts';

/** Where the pipeline's state and queues are: a function's settings on Lambda, the local cloud's resources locally. */
export interface PipelineAddresses {
  readonly tableName: string;
  readonly recordQueueUrl: string;
  readonly recordDlqUrl: string;
  readonly finalizeQueueUrl: string;
  readonly retentionDays?: number;
}

/** How a function reaches AWS: its clients, how it puts events on the bus, and how it sees each port. */
export interface Wiring {
  readonly clients: AwsClients;
  /** Absent for a function that puts nothing on the bus (the worker). */
  readonly putEvent?: PutEvent;
  /** The port as `functionName` sees it; as it is, unless a local run injects faults. */
  readonly seenBy?: <Port extends object>(functionName: string, portName: string, port: Port) => Port;
}

type Needs<Name extends keyof PipelineAddresses> = Pick<PipelineAddresses, Name | 'retentionDays'>;

/**
 * Each function's ports, built the one way the Lambda entry points and the local pipeline share: the same
 * adapters on the addresses each function is given, whichever cloud they run on.
 */
export function functionPorts(wiring: Wiring) {
  const { clients } = wiring;
  const seen = <Ports extends object>(functionName: string, ports: Ports): Ports =>
    wiring.seenBy === undefined
      ? ports
      : (Object.fromEntries(
          Object.entries(ports).map(([name, port]) => [
            name,
            wiring.seenBy?.(functionName, name, port as object),
          ]),
        ) as Ports);
  const ledger = (addresses: Needs<'tableName'>) =>
    new DynamoDbLedger(clients.documents, addresses.tableName, Date.now, addresses.retentionDays);
  const store = () => new S3ObjectStore(clients.s3);
  const events = () => {
    if (wiring.putEvent === undefined)
      throw new Error('this function was wired without a bus to put events on');
    return new BusEventPublisher(wiring.putEvent);
  };
  const finalize = (addresses: Needs<'finalizeQueueUrl'>) =>
    new QueueFinalizeTrigger(clients.sqs, addresses.finalizeQueueUrl);
  const queue = (addresses: Needs<'recordQueueUrl'>) =>
    new SqsRecordQueue(clients.sqs, addresses.recordQueueUrl);
  return {
    enqueue: (addresses: Needs<'tableName' | 'recordQueueUrl' | 'finalizeQueueUrl'>): EnqueuePorts => {
      const bus = events();
      return seen('enqueue', {
        store: store(),
        ledger: ledger(addresses),
        queue: queue(addresses),
        events: bus,
        continuation: bus,
        finalize: finalize(addresses),
      });
    },
    worker: (
      addresses: Needs<'tableName' | 'recordQueueUrl' | 'finalizeQueueUrl'>,
      budget: TokenBudget,
      bedrock: BedrockRuntimeClient = clients.bedrock,
    ): WorkerPorts & { readonly queue: RecordQueue } => ({
      ...seen('worker', {
        store: store(),
        ledger: ledger(addresses),
        queue: queue(addresses),
        finalize: finalize(addresses),
        budget,
      }),
      model: new BedrockInvoker(bedrock),
    }),
    finalizer: (addresses: Needs<'tableName' | 'finalizeQueueUrl'>): FinalizePorts =>
      seen('finalizer', {
        store: store(),
        ledger: ledger(addresses),
        events: events(),
        finalize: finalize(addresses),
      }),
    sweeper: (addresses: Needs<'tableName' | 'recordDlqUrl' | 'finalizeQueueUrl'>): SweepPorts => {
      const bus = events();
      return {
        ledger: ledger(addresses),
        deadLetters: new QueueDeadLetters(clients.sqs, addresses.recordDlqUrl),
        events: bus,
        continuation: bus,
        finalize: finalize(addresses),
      };
    },
  };
}
