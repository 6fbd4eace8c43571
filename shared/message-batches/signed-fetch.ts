import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { type Credentials, signRequest } from './sigv4.ts';

export interface SignedFetchOptions {
  /** The region of the deployed Message Batches API (its stack's region). */
  readonly region: string;
  /** Credentials to sign with: the default AWS credential chain when absent. */
  readonly credentials?: Credentials | (() => Promise<Credentials>);
  /**
   * Which requests to sign: those to the API itself. Results are fetched from a presigned S3 address, which
   * must not carry a second signature. By default, every request whose host is not S3's.
   */
  readonly signs?: (url: URL) => boolean;
}

const S3_HOST = /(^|\.)s3[.-]([a-z0-9-]+\.)?amazonaws\.com$/;

/**
 * A `fetch` that signs requests with SigV4 for `execute-api`, to give Anthropic's SDK on AWS:
 * `new Anthropic({ baseURL, apiKey: 'unused', fetch: signedFetch({ region: 'us-west-2' }) })`.
 */
export function signedFetch(options: SignedFetchOptions): typeof fetch {
  const credentials = options.credentials ?? defaultProvider();
  const signs = options.signs ?? ((url: URL) => !S3_HOST.test(url.hostname));
  return async (input, init) => {
    const request = new Request(input, init);
    const url = new URL(request.url);
    if (!signs(url)) return fetch(request);
    const body = request.body === null ? undefined : new Uint8Array(await request.arrayBuffer());
    const headers = Object.fromEntries(request.headers);
    const signed = await signRequest(
      { method: request.method, url, headers, body },
      credentials,
      options.region,
    );
    return fetch(url, {
      method: request.method,
      headers: signed,
      ...(body === undefined ? {} : { body }),
      signal: request.signal,
    });
  };
}
