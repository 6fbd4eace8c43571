import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import type { ObjectInfo, ObjectLocation, UploadedPart } from '../../shared/core/model.ts';
import type { ObjectStore } from '../../shared/core/ports.ts';
import { InputChangedError } from '../../shared/errors.ts';

export class S3ObjectStore implements ObjectStore {
  constructor(private readonly s3: S3Client) {}

  async head(location: ObjectLocation): Promise<ObjectInfo | undefined> {
    try {
      const head = await this.s3.send(new HeadObjectCommand(this.address(location)));
      return {
        size: head.ContentLength ?? 0,
        etag: (head.ETag ?? '').replaceAll('"', ''),
        versionId: head.VersionId,
        metadata: Object.fromEntries(
          Object.entries(head.Metadata ?? {}).map(([name, value]) => [name.toLowerCase(), value]),
        ),
      };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async *stream(location: ObjectLocation, startByte: number): AsyncIterable<Uint8Array> {
    let response: Awaited<ReturnType<S3ObjectStore['pinnedGet']>>;
    try {
      response = await this.pinnedGet(location, `bytes=${startByte}-`);
    } catch (error) {
      // From the very end there is nothing to read: S3 refuses such a range (416) rather than send no bytes.
      if (startByte > 0 && statusOf(error) === 416) return;
      throw error;
    }
    const body = response.Body as AsyncIterable<Uint8Array> | undefined;
    if (body === undefined) return;
    yield* body;
  }

  async readRange(location: ObjectLocation, start: number, end: number): Promise<Uint8Array> {
    const response = await this.pinnedGet(location, `bytes=${start}-${end - 1}`);
    return (await response.Body?.transformToByteArray()) ?? new Uint8Array();
  }

  /** A ranged read of the object as its job first saw it: its version, and its ETag (If-Match). */
  private async pinnedGet(location: ObjectLocation, range: string) {
    try {
      return await this.s3.send(
        new GetObjectCommand({
          ...this.address(location),
          Range: range,
          ...(location.etag === undefined ? {} : { IfMatch: `"${location.etag}"` }),
        }),
      );
    } catch (error) {
      if (statusOf(error) === 412 || isNotFound(error))
        throw new InputChangedError(location, { cause: error });
      throw error;
    }
  }

  async read(location: ObjectLocation): Promise<Uint8Array | undefined> {
    try {
      const response = await this.s3.send(new GetObjectCommand(this.address(location)));
      return await response.Body?.transformToByteArray();
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async put(
    location: ObjectLocation,
    body: string | Uint8Array,
    contentType: string,
    metadata?: Readonly<Record<string, string>>,
  ): Promise<void> {
    await this.s3.send(
      new PutObjectCommand({
        ...this.address(location),
        Body: body,
        ContentType: contentType,
        ...(metadata === undefined ? {} : { Metadata: { ...metadata } }),
      }),
    );
  }

  async remove(location: ObjectLocation): Promise<void> {
    await this.s3.send(new DeleteObjectCommand(this.address(location)));
  }

  async *list(bucket: string, prefix: string, startAfter?: string): AsyncIterable<string> {
    let token: string | undefined;
    do {
      const page = await this.s3.send(
        new ListObjectsV2Command({
          Bucket: bucket,
          Prefix: prefix,
          ContinuationToken: token,
          ...(token === undefined && startAfter !== undefined ? { StartAfter: startAfter } : {}),
        }),
      );
      for (const object of page.Contents ?? []) if (object.Key !== undefined) yield object.Key;
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
  }

  async startMultipart(location: ObjectLocation, contentType: string): Promise<string> {
    const { UploadId } = await this.s3.send(
      new CreateMultipartUploadCommand({
        Bucket: location.bucket,
        Key: location.key,
        ContentType: contentType,
      }),
    );
    if (UploadId === undefined)
      throw new Error(`S3 gave no upload id for s3://${location.bucket}/${location.key}`);
    return UploadId;
  }

  async uploadPart(
    location: ObjectLocation,
    uploadId: string,
    part: number,
    body: Uint8Array,
  ): Promise<string> {
    const { ETag } = await this.s3.send(
      new UploadPartCommand({
        Bucket: location.bucket,
        Key: location.key,
        UploadId: uploadId,
        PartNumber: part,
        Body: body,
      }),
    );
    return ETag ?? '';
  }

  async completeMultipart(
    location: ObjectLocation,
    uploadId: string,
    parts: readonly UploadedPart[],
  ): Promise<void> {
    try {
      await this.s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: location.bucket,
          Key: location.key,
          UploadId: uploadId,
          MultipartUpload: { Parts: parts.map(({ part, etag }) => ({ PartNumber: part, ETag: etag })) },
        }),
      );
    } catch (error) {
      const completedBefore =
        (error as { name?: string }).name === 'NoSuchUpload' && (await this.head(location)) !== undefined;
      if (!completedBefore) throw error;
    }
  }

  private address(location: ObjectLocation) {
    return {
      Bucket: location.bucket,
      Key: location.key,
      ...(location.versionId === undefined ? {} : { VersionId: location.versionId }),
    };
  }
}

function statusOf(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

function isNotFound(error: unknown): boolean {
  const candidate = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  return (
    candidate.name === 'NotFound' ||
    candidate.name === 'NoSuchKey' ||
    candidate.$metadata?.httpStatusCode === 404
  );
}
