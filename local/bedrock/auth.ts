import { WireError } from './wire-errors.ts';

/** `AWS4-HMAC-SHA256 Credential=<key>/<date>/<region>/<service>/aws4_request, SignedHeaders=..., Signature=...` */
const SIGV4 =
  /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=[^,]+, ?Signature=[0-9a-f]+$/;

export interface AuthSettings {
  /** The source regions served: a request signed for another is refused. */
  readonly regions: readonly string[];
  /** When given, only these access key ids are known; others are refused as Bedrock refuses unknown keys. */
  readonly accessKeyIds?: readonly string[] | undefined;
  /** Access key ids that authenticate but may not invoke models (an IAM policy without bedrock:InvokeModel). */
  readonly deniedAccessKeyIds?: readonly string[] | undefined;
}

/**
 * Checks that a request is SigV4-signed for Bedrock (or `signingName`) in a region served, as far as the
 * Authorization header shows: algorithm, credential scope (the service and region) and the access key, and
 * says the region it was signed for. It does not recompute signatures: the stand-in holds no secrets.
 */
export function authenticate(
  authorization: string | undefined,
  settings: AuthSettings,
  signingName = 'bedrock',
): string {
  const match = authorization === undefined ? null : SIGV4.exec(authorization);
  if (match === null) {
    // An Anthropic API key (x-api-key) or no credentials at all.
    throw new WireError('UnrecognizedClientException');
  }
  const [, accessKeyId = '', , region, service] = match;
  if (service !== signingName) {
    throw new WireError(
      'UnrecognizedClientException',
      `Credential should be scoped to correct service: '${signingName}'.`,
    );
  }
  if (region === undefined || !settings.regions.includes(region)) {
    throw new WireError(
      'UnrecognizedClientException',
      `Credential should be scoped to a valid region, not '${region}'.`,
    );
  }
  if (settings.accessKeyIds !== undefined && !settings.accessKeyIds.includes(accessKeyId)) {
    throw new WireError('UnrecognizedClientException');
  }
  if (settings.deniedAccessKeyIds?.includes(accessKeyId)) {
    throw new WireError(
      'AccessDeniedException',
      `User: arn:aws:iam::000000000000:user/${accessKeyId} is not authorized to perform: bedrock:InvokeModel`,
    );
  }
  return region;
}
