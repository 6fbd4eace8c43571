import type http from 'node:http';
import type http2 from 'node:http2';
import { type Catalog, catalogInUse } from '../../shared/catalog/catalog.ts';
import { OUTPUT_TOKEN_BURNDOWN } from '../../shared/config.ts';
import type { AuthSettings } from './auth.ts';
import { authenticate } from './auth.ts';
import {
  BatchJobBoard,
  type BatchJobChangeDetail,
  type BatchJobDescription,
  type BatchJobSettings,
  type BatchStorage,
  type BatchTurnaround,
  DEFAULT_TURNAROUND,
} from './batch-jobs.ts';
import { listenDualProtocol } from './dual-protocol-server.ts';
import { FaultInjector, type FaultSettings } from './faults.ts';
import { QuotaBoard, type QuotaSettings } from './quota.ts';
import { type StandInLatency, StandInRuntime, type StandInState } from './runtime.ts';
import { SERVICE_QUOTAS_TARGET, ServiceQuotasError, StandInServiceQuotas } from './service-quotas.ts';
import { type Response, sendError, sendJson, WireError } from './wire-errors.ts';

/** The stand-in's quota unless given: generous, so that only tests about quotas meet it. */
export const STAND_IN_TOKENS_PER_MINUTE = 2_000_000;

export interface BedrockStandInOptions {
  /** The home region: batch jobs run there. Default us-west-2. */
  readonly region?: string;
  /**
   * The source regions served, each with quotas of its own (the home region among them): a request signed
   * for another region is refused. Default the home region alone.
   */
  readonly regions?: readonly string[];
  /** 0 picks a free port. The stand-in always listens on 127.0.0.1. */
  readonly port?: number;
  /** Seeds completions and random faults. */
  readonly seed?: number;
  /** Multiplies every latency: 1 is realistic, 0 answers at once. */
  readonly speed?: number;
  /** One latency for every model; by default each model answers at its catalog latency. */
  readonly latency?: StandInLatency;
  /** The quota of every pool without its own entry in `quotaByModel`. */
  readonly quota?: QuotaSettings;
  /** Quotas by `<region>#<model id>` (one pool) or by model id (that id in every region). */
  readonly quotaByModel?: Readonly<Record<string, QuotaSettings>>;
  /** Quota tokens each output token costs: 5 for Claude 4 and later. */
  readonly outputBurndown?: number;
  readonly faults?: FaultSettings;
  readonly auth?: Omit<AuthSettings, 'regions'>;
  readonly catalog?: Catalog;
  /** The clock quotas and the prompt cache run on (tests move it by hand). */
  readonly now?: () => number;
  /** Batch inference: where jobs read and write (the local S3), how long they take, what goes wrong. */
  readonly batch?: {
    readonly storage?: BatchStorage;
    /** Scaled by `speed`, but for `hourMs`. */
    readonly turnaround?: Partial<BatchTurnaround>;
    readonly faults?: BatchJobSettings['faults'];
  };
}

export type { StandInState } from './runtime.ts';

export interface BedrockStandIn {
  readonly endpoint: string;
  readonly port: number;
  readonly region: string;
  readonly regions: readonly string[];
  /** Quotas, their current use and what was answered, for tests and benchmarks (also GET /_stand-in/state). */
  state(): StandInState;
  /** Every batch job created, oldest first. */
  batchJobs(): BatchJobDescription[];
  /** Hears each batch job state change, as Bedrock's EventBridge events tell them (best effort there too). */
  onBatchJobChange(listener: (change: BatchJobChangeDetail) => void): void;
  close(): Promise<void>;
}

/** InvokeModel's service tier, as the SDK sends it (Node's HTTP servers lower-case header names). */
const SERVICE_TIER_HEADER = 'x-amzn-bedrock-service-tier';
const ROUTE = /^\/model\/([^/]+)\/(invoke|count-tokens)$/;
const BATCH_JOB = /^\/model-invocation-job\/([^/]+)(\/stop)?$/;
const STATE_PATH = '/_stand-in/state';

/**
 * A local Amazon Bedrock runtime for Claude: InvokeModel and CountTokens over HTTP/2 and HTTP/1.1, with
 * Bedrock's validation (from the pipeline's own catalog), per-model token quotas with output burndown,
 * listed by its own Service Quotas (JSON 1.1 ListServiceQuotas / GetServiceQuota), a latency model, deterministic completions, prompt caching and injectable faults, every error in
 * Bedrock's wire shape.
 */
export async function startBedrockStandIn(options: BedrockStandInOptions = {}): Promise<BedrockStandIn> {
  const region = options.region ?? 'us-west-2';
  const regions = [...new Set([region, ...(options.regions ?? [])])];
  const catalog = options.catalog ?? catalogInUse();
  const now = options.now ?? Date.now;
  const quotas = new QuotaBoard(
    options.quota ?? { tokensPerMinute: STAND_IN_TOKENS_PER_MINUTE },
    options.quotaByModel ?? {},
    options.outputBurndown ?? OUTPUT_TOKEN_BURNDOWN,
    now,
  );
  const serviceQuotas = new Map(
    regions.map((served) => [served, new StandInServiceQuotas(served, catalog, quotas)]),
  );
  const runtime = new StandInRuntime({
    region,
    catalog,
    now,
    seed: options.seed ?? 1,
    speed: options.speed ?? 1,
    latency: options.latency,
    quotas,
    faults: new FaultInjector(options.faults ?? {}, options.seed ?? 1),
  });
  const auth: AuthSettings = { regions, ...options.auth };
  const batchJobs = batchJobBoard(options, region, catalog, now);

  const handle = async (request: http.IncomingMessage | http2.Http2ServerRequest, response: Response) => {
    const path = (request.url ?? '/').split('?')[0] ?? '/';
    if (request.method === 'GET' && path === STATE_PATH) {
      sendJson(response, 200, runtime.state());
      return;
    }
    const target = request.headers['x-amz-target'];
    if (typeof target === 'string' && target.startsWith(SERVICE_QUOTAS_TARGET)) {
      await answerServiceQuotas(request, target.slice(SERVICE_QUOTAS_TARGET.length), response, {
        auth,
        serviceQuotas,
      });
      return;
    }
    try {
      const signedFor = authenticate(request.headers.authorization, auth);
      const answered = await answer(request, path, signedFor, { runtime, batchJobs, catalog });
      sendJson(response, 200, answered.body, answered.headers);
      runtime.count('200');
    } catch (error) {
      answerFailure(error, runtime, response);
    }
  };

  const server = await listenDualProtocol((request, response) => {
    void handle(request, response);
  }, options.port ?? 0);

  return {
    endpoint: server.endpoint,
    port: server.port,
    region,
    regions,
    state: () => runtime.state(),
    batchJobs: () => batchJobs.all(),
    onBatchJobChange: (listener) => batchJobs.onChange(listener),
    close: async () => {
      await batchJobs.close();
      await server.close();
    },
  };
}

/** The runtime's two operations (in the region signed for) and the batch control plane's four. */
async function answer(
  request: http.IncomingMessage | http2.Http2ServerRequest,
  path: string,
  region: string,
  { runtime, batchJobs, catalog }: { runtime: StandInRuntime; batchJobs: BatchJobBoard; catalog: Catalog },
): Promise<{ body: unknown; headers?: Readonly<Record<string, string | number>> }> {
  const { method } = request;
  const route = ROUTE.exec(path);
  if (method === 'POST' && route !== null) {
    const raw = await readBody(request, catalog.requestBodyLimitBytes);
    const modelId = decodeURIComponent(route[1] ?? '');
    if (route[2] === 'invoke') {
      const tier = request.headers[SERVICE_TIER_HEADER];
      return runtime.invoke(region, modelId, raw, typeof tier === 'string' ? tier : undefined);
    }
    return { body: runtime.countTokens(region, modelId, raw) };
  }
  if (method === 'POST' && path === '/model-invocation-job')
    return { body: batchJobs.create(parseJson(await readBody(request, catalog.requestBodyLimitBytes))) };
  if (method === 'GET' && path === '/model-invocation-jobs')
    return { body: batchJobs.list(new URL(request.url ?? '/', 'http://stand-in').searchParams) };
  const job = BATCH_JOB.exec(path);
  if (job !== null && method === 'GET' && job[2] === undefined)
    return { body: batchJobs.get(decodeURIComponent(job[1] ?? '')) };
  if (job !== null && method === 'POST' && job[2] === '/stop') {
    batchJobs.stop(decodeURIComponent(job[1] ?? ''));
    return { body: {} };
  }
  throw new WireError('ResourceNotFoundException', `No operation at ${method} ${path}.`);
}

/** A Service Quotas operation (JSON 1.1), its errors in that protocol's shape. */
async function answerServiceQuotas(
  request: http.IncomingMessage | http2.Http2ServerRequest,
  operation: string,
  response: Response,
  { auth, serviceQuotas }: { auth: AuthSettings; serviceQuotas: ReadonlyMap<string, StandInServiceQuotas> },
): Promise<void> {
  const headers = { 'content-type': 'application/x-amz-json-1.1' };
  try {
    const region = authenticate(request.headers.authorization, auth, 'servicequotas');
    const input = parseJson(await readBody(request, SERVICE_QUOTAS_BODY_LIMIT));
    const fields = typeof input === 'object' && input !== null ? (input as Record<string, unknown>) : {};
    const regional = serviceQuotas.get(region);
    if (regional === undefined) throw new WireError('UnrecognizedClientException');
    sendJson(response, 200, regional.answer(operation, fields), headers);
  } catch (error) {
    const [type, status, message] =
      error instanceof ServiceQuotasError
        ? [error.type, 400, error.message]
        : error instanceof WireError
          ? [error.type, error.status, error.message]
          : ['ServiceException', 500, 'The stand-in failed.'];
    sendJson(response, status, { __type: type, message }, headers);
  }
}

/** Service Quotas' requests are a few fields of JSON. */
const SERVICE_QUOTAS_BODY_LIMIT = 64 * 1024;

/**
 * A failed request answered with Bedrock's error for it, counted; an error of ours is logged as one. A
 * caller that went away before its request was whole (a deadline, a crash) was never served: nothing is
 * answered or counted.
 */
function answerFailure(error: unknown, runtime: StandInRuntime, response: Response): void {
  if ((error as { code?: unknown } | undefined)?.code === 'ERR_STREAM_PREMATURE_CLOSE') return;
  const wire = error instanceof WireError ? error : new WireError('InternalServerException');
  if (!(error instanceof WireError)) console.error('bedrock stand-in: unexpected error', error);
  runtime.count(wire.type);
  if (!response.headersSent) sendError(response, wire);
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

function batchJobBoard(
  options: BedrockStandInOptions,
  region: string,
  catalog: Catalog,
  now: () => number,
): BatchJobBoard {
  const speed = options.speed ?? 1;
  const turnaround = { ...DEFAULT_TURNAROUND, ...options.batch?.turnaround };
  return new BatchJobBoard(
    {
      region,
      catalog,
      seed: options.seed ?? 1,
      storage: options.batch?.storage,
      turnaround: {
        validateMs: turnaround.validateMs * speed,
        scheduleMs: turnaround.scheduleMs * speed,
        perRecordMs: turnaround.perRecordMs * speed,
        hourMs: turnaround.hourMs,
      },
      faults: options.batch?.faults ?? {},
    },
    now,
  );
}

function parseJson(raw: Buffer): unknown {
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch {
    throw new WireError('ValidationException', 'The request body is not valid JSON.');
  }
}
