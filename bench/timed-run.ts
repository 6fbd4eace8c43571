import { performance } from 'node:perf_hooks';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import type { LocalCloud } from '../local/cloud/local-cloud.ts';
import type { LocalPipeline } from '../local/pipeline/local-pipeline.ts';
import { outputLocations } from '../shared/contract/storage-layout.ts';
import type { JobManifest } from '../shared/pipeline/finalize.ts';

/**
 * Uploads `body` under `key` with these file options, waits for the job's completion event and reads its
 * manifest: the seconds from the upload to the event (to a tenth), and the manifest.
 */
export async function timedRun(
  cloud: LocalCloud,
  pipeline: LocalPipeline,
  file: { readonly key: string; readonly body: string; readonly metadata: Record<string, string> },
): Promise<{ seconds: number; manifest: JobManifest }> {
  const bucket = pipeline.resources.bucket;
  const { key } = file;
  const started = performance.now();
  await cloud.clients.s3.send(
    new PutObjectCommand({ Bucket: bucket, Key: key, Body: file.body, Metadata: file.metadata }),
  );
  const completion = await pipeline.completion(key, 3_600_000);
  const seconds = Math.round((performance.now() - started) / 100) / 10;
  const { jobId } = completion.detail as { jobId: string };
  const { manifest } = outputLocations({ jobId, source: { bucket, key } });
  const object = await cloud.clients.s3.send(new GetObjectCommand({ Bucket: bucket, Key: manifest.key }));
  return { seconds, manifest: JSON.parse((await object.Body?.transformToString()) ?? '{}') as JobManifest };
}
