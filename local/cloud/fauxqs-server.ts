import { EventEmitter } from 'node:events';
import { loadFauxqs } from './local-cloud-packages.ts';

/** What S3 tells EventBridge about a new object (the fields of an "Object Created" event's detail). */
export interface ObjectCreatedNotice {
  readonly bucket: string;
  readonly key: string;
  readonly reason: 'PutObject' | 'CopyObject' | 'CompleteMultipartUpload';
  /** The object's size and ETag when the request and its response say them (a PutObject does). */
  readonly object?: { readonly size: number; readonly etag: string };
}

/** The largest object S3 takes in one PutObject. */
const S3_PUT_OBJECT_LIMIT_BYTES = 5 * 1024 ** 3;

export interface FauxqsServer {
  readonly endpoint: string;
  /** Every object created through the S3 API, by any client (the SDK, the AWS CLI, ...). */
  readonly objectCreated: EventEmitter<{ created: [ObjectCreatedNotice] }>;
  close(): Promise<void>;
}

/**
 * fauxqs (S3 and SQS in process) on a free port of 127.0.0.1. fauxqs ignores bucket notifications, so this
 * watches its S3 responses and reports each object created, which is what S3 hands to EventBridge.
 */
export async function startFauxqs(region: string): Promise<FauxqsServer> {
  const { buildApp } = await loadFauxqs();
  const app = buildApp({ logger: false, host: 'localhost', defaultRegion: region });
  // fauxqs caps request bodies at 11 MiB; S3 takes 5 GiB in one PutObject. A large document's line, or a
  // result that carries one, must be stored locally as it would be on S3.
  app.removeContentTypeParser('*');
  app.addContentTypeParser(
    '*',
    { parseAs: 'buffer', bodyLimit: S3_PUT_OBJECT_LIMIT_BYTES },
    (_request, body, done) => done(null, body),
  );
  const objectCreated = new EventEmitter<{ created: [ObjectCreatedNotice] }>();
  app.addHook('onResponse', async (request, reply) => {
    if (reply.statusCode !== 200) return;
    const notice = objectCreatedBy(
      request.method,
      request.url,
      request.headers['x-amz-copy-source'] !== undefined,
    );
    if (notice === undefined) return;
    const object =
      notice.reason === 'PutObject' ? putObjectOf(request.headers, reply.getHeader('etag')) : undefined;
    objectCreated.emit('created', object === undefined ? notice : { ...notice, object });
  });
  const endpoint = await app.listen({ host: '127.0.0.1', port: 0 });
  return { endpoint, objectCreated, close: () => app.close() };
}

/** Path-style S3 requests that create an object: PUT /bucket/key (put or copy), POST /bucket/key?uploadId= (complete). */
function objectCreatedBy(method: string, url: string, isCopy: boolean): ObjectCreatedNotice | undefined {
  const [path = '', query = ''] = url.split('?');
  const match = /^\/([^/]+)\/(.+)$/.exec(path);
  if (match === null) return undefined;
  const parameters = new URLSearchParams(query);
  const bucket = decodeURIComponent(match[1] ?? '');
  const key = decodeURIComponent(match[2] ?? '');
  if (
    method === 'PUT' &&
    !parameters.has('uploadId') &&
    !parameters.has('partNumber') &&
    !parameters.has('tagging')
  ) {
    return { bucket, key, reason: isCopy ? 'CopyObject' : 'PutObject' };
  }
  if (method === 'POST' && parameters.has('uploadId'))
    return { bucket, key, reason: 'CompleteMultipartUpload' };
  return undefined;
}

/**
 * A PutObject's size and ETag, from its request's length (decoded, for a body the SDK sent aws-chunked) and
 * its response's ETag: what S3 puts in the event, without asking S3 again.
 */
function putObjectOf(
  headers: Readonly<Record<string, string | string[] | undefined>>,
  etag: unknown,
): { size: number; etag: string } | undefined {
  const chunked = String(headers['content-encoding'] ?? '').includes('aws-chunked');
  const length = Number(headers[chunked ? 'x-amz-decoded-content-length' : 'content-length']);
  if (typeof etag !== 'string' || !Number.isSafeInteger(length)) return undefined;
  return { size: length, etag: etag.replaceAll('"', '') };
}
