import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { BatchStorage } from './batch-jobs.ts';

const S3_URI = /^s3:\/\/([^/]+)\/?(.*)$/;

function parts(uri: string): { bucket: string; key: string } {
  const match = S3_URI.exec(uri);
  if (match === null) throw new Error(`not an s3:// URI: ${uri}`);
  return { bucket: match[1] ?? '', key: match[2] ?? '' };
}

/** Batch jobs' input and output in an S3 bucket, as Bedrock's service role reads and writes them. */
export class S3BatchStorage implements BatchStorage {
  constructor(private readonly s3: S3Client) {}

  async list(uri: string): Promise<string[]> {
    const { bucket, key } = parts(uri);
    const uris: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.s3.send(
        new ListObjectsV2Command({ Bucket: bucket, Prefix: key, ContinuationToken: token }),
      );
      for (const object of page.Contents ?? []) {
        // A URI names one object, or the folder of objects under it.
        if (object.Key === key || key === '' || key.endsWith('/') || object.Key?.startsWith(`${key}/`))
          uris.push(`s3://${bucket}/${object.Key}`);
      }
      token = page.NextContinuationToken;
    } while (token !== undefined);
    return uris;
  }

  async read(uri: string): Promise<string | undefined> {
    const { bucket, key } = parts(uri);
    try {
      const object = await this.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return await object.Body?.transformToString();
    } catch (error) {
      if ((error as { name?: string }).name === 'NoSuchKey') return undefined;
      throw error;
    }
  }

  async write(uri: string, body: string): Promise<void> {
    const { bucket, key } = parts(uri);
    await this.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
  }
}
