import { Readable as NodeReadable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { InputChangedError } from '../errors.ts';
import { FILE_HEAD_BYTES, fileContentProblem, isCompressedInput } from '../input/file-check.ts';
import { decompressedLocation } from './job.ts';
import type { JobRecord, ReadingLease, UploadedPart } from './model.ts';
import type { Ledger, ObjectStore } from './ports.ts';

/** Bytes of decompressed input per part of its copy. */
const DECOMPRESSED_PART_BYTES = 8 * 1024 * 1024;

export type Readable =
  | { readonly kind: 'ready'; readonly job: JobRecord }
  | { readonly kind: 'taken-over' }
  | { readonly kind: 'unreadable'; readonly reason: string };

/**
 * A compressed input is decompressed once, as a stream, into a copy under work/ that records are then read
 * from by byte range like any other file; the copy's ETag pins it. The lease is renewed after each part.
 * Another invocation that finds the copy made reads on from the saved offset.
 */
export async function decompressOnce(
  job: JobRecord,
  ports: { store: ObjectStore; ledger: Pick<Ledger, 'saveReadProgress' | 'saveDecompressed'> },
  lease: ReadingLease,
): Promise<Readable> {
  if (!isCompressedInput(job.source.key) || job.decompressed !== undefined) return { kind: 'ready', job };
  const { store, ledger } = ports;
  const target = decompressedLocation(job);
  const parts: UploadedPart[] = [];
  let uploadId: string | undefined;
  let chunks: Buffer[] = [];
  let bytes = 0;
  const sendPart = async () => {
    uploadId ??= await store.startMultipart(target, 'application/jsonl');
    const part = parts.length + 1;
    parts.push({ part, etag: await store.uploadPart(target, uploadId, part, Buffer.concat(chunks)) });
    chunks = [];
    bytes = 0;
  };
  const gunzip = createGunzip();
  const compressed = NodeReadable.from(store.stream(job.source, 0));
  compressed.on('error', (error) => gunzip.destroy(error));
  try {
    for await (const chunk of compressed.pipe(gunzip) as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      bytes += chunk.length;
      if (bytes < DECOMPRESSED_PART_BYTES) continue;
      await sendPart();
      const nothingReadYet = { readOffset: 0, readLine: 1, recordsRead: 0, invalidLines: 0 };
      if (!(await ledger.saveReadProgress(job.jobId, nothingReadYet, lease))) return { kind: 'taken-over' };
    }
  } catch (error) {
    if (!isZlibError(error)) throw error;
    const name = job.source.key.slice(job.source.key.lastIndexOf('/') + 1);
    return { kind: 'unreadable', reason: `${name} is not valid gzip data (${(error as Error).message}).` };
  }
  if (uploadId === undefined) {
    await store.put(target, Buffer.concat(chunks), 'application/jsonl');
  } else {
    if (bytes > 0) await sendPart();
    await store.completeMultipart(target, uploadId, parts);
  }
  const info = await store.head(target);
  if (info === undefined) throw new InputChangedError(target);
  if (info.size > 0) {
    const head = await store.readRange(target, 0, Math.min(info.size, FILE_HEAD_BYTES));
    const problem = fileContentProblem(head);
    if (problem !== undefined) return { kind: 'unreadable', reason: problem };
  }
  const pinned = { ...target, etag: info.etag };
  if (!(await ledger.saveDecompressed(job.jobId, pinned, lease))) return { kind: 'taken-over' };
  return { kind: 'ready', job: { ...job, decompressed: pinned } };
}

/** Whether `error` is zlib's: the data is not gzip, or is cut short. */
export function isZlibError(error: unknown): boolean {
  return String((error as { code?: unknown }).code ?? '').startsWith('Z_');
}
