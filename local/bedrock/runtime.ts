import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  answerSeconds,
  type Catalog,
  type CatalogModel,
  type ModelLatency,
  takesTier,
} from '../../shared/catalog/catalog.ts';
import {
  DEFAULT_SERVICE_TIER,
  type ServiceTier,
  serviceTierOf,
} from '../../shared/contract/service-tiers.ts';
import type { MessagesBody } from '../../shared/input/records.ts';
import { poolName } from '../../shared/quotas/pools.ts';
import { type Completion, deterministicCompletion } from './completion.ts';
import type { FaultInjector } from './faults.ts';
import { PromptCache } from './prompt-cache.ts';
import { type QuotaBoard, type QuotaUsage, THROTTLE_MESSAGES } from './quota.ts';
import { countInputTokens } from './tokens.ts';
import { validateInvocation } from './validation.ts';
import { WireError } from './wire-errors.ts';

export interface StandInState {
  /** The home region (batch jobs run there); `quotas` says the region of each pool. */
  readonly region: string;
  readonly responses: Readonly<Record<string, number>>;
  /** Faults injected (by rate or marker), by kind: a Bedrock error name or "slow". */
  readonly injectedFaults: Readonly<Record<string, number>>;
  readonly quotas: readonly QuotaUsage[];
  /** Requests answered per service tier. */
  readonly servedTiers: Readonly<Partial<Record<ServiceTier, number>>>;
  /**
   * The requests answered, each distinct request body once however often it was sent, and their usage: what
   * a caller that counts every record exactly once must report.
   */
  readonly distinctAnswers: AnswerTotals;
  /**
   * Every request answered and so billed, repeats included, and whether or not its caller was still there
   * to read the answer: what the account pays.
   */
  readonly billed: AnswerTotals;
}

/** Requests answered and their usage. */
export interface AnswerTotals {
  readonly requests: number;
  readonly inputTokens: number;
  readonly outputTokens: number;
  readonly cacheCreationInputTokens: number;
  readonly cacheReadInputTokens: number;
}

const noAnswers = (): { -readonly [Name in keyof AnswerTotals]: number } => ({
  requests: 0,
  inputTokens: 0,
  outputTokens: 0,
  cacheCreationInputTokens: 0,
  cacheReadInputTokens: 0,
});

export interface StandInRuntimeSettings {
  /** The home region. */
  readonly region: string;
  readonly catalog: Catalog;
  readonly now: () => number;
  readonly seed: number;
  /** Multiplies every latency: 1 is realistic, 0 answers at once. */
  readonly speed: number;
  /** One latency for every model, in place of each model's own from the catalog. */
  readonly latency: StandInLatency | undefined;
  readonly quotas: QuotaBoard;
  readonly faults: FaultInjector;
}

/** A latency given as milliseconds to the first token and per output token (tests' fixed figures). */
export interface StandInLatency {
  readonly firstTokenMs: number;
  readonly perOutputTokenMs: number;
}

/** Milliseconds to answer with `outputTokens` tokens, by a fixed latency or the model's catalog figures. */
function latencyOf(latency: StandInLatency | ModelLatency, outputTokens: number): number {
  return 'perOutputTokenMs' in latency
    ? latency.firstTokenMs + outputTokens * latency.perOutputTokenMs
    : answerSeconds(latency, outputTokens) * 1000;
}

/** An answer with Bedrock's response headers. */
export interface RuntimeAnswer {
  readonly body: unknown;
  readonly headers: Readonly<Record<string, string | number>>;
}

type TokensUsed = { readonly input: number; readonly cacheWrite: number; readonly cacheRead: number };

/**
 * What the stand-in's Bedrock runtime does with a request, apart from HTTP: validation, faults, the prompt
 * cache, quota admission and settlement, latency and a deterministic completion, and the tallies its state
 * reports.
 */
export class StandInRuntime {
  private readonly cache = new PromptCache();
  private readonly responses: Record<string, number> = {};
  private readonly injectedFaults: Record<string, number> = {};
  private readonly answeredDigests = new Set<string>();
  private readonly distinctAnswers = noAnswers();
  private readonly billed = noAnswers();
  private readonly servedTiers: Partial<Record<ServiceTier, number>> = {};

  constructor(private readonly settings: StandInRuntimeSettings) {}

  /**
   * A request signed for `region`: the model id must be callable there, and spends that region's quota (one
   * quota for every tier); a tier the model does not take is refused, as Bedrock refuses it.
   */
  async invoke(
    region: string,
    modelId: string,
    raw: Buffer,
    requestedTier: string | undefined,
  ): Promise<RuntimeAnswer> {
    const { catalog, now, quotas, seed, latency, speed } = this.settings;
    const request = validateInvocation(modelId, raw, region, catalog);
    const tier = tierServing(request.model, requestedTier);
    const pool = { region, modelId: request.modelId };
    const input = countInputTokens(request.body as unknown as MessagesBody);
    if (input.total + request.maxTokens > request.window) {
      throw new WireError('ValidationException', 'Input is too long for requested model.');
    }
    await this.injectFaults(raw);
    const cacheUse = this.cache.use(poolName(pool), input, request.model.minCacheablePrefixTokens, now());
    const used: TokensUsed = {
      input: input.total - cacheUse.read - cacheUse.write,
      cacheWrite: cacheUse.write,
      cacheRead: cacheUse.read,
    };
    const admission = quotas.reserve(pool, { ...used, maxTokens: request.maxTokens });
    if (!admission.admitted) throw new WireError('ThrottlingException', THROTTLE_MESSAGES[admission.cause]);

    // The answer is the model's, whichever profile or region served it.
    const completion = deterministicCompletion(
      `${request.model.bedrockId}\n${raw.toString('utf8')}`,
      seed,
      request.maxTokens,
    );
    const latencyMs = Math.round(
      (latencyOf(latency ?? request.model.latency, completion.outputTokens) * speed) /
        catalog.serviceTierOutputSpeed[tier],
    );
    if (latencyMs > 0) await sleep(latencyMs);
    // The entry is there for others once this request has been answered, not while it runs.
    cacheUse.commit(now());
    quotas.settle(admission.reservation, { ...used, output: completion.outputTokens });

    const usage = {
      input_tokens: used.input,
      cache_creation_input_tokens: used.cacheWrite,
      cache_read_input_tokens: used.cacheRead,
      output_tokens: completion.outputTokens,
    };
    this.countAnswer(request.model.bedrockId, raw, usage);
    this.servedTiers[tier] = (this.servedTiers[tier] ?? 0) + 1;
    return {
      body: messageResponse(request.model, completion, usage),
      headers: {
        'x-amzn-bedrock-input-token-count': usage.input_tokens,
        'x-amzn-bedrock-output-token-count': usage.output_tokens,
        'x-amzn-bedrock-cache-read-input-token-count': usage.cache_read_input_tokens,
        'x-amzn-bedrock-cache-write-input-token-count': usage.cache_creation_input_tokens,
        'x-amzn-bedrock-invocation-latency': latencyMs,
        'x-amzn-bedrock-service-tier': tier,
      },
    };
  }

  countTokens(region: string, modelId: string, raw: Buffer): { inputTokens: number } {
    const { catalog } = this.settings;
    const request = validateInvocation(modelId, invokeBodyOfCountTokens(raw), region, catalog);
    return { inputTokens: countInputTokens(request.body as unknown as MessagesBody).total };
  }

  /** Counts an answer by its status or error name. */
  count(outcome: string): void {
    this.responses[outcome] = (this.responses[outcome] ?? 0) + 1;
  }

  state(): StandInState {
    return {
      region: this.settings.region,
      responses: { ...this.responses },
      injectedFaults: { ...this.injectedFaults },
      quotas: this.settings.quotas.usage(),
      servedTiers: { ...this.servedTiers },
      distinctAnswers: { ...this.distinctAnswers },
      billed: { ...this.billed },
    };
  }

  private async injectFaults(raw: Buffer): Promise<void> {
    for (const fault of this.settings.faults.faultsFor(raw.toString('utf8'))) {
      const kind = fault.kind === 'error' ? fault.error : 'slow';
      this.injectedFaults[kind] = (this.injectedFaults[kind] ?? 0) + 1;
      if (fault.kind === 'error') throw new WireError(fault.error);
      await sleep(fault.delayMs);
    }
  }

  private countAnswer(modelId: string, raw: Buffer, usage: AnswerUsage): void {
    addAnswer(this.billed, usage);
    const digest = createHash('sha256').update(modelId).update('\n').update(raw).digest('hex');
    if (this.answeredDigests.has(digest)) return;
    this.answeredDigests.add(digest);
    addAnswer(this.distinctAnswers, usage);
  }
}

/** The tier that serves a request: the one asked for, if the model takes it; default when none is asked for. */
function tierServing(model: CatalogModel, requested: string | undefined): ServiceTier {
  const tier = requested === undefined ? DEFAULT_SERVICE_TIER : serviceTierOf(requested);
  if (tier === undefined) throw new WireError('ValidationException', `Invalid service tier: ${requested}.`);
  if (!takesTier(model, tier))
    throw new WireError('ValidationException', 'The provided service tier is not supported for this model.');
  return tier;
}

/** CountTokens wraps the InvokeModel body, base64-encoded: `{"input": {"invokeModel": {"body": "..."}}}`. */
function invokeBodyOfCountTokens(raw: Buffer): Buffer {
  let value: { input?: { invokeModel?: { body?: unknown } } };
  try {
    value = JSON.parse(raw.toString('utf8'));
  } catch {
    throw new WireError('ValidationException', 'Malformed CountTokens request.');
  }
  const body = value.input?.invokeModel?.body;
  if (typeof body !== 'string') {
    throw new WireError(
      'ValidationException',
      'The stand-in counts tokens for input.invokeModel bodies only.',
    );
  }
  return Buffer.from(body, 'base64');
}

/** The Messages API response InvokeModel answers with, and a batch job writes as a record's modelOutput. */
export function messageResponse(
  model: CatalogModel,
  completion: Completion,
  usage: Readonly<Record<string, number>>,
): Record<string, unknown> {
  return {
    id: completion.id,
    type: 'message',
    role: 'assistant',
    model: model.anthropicNames[0] ?? model.bedrockId,
    content: [{ type: 'text', text: completion.text }],
    stop_reason: completion.stopReason,
    stop_sequence: null,
    usage,
  };
}

/** The usage of an answer, as the stand-in reports it (every count present). */
interface AnswerUsage {
  readonly input_tokens: number;
  readonly output_tokens: number;
  readonly cache_creation_input_tokens: number;
  readonly cache_read_input_tokens: number;
}

function addAnswer(totals: { -readonly [Name in keyof AnswerTotals]: number }, usage: AnswerUsage): void {
  totals.requests += 1;
  totals.inputTokens += usage.input_tokens;
  totals.outputTokens += usage.output_tokens;
  totals.cacheCreationInputTokens += usage.cache_creation_input_tokens;
  totals.cacheReadInputTokens += usage.cache_read_input_tokens;
}
