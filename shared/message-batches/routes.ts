import { MESSAGE_BATCH_ERRORS, MessageBatchError, type MessageBatches } from './message-batches.ts';

/** One HTTP request to the Message Batches API, as any server (local or deployed) hands it over. */
interface ApiRequest {
  readonly method: string;
  /** The path without the query string. */
  readonly path: string;
  readonly query: URLSearchParams;
  /** Header names in lower case. */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The body, read whole (a create's requests). */
  readonly body: Uint8Array;
  /** Who is calling, where callers are told apart (an IAM principal behind IAM authorization). */
  readonly caller?: string | undefined;
}

/** The answer: JSON, or the results (a server streams their lines, or sends the caller to where they are). */
type ApiResponse =
  | { readonly status: number; readonly json: unknown }
  | { readonly status: 200; readonly results: Awaited<ReturnType<MessageBatches['results']>> };

const BATCHES = '/v1/messages/batches';
const ONE_BATCH = /^\/v1\/messages\/batches\/([^/]+)(\/cancel|\/results)?$/;

/**
 * The Message Batches API's routes, as Anthropic's SDK calls them: create, list, retrieve, cancel, delete
 * and results. Errors come back in Anthropic's shape (`{"type": "error", "error": {"type", "message"}}`).
 */
export async function answerApiRequest(
  apiFor: (caller: string | undefined) => MessageBatches,
  request: ApiRequest,
): Promise<ApiResponse> {
  try {
    return await route(apiFor(request.caller), request);
  } catch (error) {
    if (error instanceof MessageBatchError) {
      const { status, type } = MESSAGE_BATCH_ERRORS[error.reason];
      return { status, json: anthropicError(type, error.message) };
    }
    if (error instanceof SyntaxError)
      return { status: 400, json: anthropicError('invalid_request_error', 'The body is not JSON.') };
    throw error;
  }
}

async function route(api: MessageBatches, request: ApiRequest): Promise<ApiResponse> {
  const { method, path, query } = request;
  if (path === BATCHES && method === 'POST') {
    const body: unknown = JSON.parse(Buffer.from(request.body).toString('utf8'));
    return { status: 200, json: await api.create(body, request.body.byteLength, optionsOf(request.headers)) };
  }
  if (path === BATCHES && method === 'GET') {
    const limit = query.get('limit');
    return {
      status: 200,
      json: await api.list({
        ...(limit === null ? {} : { limit: Number(limit) }),
        ...(query.get('before_id') === null ? {} : { beforeId: query.get('before_id') ?? '' }),
        ...(query.get('after_id') === null ? {} : { afterId: query.get('after_id') ?? '' }),
      }),
    };
  }
  const one = ONE_BATCH.exec(path);
  const batchId = decodeURIComponent(one?.[1] ?? '');
  if (one !== null && one[2] === undefined && method === 'GET')
    return { status: 200, json: await api.retrieve(batchId) };
  if (one !== null && one[2] === undefined && method === 'DELETE')
    return { status: 200, json: await api.delete(batchId) };
  if (one !== null && one[2] === '/cancel' && method === 'POST')
    return { status: 200, json: await api.cancel(batchId) };
  if (one !== null && one[2] === '/results' && method === 'GET')
    return { status: 200, results: await api.results(batchId) };
  return { status: 404, json: anthropicError('not_found_error', `No operation at ${method} ${path}.`) };
}

/**
 * A batch's options, where Anthropic's API has none: `x-bedrock-batch-<file option>` headers (lane,
 * deadline, tier, endpoints...), which Anthropic's SDK sends with `{ headers }` in its request options.
 */
const OPTION_HEADER_PREFIX = 'x-bedrock-batch-';

function optionsOf(headers: ApiRequest['headers']): Record<string, string> {
  return Object.fromEntries(
    Object.entries(headers).flatMap(([name, value]) =>
      name.startsWith(OPTION_HEADER_PREFIX) && typeof value === 'string'
        ? [[name.slice(OPTION_HEADER_PREFIX.length), value]]
        : [],
    ),
  );
}

/** An error in Anthropic's shape, as the SDK reads it. */
export function anthropicError(type: string, message: string) {
  return { type: 'error', error: { type, message } };
}
