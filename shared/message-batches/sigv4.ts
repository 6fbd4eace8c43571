import { createHash } from 'node:crypto';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';

/** The service name API Gateway's IAM authorization checks signatures for. */
const EXECUTE_API = 'execute-api';

/** SHA-256 as the SDK's signer takes it in Node: Node's own crypto, an HMAC when given a secret. */
const NodeSha256 = Hash.bind(null, 'sha256');

export interface Credentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

/** A request as signed: what SigV4 covers. */
export interface SignableRequest {
  readonly method: string;
  readonly url: URL;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string | Uint8Array | undefined;
}

/** The request's headers with its SigV4 signature for `execute-api` in `region`. */
export async function signRequest(
  request: SignableRequest,
  credentials: Credentials | (() => Promise<Credentials>),
  region: string,
  signingDate?: Date,
): Promise<Record<string, string>> {
  const signer = new SignatureV4({ service: EXECUTE_API, region, credentials, sha256: NodeSha256 });
  const { url } = request;
  const signed = await signer.sign(
    {
      method: request.method,
      protocol: url.protocol,
      hostname: url.hostname,
      ...(url.port === '' ? {} : { port: Number(url.port) }),
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers: { ...request.headers, host: url.host },
      ...(request.body === undefined ? {} : { body: request.body }),
    },
    signingDate === undefined ? {} : { signingDate },
  );
  return signed.headers;
}

const AUTHORIZATION =
  /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/;

/**
 * Checks a request's SigV4 signature for `execute-api` the way API Gateway's IAM authorization does: the
 * signature recomputed over the headers it names, with the secret of the access key it names. The caller's
 * access key id when it holds; undefined otherwise.
 */
export async function verifySignature(
  request: SignableRequest,
  secretOf: (accessKeyId: string) => string | undefined,
  region: string,
): Promise<string | undefined> {
  const match = AUTHORIZATION.exec(request.headers.authorization ?? '');
  const amzDate = request.headers['x-amz-date'];
  if (match === null || amzDate === undefined) return undefined;
  const [, accessKeyId = '', , signedRegion, service, signedHeaders = ''] = match;
  const secretAccessKey = secretOf(accessKeyId);
  if (secretAccessKey === undefined || signedRegion !== region || service !== EXECUTE_API) return undefined;
  // A payload hash the request states must be the body's: the signature covers the stated hash only.
  const statedHash = request.headers['x-amz-content-sha256'];
  const bodyHash = createHash('sha256')
    .update(request.body ?? '')
    .digest('hex');
  if (statedHash !== undefined && statedHash !== bodyHash) return undefined;
  const names = signedHeaders.split(';');
  const headers = Object.fromEntries(
    names.filter((name) => name !== 'host').map((name) => [name, request.headers[name] ?? '']),
  );
  const date = new Date(
    `${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 8)}T${amzDate.slice(9, 11)}:${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`,
  );
  const sessionToken = request.headers['x-amz-security-token'];
  const recomputed = await signRequest(
    { ...request, headers },
    { accessKeyId, secretAccessKey, ...(sessionToken === undefined ? {} : { sessionToken }) },
    region,
    date,
  );
  return recomputed.authorization === request.headers.authorization ? accessKeyId : undefined;
}
