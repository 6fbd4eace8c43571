import { mulberry32 } from '../bedrock/completion.ts';

/** What goes wrong around the functions, at these rates (0 to 1), drawn from one seed so a run can be replayed. */
export interface ChaosSettings {
  readonly seed: number;
  /**
   * Chance, by function, that it dies at a step: right before, or right after, one of its calls to S3, SQS,
   * DynamoDB, the bus or the budget. "After" is the hard case: the call took effect and nothing after it ran.
   * A function that makes thousands of calls in one invocation (the finalizer) needs a lower rate to finish.
   */
  readonly crashRates: Readonly<Partial<Record<ChaosFunction, number>>>;
  /**
   * By schedule, not by chance: every step of every function dies once before its call (its first time)
   * and once after it (the first time after that its call succeeds), so a run proves each step, the rare
   * ones too.
   */
  readonly crashEveryStep?: boolean;
  /** Chance S3 hands EventBridge an "Object Created" event twice. */
  readonly duplicateEventRate: number;
  /** Chance SQS gives a batch of records to two invocations at once. */
  readonly duplicateDeliveryRate: number;
  /** Chance a PutEvents call fails. */
  readonly failedPublishRate: number;
}

/** The functions a chaos run can crash. */
export type ChaosFunction = 'enqueue' | 'worker' | 'finalizer' | 'batch' | 'sweeper';

/** A function dying at an injected point: the invocation ends there, as a timeout or an OOM would end it. */
export class InjectedCrash extends Error {
  constructor(readonly step: string) {
    super(`injected crash ${step}`);
    this.name = 'InjectedCrash';
  }
}

/** Methods that do not return a promise (streams, listings, upload handles): passed through, never crashed. */
const NOT_CALLS = new Set(['stream', 'list', 'upload', 'listActiveJobs', 'countedRecords']);

/** The faults a chaos run injected, by kind, for the run's report. */
export interface ChaosReport {
  /** Crashes by step: `worker ledger.completeRecords after`. */
  readonly crashes: Readonly<Record<string, number>>;
  /** Every step the functions took (`worker ledger.completeRecords`), with how often. */
  readonly steps: Readonly<Record<string, number>>;
  readonly crashCount: number;
  readonly duplicateEvents: number;
  readonly duplicateDeliveries: number;
  readonly failedPublishes: number;
}

export class Chaos {
  private readonly crashes = new Map<string, number>();
  private readonly steps = new Map<string, number>();
  private duplicateEvents = 0;
  private duplicateDeliveries = 0;
  private failedPublishes = 0;
  private readonly random: () => number;

  constructor(readonly settings: ChaosSettings) {
    this.random = mulberry32(settings.seed);
  }

  /**
   * `port` as the function `functionName` sees it: each call may end the invocation just before it is made
   * or just after it took effect.
   */
  crashing<Port extends object>(functionName: string, portName: string, port: Port): Port {
    return new Proxy(port, {
      get: (target, property, receiver) => {
        const value: unknown = Reflect.get(target, property, receiver);
        if (typeof value !== 'function' || typeof property !== 'string' || NOT_CALLS.has(property))
          return value;
        const step = `${functionName} ${portName}.${property}`;
        return async (...args: unknown[]) => {
          const when = this.crashPoint(functionName, step);
          if (when === 'before') throw this.crash(`${step} before`);
          const result: unknown = await value.apply(target, args);
          if (when === 'after') throw this.crash(`${step} after`);
          return result;
        };
      },
    });
  }

  /** Whether this S3 event is delivered twice. */
  duplicateEvent(): boolean {
    const duplicate = this.chance(this.settings.duplicateEventRate);
    if (duplicate) this.duplicateEvents += 1;
    return duplicate;
  }

  /** Whether this batch goes to a second invocation too. */
  duplicateDelivery(): boolean {
    const duplicate = this.chance(this.settings.duplicateDeliveryRate);
    if (duplicate) this.duplicateDeliveries += 1;
    return duplicate;
  }

  /** Throws when this PutEvents call is to fail. */
  publishOrFail(): void {
    if (!this.chance(this.settings.failedPublishRate)) return;
    this.failedPublishes += 1;
    throw Object.assign(new Error('injected PutEvents failure'), { name: 'InternalException' });
  }

  report(): ChaosReport {
    const crashes = Object.fromEntries([...this.crashes.entries()].sort(([a], [b]) => a.localeCompare(b)));
    return {
      crashes,
      steps: Object.fromEntries([...this.steps.entries()].sort(([a], [b]) => a.localeCompare(b))),
      crashCount: [...this.crashes.values()].reduce((sum, count) => sum + count, 0),
      duplicateEvents: this.duplicateEvents,
      duplicateDeliveries: this.duplicateDeliveries,
      failedPublishes: this.failedPublishes,
    };
  }

  /** Crashes recorded at steps whose name matches `pattern`. */
  crashesAt(pattern: RegExp): number {
    return [...this.crashes.entries()]
      .filter(([step]) => pattern.test(step))
      .reduce((sum, [, count]) => sum + count, 0);
  }

  private crashPoint(functionName: string, step: string): 'before' | 'after' | undefined {
    this.steps.set(step, (this.steps.get(step) ?? 0) + 1);
    if (this.settings.crashEveryStep === true) {
      // An "after" whose call fails by itself ends nothing: it stays due until a call succeeds.
      if (!this.crashes.has(`${step} before`)) return 'before';
      if (!this.crashes.has(`${step} after`)) return 'after';
    }
    const rates: Readonly<Record<string, number | undefined>> = this.settings.crashRates;
    if (!this.chance(rates[functionName] ?? 0)) return undefined;
    return this.random() < 0.5 ? 'before' : 'after';
  }

  private crash(step: string): InjectedCrash {
    this.crashes.set(step, (this.crashes.get(step) ?? 0) + 1);
    return new InjectedCrash(step);
  }

  private chance(rate: number): boolean {
    return rate > 0 && this.random() < rate;
  }
}
