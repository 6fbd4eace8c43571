import { createHash } from 'node:crypto';
import type { BedrockErrorName } from '../../shared/failures.ts';
import { mulberry32 } from './completion.ts';
import { isBedrockErrorName } from './wire-errors.ts';

/** Errors the stand-in can inject at random, at these rates (0 to 1) per request. */
export type FaultRates = Partial<Record<BedrockErrorName | 'slow', number>>;

export interface FaultSettings {
  readonly rates?: FaultRates;
  /** How much a "slow" fault delays a response, in real milliseconds whatever the speed factor. */
  readonly slowMs?: number;
}

export type Fault =
  | { readonly kind: 'error'; readonly error: BedrockErrorName }
  | { readonly kind: 'slow'; readonly delayMs: number };

/**
 * A marker anywhere in a request's text asks for faults on that request: `[[fault:ThrottlingException x2]]`
 * fails its first two attempts with a throttle and lets the third through; without `xN` it always fails.
 * `[[fault:slow x1]]` delays the first attempt by `slowMs`. Attempts are counted per distinct request body,
 * so two records with the same marker each get their own faults.
 */
const MARKER = /\[\[fault:(\w+)(?:\s+x(\d+))?\]\]/g;

export class FaultInjector {
  private readonly attemptsByRequest = new Map<string, number>();
  private readonly random: () => number;
  private readonly rates: FaultRates;
  private readonly slowMs: number;

  constructor(settings: FaultSettings, seed: number) {
    this.rates = settings.rates ?? {};
    this.slowMs = settings.slowMs ?? 3_000;
    this.random = mulberry32(seed ^ 0x5eed);
  }

  /** The faults for this request, marker-asked first, then drawn at the configured rates. */
  faultsFor(bodyText: string): Fault[] {
    const faults = this.markedFaults(bodyText);
    for (const [kind, rate] of Object.entries(this.rates)) {
      if (rate !== undefined && rate > 0 && this.random() < rate) faults.push(this.fault(kind));
    }
    return faults;
  }

  private markedFaults(bodyText: string): Fault[] {
    const markers = [...bodyText.matchAll(MARKER)];
    if (markers.length === 0) return [];
    const requestKey = createHash('sha256').update(bodyText).digest('hex');
    const attempt = (this.attemptsByRequest.get(requestKey) ?? 0) + 1;
    this.attemptsByRequest.set(requestKey, attempt);
    return markers
      .filter(
        ([, kind, times]) =>
          (kind === 'slow' || isBedrockErrorName(kind ?? '')) &&
          (times === undefined || attempt <= Number(times)),
      )
      .map(([, kind]) => this.fault(kind ?? ''));
  }

  private fault(kind: string): Fault {
    return kind === 'slow'
      ? { kind: 'slow', delayMs: this.slowMs }
      : { kind: 'error', error: kind as BedrockErrorName };
  }
}
