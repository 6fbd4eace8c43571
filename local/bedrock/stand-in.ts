import type http from 'node:http';
import type http2 from 'node:http2';
import { type Catalog, defaultCatalog } from '../../shared/catalog/catalog.ts';
import { OUTPUT_TOKEN_BURNDOWN } from '../../shared/config.ts';
import type { AuthSettings } from './auth.ts';
import { authenticate } from './auth.ts';
import { listenDualProtocol } from './dual-protocol-server.ts';
import { FaultInjector, type FaultSettings } from './faults.ts';
import { QuotaBoard, type QuotaSettings } from './quota.ts';
import { StandInRuntime, type StandInState } from './runtime.ts';
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

export type { StandInState } from './runtime.ts';

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
  const runtime = new StandInRuntime({
    region,
    catalog,
    now,
    seed: options.seed ?? 1,
    speed: options.speed ?? 1,
    latency: options.latency ?? { firstTokenMs: 500, perOutputTokenMs: 20 },
    quotas: new QuotaBoard(
      options.quota ?? { tokensPerMinute: STAND_IN_TOKENS_PER_MINUTE },
      options.quotaByModel ?? {},
      options.outputBurndown ?? OUTPUT_TOKEN_BURNDOWN,
      now,
    ),
    faults: new FaultInjector(options.faults ?? {}, options.seed ?? 1),
  });
  const auth: AuthSettings = { region, ...options.auth };

  const handle = async (request: http.IncomingMessage | http2.Http2ServerRequest, response: Response) => {
    const path = (request.url ?? '/').split('?')[0] ?? '/';
    if (request.method === 'GET' && path === STATE_PATH) {
      sendJson(response, 200, runtime.state());
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
      if (route[2] === 'invoke') {
        const answer = await runtime.invoke(modelId, raw);
        sendJson(response, 200, answer.body, answer.headers);
      } else sendJson(response, 200, runtime.countTokens(modelId, raw));
      runtime.count('200');
    } catch (error) {
      const wire = error instanceof WireError ? error : new WireError('InternalServerException');
      if (!(error instanceof WireError)) console.error('bedrock stand-in: unexpected error', error);
      runtime.count(wire.type);
      if (!response.headersSent) sendError(response, wire);
    }
  };

  const server = await listenDualProtocol((request, response) => {
    void handle(request, response);
  }, options.port ?? 0);

  return {
    endpoint: server.endpoint,
    port: server.port,
    region,
    state: () => runtime.state(),
    close: () => server.close(),
  };
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
