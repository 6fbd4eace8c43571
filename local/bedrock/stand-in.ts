import { createHash } from 'node:crypto';
import type http from 'node:http';
import type http2 from 'node:http2';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Catalog, defaultCatalog } from '../../shared/catalog/catalog.ts';
import { OUTPUT_TOKEN_BURNDOWN } from '../../shared/config.ts';
import type { MessagesBody } from '../../shared/input/records.ts';
import type { AuthSettings } from './auth.ts';
import { authenticate } from './auth.ts';
import { deterministicCompletion, PromptCache } from './completion.ts';
import { listenDualProtocol } from './dual-protocol-server.ts';
import { FaultInjector, type FaultSettings } from './faults.ts';
import { QuotaBoard, type QuotaSettings, type QuotaUsage, THROTTLE_MESSAGES } from './quota.ts';
import { countInputTokens } from './tokens.ts';
import { validateInvocation } from './validation.ts';
import { type Response, sendError, sendJson, WireError } from './wire-errors.ts';

/** The stand-in's quota unless given: generous, so that only tests about quotas meet it. */
export const STAND_IN_TOKENS_PER_MINUTE = 2_000_000;

export interface BedrockStandInOptions {
  /** The region the stand-in serves; requests signed for another region are refused. Default us-west-2. */
  readonly region?: string;
  /** 0 picks a free port. The stand-in always listens on 127.0.0.1. */
  readonly port?: number;
  /** Seeds completions and random faults. */
  readonly seed?: number;
  /** Multiplies every latency: 1 is realistic, 0 answers at once. */
  readonly speed?: number;
  readonly latency?: { readonly firstTokenMs: number; readonly perOutputTokenMs: number };
  /** The quota of every model id without its own entry in `quotaByModel`. */
  readonly quota?: QuotaSettings;
  readonly quotaByModel?: Readonly<Record<string, QuotaSettings>>;
  /** Quota tokens each output token costs: 5 for Claude 4 and later. */
  readonly outputBurndown?: number;
  readonly faults?: FaultSettings;
  readonly auth?: Omit<AuthSettings, 'region'>;
  readonly catalog?: Catalog;
  /** The clock quotas and the prompt cache run on (tests move it by hand). */
  readonly now?: () => number;
}

export interface StandInState {
  readonly region: string;
  readonly responses: Readonly<Record<string, number>>;
  /** Faults injected (by rate or marker), by kind: a Bedrock error name or "slow". */
  readonly injectedFaults: Readonly<Record<string, number>>;
  readonly quotas: readonly QuotaUsage[];
  /**
   * The requests answered, each distinct request body once however often it was sent, and their usage: what
   * a caller that counts every record exactly once must report.
   */
  readonly distinctAnswers: {
    readonly requests: number;
    readonly inputTokens: number;
    readonly outputTokens: number;
    readonly cacheCreationInputTokens: number;
    readonly cacheReadInputTokens: number;
  };
}

export interface BedrockStandIn {
  readonly endpoint: string;
  readonly port: number;
  readonly region: string;
  /** Quotas, their current use and what was answered, for tests and benchmarks (also GET /_stand-in/state). */
  state(): StandInState;
  close(): Promise<void>;
}

const ROUTE = /^\/model\/([^/]+)\/(invoke|count-tokens)$/;
const STATE_PATH = '/_stand-in/state';

/**
 * A local Amazon Bedrock runtime for Claude: InvokeModel and CountTokens over HTTP/2 and HTTP/1.1, with
 * Bedrock's validation (from the pipeline's own catalog), per-model token quotas with output burndown,
 * a latency model, deterministic completions, prompt caching and injectable faults, every error in
 * Bedrock's wire shape.
 */
export async function startBedrockStandIn(options: BedrockStandInOptions = {}): Promise<BedrockStandIn> {
  const region = options.region ?? 'us-west-2';
  const catalog = options.catalog ?? defaultCatalog;
  const now = options.now ?? Date.now;
  const seed = options.seed ?? 1;
  const speed = options.speed ?? 1;
  const latency = options.latency ?? { firstTokenMs: 500, perOutputTokenMs: 20 };
  const quotas = new QuotaBoard(
    options.quota ?? { tokensPerMinute: STAND_IN_TOKENS_PER_MINUTE },
    options.quotaByModel ?? {},
    options.outputBurndown ?? OUTPUT_TOKEN_BURNDOWN,
    now,
  );
  const faults = new FaultInjector(options.faults ?? {}, seed);
  const cache = new PromptCache();
  const responses: Record<string, number> = {};
  const injectedFaults: Record<string, number> = {};
  const auth: AuthSettings = { region, ...options.auth };

  const count = (outcome: string) => {
    responses[outcome] = (responses[outcome] ?? 0) + 1;
  };
  const answeredDigests = new Set<string>();
  const distinctAnswers = {
    requests: 0,
    inputTokens: 0,
    outputTokens: 0,
    cacheCreationInputTokens: 0,
    cacheReadInputTokens: 0,
  };
  const state = (): StandInState => ({
    region,
    responses: { ...responses },
    injectedFaults: { ...injectedFaults },
    quotas: quotas.usage(),
    distinctAnswers: { ...distinctAnswers },
  });

  const invoke = async (modelId: string, raw: Buffer, response: Response): Promise<void> => {
    const request = validateInvocation(modelId, raw, region, catalog);
    const body = request.body as unknown as MessagesBody;
    const input = countInputTokens(body);
    if (input.total + request.maxTokens > request.window) {
      throw new WireError('ValidationException', 'Input is too long for requested model.');
    }
    for (const fault of faults.faultsFor(raw.toString('utf8'))) {
      const kind = fault.kind === 'error' ? fault.error : 'slow';
      injectedFaults[kind] = (injectedFaults[kind] ?? 0) + 1;
      if (fault.kind === 'error') throw new WireError(fault.error);
      await sleep(fault.delayMs);
    }
    const cached = input.cachePrefix;
    const cacheKey =
      cached !== undefined && cached.tokens >= request.model.minCacheablePrefixTokens
        ? `${request.modelId}:${cached.fingerprint}`
        : undefined;
    const cacheUse = cacheKey === undefined ? undefined : cache.peek(cacheKey, now());
    const cacheTokens = cacheUse === undefined || cached === undefined ? 0 : cached.tokens;
    const used = {
      input: input.total - cacheTokens,
      cacheWrite: cacheUse === 'write' ? cacheTokens : 0,
      cacheRead: cacheUse === 'read' ? cacheTokens : 0,
    };
    const admission = quotas.reserve(request.modelId, { ...used, maxTokens: request.maxTokens });
    if (!admission.admitted) throw new WireError('ThrottlingException', THROTTLE_MESSAGES[admission.cause]);
    if (cacheKey !== undefined) cache.touch(cacheKey, now());

    const completion = deterministicCompletion(
      `${request.modelId}\n${raw.toString('utf8')}`,
      seed,
      request.maxTokens,
    );
    const latencyMs = Math.round(
      (latency.firstTokenMs + completion.outputTokens * latency.perOutputTokenMs) * speed,
    );
    if (latencyMs > 0) await sleep(latencyMs);
    quotas.settle(admission.reservation, { ...used, output: completion.outputTokens });

    const usage = {
      input_tokens: used.input,
      cache_creation_input_tokens: used.cacheWrite,
      cache_read_input_tokens: used.cacheRead,
      output_tokens: completion.outputTokens,
    };
    const digest = createHash('sha256').update(modelId).update('\n').update(raw).digest('hex');
    if (!answeredDigests.has(digest)) {
      answeredDigests.add(digest);
      distinctAnswers.requests += 1;
      distinctAnswers.inputTokens += usage.input_tokens;
      distinctAnswers.outputTokens += usage.output_tokens;
      distinctAnswers.cacheCreationInputTokens += usage.cache_creation_input_tokens;
      distinctAnswers.cacheReadInputTokens += usage.cache_read_input_tokens;
    }
    sendJson(
      response,
      200,
      {
        id: completion.id,
        type: 'message',
        role: 'assistant',
        model: request.model.anthropicNames[0] ?? request.model.bedrockId,
        content: [{ type: 'text', text: completion.text }],
        stop_reason: completion.stopReason,
        stop_sequence: null,
        usage,
      },
      {
        'x-amzn-bedrock-input-token-count': usage.input_tokens,
        'x-amzn-bedrock-output-token-count': usage.output_tokens,
        'x-amzn-bedrock-cache-read-input-token-count': usage.cache_read_input_tokens,
        'x-amzn-bedrock-cache-write-input-token-count': usage.cache_creation_input_tokens,
        'x-amzn-bedrock-invocation-latency': latencyMs,
      },
    );
  };

  const countTokens = (modelId: string, raw: Buffer, response: Response): void => {
    const invokeBody = invokeBodyOfCountTokens(raw);
    const request = validateInvocation(modelId, invokeBody, region, catalog);
    sendJson(response, 200, { inputTokens: countInputTokens(request.body as unknown as MessagesBody).total });
  };

  const handle = async (request: http.IncomingMessage | http2.Http2ServerRequest, response: Response) => {
    const path = (request.url ?? '/').split('?')[0] ?? '/';
    if (request.method === 'GET' && path === STATE_PATH) {
      sendJson(response, 200, state());
      return;
    }
    const route = ROUTE.exec(path);
    try {
      if (request.method !== 'POST' || route === null) {
        throw new WireError('ResourceNotFoundException', `No operation at ${request.method} ${path}.`);
      }
      authenticate(request.headers.authorization, auth);
      const raw = await readBody(request, catalog.requestBodyLimitBytes);
      const modelId = decodeURIComponent(route[1] ?? '');
      if (route[2] === 'invoke') await invoke(modelId, raw, response);
      else countTokens(modelId, raw, response);
      count('200');
    } catch (error) {
      const wire = error instanceof WireError ? error : new WireError('InternalServerException');
      if (!(error instanceof WireError)) console.error('bedrock stand-in: unexpected error', error);
      count(wire.type);
      if (!response.headersSent) sendError(response, wire);
    }
  };

  const server = await listenDualProtocol((request, response) => {
    void handle(request, response);
  }, options.port ?? 0);

  return { endpoint: server.endpoint, port: server.port, region, state, close: () => server.close() };
}

async function readBody(request: AsyncIterable<Buffer | string>, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    const piece = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    size += piece.length;
    // Keep reading to the end so the client gets an answer, but stop keeping what is over the limit.
    if (size <= limit) chunks.push(piece);
  }
  if (size > limit) {
    throw new WireError(
      'ValidationException',
      `The request body is ${size} bytes, more than the ${limit}-byte limit.`,
    );
  }
  return Buffer.concat(chunks, size);
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
