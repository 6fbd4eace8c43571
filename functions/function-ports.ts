import type { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import type { WatchPorts } from '../shared/batch/watch.ts';
import type { DeadlineAlarms, RecordQueue, TokenBudget } from '../shared/core/ports.ts';
import type { EnqueuePorts } from '../shared/pipeline/enqueue.ts';
import type { FinalizePorts } from '../shared/pipeline/finalize.ts';
import type { SweepPorts } from '../shared/pipeline/sweeper.ts';
import type { QuotaReport } from '../shared/quotas/pool-rates.ts';
import type { WorkerPorts } from '../shared/worker/batch.ts';
import { BedrockBatchJobs } from './adapters/bedrock-batch-jobs.ts';
import { BedrockInvoker } from './adapters/bedrock-invoker.ts';
import type { AwsClients } from './adapters/clients.ts';
import { DynamoDbLedger } from './adapters/dynamodb-ledger.ts';
import {
  BusEventPublisher,
  type PutEvent,
  QueueDeadLetters,
  QueueFinalizeTrigger,
} from './adapters/events.ts';
import { S3ObjectStore } from './adapters/s3-object-store.ts';
import { SqsDeadlineAlarms } from './adapters/sqs-deadline-alarms.ts';
import { SqsRecordQueue } from './adapters/sqs-record-queue.ts';

/** Where the pipeline's state and queues are: a function's settings on Lambda, the local cloud's resources locally. */
export interface PipelineAddresses {
  readonly tableName: string;
  readonly recordQueueUrl: string;
  readonly recordDlqUrl: string;
  readonly finalizeQueueUrl: string;
  /** The queue of deadline alarms the batch watcher reads; without it the scheduled sweep keeps deadlines. */
  readonly deadlineQueueUrl?: string;
  readonly retentionDays?: number;
}

/** How a function reaches AWS: its clients, how it puts events on the bus, and how it sees each port. */
export interface Wiring {
  readonly clients: AwsClients;
  /** Absent for a function that puts nothing on the bus (the worker). */
  readonly putEvent?: PutEvent;
  /** The service role Bedrock batch jobs run as; without it files run on demand whatever their lane. */
  readonly batchRoleArn?: string | undefined;
  /** Whether the deployment has a daily spending cap, whose day item completions then add to. */
  readonly countsDailySpend?: boolean;
  /** The port as `functionName` sees it; as it is, unless a local run injects faults. */
  readonly seenBy?: <Port extends object>(functionName: string, portName: string, port: Port) => Port;
}

type Needs<Name extends keyof PipelineAddresses> = Pick<
  PipelineAddresses,
  Name | 'retentionDays' | 'deadlineQueueUrl'
>;

/**
 * Each function's ports, built the one way the Lambda entry points and the local pipeline share: the same
 * adapters on the addresses each function is given, whichever cloud they run on.
 */
export function functionPorts(wiring: Wiring): FunctionPorts {
  return new FunctionPorts(wiring);
}

export class FunctionPorts {
  constructor(private readonly wiring: Wiring) {}

  enqueue(addresses: Needs<'tableName' | 'recordQueueUrl' | 'finalizeQueueUrl'>): EnqueuePorts {
    const bus = this.events();
    const batchJobs = this.batchJobs();
    return this.seen('enqueue', {
      store: this.store(),
      ledger: this.ledger(addresses),
      queue: this.queue(addresses),
      events: bus,
      continuation: bus,
      finalize: this.finalize(addresses),
      ...(batchJobs === undefined ? {} : { batchJobs }),
      ...this.alarms(addresses),
    });
  }

  /** The batch lane's watcher: it collects ended batch jobs and sends what they did not finish on demand. */
  batch(
    addresses: Needs<'tableName' | 'recordQueueUrl' | 'finalizeQueueUrl'>,
  ): WatchPorts & Partial<{ readonly alarms: DeadlineAlarms }> {
    const batchJobs = this.batchJobs();
    if (batchJobs === undefined) throw new Error('the batch watcher was wired without a batch service role');
    return this.seen('batch', {
      store: this.store(),
      ledger: this.ledger(addresses),
      queue: this.queue(addresses),
      finalize: this.finalize(addresses),
      batchJobs,
      ...this.alarms(addresses),
    });
  }

  private alarms(addresses: Pick<PipelineAddresses, 'deadlineQueueUrl'>): { alarms?: DeadlineAlarms } {
    const url = addresses.deadlineQueueUrl;
    return url === undefined ? {} : { alarms: new SqsDeadlineAlarms(this.wiring.clients.sqs, url) };
  }

  /** The Bedrock clients are real Bedrock's when a local run passes them. */
  worker(
    addresses: Needs<'tableName' | 'recordQueueUrl' | 'finalizeQueueUrl'>,
    budget: TokenBudget,
    bedrockIn: (region: string) => BedrockRuntimeClient = this.wiring.clients.bedrockIn,
  ): WorkerPorts & { readonly queue: RecordQueue } {
    const ports = {
      store: this.store(),
      ledger: this.ledger(addresses),
      queue: this.queue(addresses),
      finalize: this.finalize(addresses),
      budget,
    };
    return { ...this.seen('worker', ports), model: new BedrockInvoker(bedrockIn) };
  }

  finalizer(addresses: Needs<'tableName' | 'finalizeQueueUrl'>, quotas?: QuotaReport): FinalizePorts {
    return this.seen('finalizer', {
      store: this.store(),
      ledger: this.ledger(addresses),
      events: this.events(),
      finalize: this.finalize(addresses),
      ...(quotas === undefined ? {} : { quotas }),
    });
  }

  sweeper(addresses: Needs<'tableName' | 'recordDlqUrl' | 'finalizeQueueUrl'>): SweepPorts {
    const bus = this.events();
    return this.seen('sweeper', {
      ledger: this.ledger(addresses),
      deadLetters: new QueueDeadLetters(this.wiring.clients.sqs, addresses.recordDlqUrl),
      events: bus,
      continuation: bus,
      finalize: this.finalize(addresses),
    });
  }

  /** Each port as the function sees it (with a local run's faults, when it injects them). */
  private seen<Ports extends object>(functionName: string, ports: Ports): Ports {
    const { seenBy } = this.wiring;
    if (seenBy === undefined) return ports;
    return Object.fromEntries(
      Object.entries(ports).map(([name, port]) => [name, seenBy(functionName, name, port as object)]),
    ) as Ports;
  }

  private ledger(addresses: Needs<'tableName'>): DynamoDbLedger {
    const { clients, countsDailySpend } = this.wiring;
    return new DynamoDbLedger(clients.documents, addresses.tableName, {
      ...(addresses.retentionDays === undefined ? {} : { retentionDays: addresses.retentionDays }),
      ...(countsDailySpend === undefined ? {} : { countsDailySpend }),
    });
  }

  private batchJobs(): BedrockBatchJobs | undefined {
    const { batchRoleArn, clients } = this.wiring;
    return batchRoleArn === undefined ? undefined : new BedrockBatchJobs(clients.bedrockJobs, batchRoleArn);
  }

  private store(): S3ObjectStore {
    return new S3ObjectStore(this.wiring.clients.s3);
  }

  private events(): BusEventPublisher {
    if (this.wiring.putEvent === undefined)
      throw new Error('this function was wired without a bus to put events on');
    return new BusEventPublisher(this.wiring.putEvent);
  }

  private finalize(addresses: Needs<'finalizeQueueUrl'>): QueueFinalizeTrigger {
    return new QueueFinalizeTrigger(this.wiring.clients.sqs, addresses.finalizeQueueUrl);
  }

  private queue(addresses: Needs<'recordQueueUrl'>): SqsRecordQueue {
    return new SqsRecordQueue(this.wiring.clients.sqs, addresses.recordQueueUrl);
  }
}
