import { Readable as NodeReadable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { decompressedLocation } from '../contract/storage-layout.ts';
import type { JobReading } from '../core/ledger.ts';
import type { DecompressCheckpoint, JobRecord, ReadingLease, UploadedPart } from '../core/model.ts';
import type { ObjectStore } from '../core/ports.ts';
import { InputChangedError } from '../errors.ts';
import { FILE_HEAD_BYTES, fileContentProblem, isCompressedInput } from '../input/file-check.ts';

/** Bytes of decompressed input per part of its copy. */
const DECOMPRESSED_PART_BYTES = 8 * 1024 * 1024;

export interface DecompressSettings {
  readonly maxBytes: number;
  /** True when the invocation is near its deadline: the decompression stops at a part and goes on later. */
  readonly shouldStop: () => boolean;
}

export type Readable =
  | { readonly kind: 'ready'; readonly job: JobRecord }
  | { readonly kind: 'taken-over' }
  | { readonly kind: 'paused' }
  | { readonly kind: 'unreadable'; readonly reason: string };

type DecompressPorts = {
  store: ObjectStore;
  ledger: Pick<JobReading, 'saveDecompressing' | 'saveDecompressed'>;
};

/**
 * A compressed input is decompressed once, as a stream, into a copy under work/ that records are then read
 * from by byte range like any other file; the copy's ETag pins it. After each part the upload is saved, so
 * an invocation that stops (near its deadline, or killed) loses at most a part: the next decompresses again
 * from the start (gzip cannot be entered midway) but sends only the parts not yet sent. A file cut short
 * keeps the lines before the cut, with a notice.
 */
export async function decompressOnce(
  job: JobRecord,
  ports: DecompressPorts,
  lease: ReadingLease,
  settings: DecompressSettings,
): Promise<Readable> {
  if (!isCompressedInput(job.source.key) || job.decompressed !== undefined) return { kind: 'ready', job };
  const copy = new PartedCopy(job, ports, lease, job.decompressing);
  const name = job.source.key.slice(job.source.key.lastIndexOf('/') + 1);
  let notice: string | undefined;
  try {
    for await (const chunk of decompressed(ports.store, job)) {
      const sent = await copy.add(chunk);
      if (sent === 'taken-over') return { kind: 'taken-over' };
      if (copy.bytes > settings.maxBytes)
        return { kind: 'unreadable', reason: tooLarge(name, settings.maxBytes) };
      if (sent === 'part' && settings.shouldStop()) return { kind: 'paused' };
    }
  } catch (error) {
    if (!isZlibError(error)) throw error;
    if (!isCutShort(error) || copy.bytes === 0)
      return { kind: 'unreadable', reason: `${name} is not valid gzip data (${(error as Error).message}).` };
    notice = cutShortNotice(name, copy.bytes);
  }
  const target = await copy.finish();
  const info = await ports.store.head(target);
  if (info === undefined) throw new InputChangedError(target);
  if (info.size > 0) {
    const head = await ports.store.readRange(target, 0, Math.min(info.size, FILE_HEAD_BYTES));
    const problem = fileContentProblem(head);
    if (problem !== undefined) return { kind: 'unreadable', reason: problem };
  }
  const pinned = { ...target, etag: info.etag };
  if (!(await ports.ledger.saveDecompressed(job.jobId, pinned, lease, notice))) return { kind: 'taken-over' };
  return {
    kind: 'ready',
    job: { ...job, decompressed: pinned, decompressing: undefined, inputNotice: notice },
  };
}

/** The input's decompressed bytes, from its start. */
function decompressed(store: ObjectStore, job: JobRecord): AsyncIterable<Buffer> {
  const gunzip = createGunzip();
  const compressed = NodeReadable.from(store.stream(job.source, 0));
  compressed.on('error', (error) => gunzip.destroy(error));
  return compressed.pipe(gunzip);
}

/**
 * The decompressed copy as a multipart upload of equal parts, saved after each. Going on from a checkpoint,
 * the bytes its parts hold are passed over.
 */
class PartedCopy {
  /** Decompressed bytes seen so far, sent or not. */
  bytes = 0;
  private readonly target;
  private uploadId: string | undefined;
  private readonly parts: UploadedPart[];
  private sentBytes: number;
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(
    private readonly job: JobRecord,
    private readonly ports: DecompressPorts,
    private readonly lease: ReadingLease,
    checkpoint: DecompressCheckpoint | undefined,
  ) {
    this.target = decompressedLocation(job);
    this.uploadId = checkpoint?.uploadId;
    this.parts = [...(checkpoint?.parts ?? [])];
    this.sentBytes = checkpoint?.bytes ?? 0;
  }

  /** Takes a chunk; says whether a part was sent (and saved), or another reader holds the file now. */
  async add(chunk: Buffer): Promise<'none' | 'part' | 'taken-over'> {
    const start = this.bytes;
    this.bytes += chunk.length;
    if (this.bytes <= this.sentBytes) return 'none';
    this.pending.push(start < this.sentBytes ? chunk.subarray(this.sentBytes - start) : chunk);
    this.pendingBytes += this.pending.at(-1)?.length ?? 0;
    if (this.pendingBytes < DECOMPRESSED_PART_BYTES) return 'none';
    const whole = Buffer.concat(this.pending);
    const part = whole.subarray(0, DECOMPRESSED_PART_BYTES);
    this.pending = [whole.subarray(DECOMPRESSED_PART_BYTES)];
    this.pendingBytes = whole.length - DECOMPRESSED_PART_BYTES;
    await this.send(part);
    const saved = await this.ports.ledger.saveDecompressing(
      this.job.jobId,
      { uploadId: this.uploadId ?? '', parts: this.parts, bytes: this.sentBytes },
      this.lease,
    );
    return saved ? 'part' : 'taken-over';
  }

  /** Sends what is left and makes the copy whole. */
  async finish() {
    const rest = Buffer.concat(this.pending);
    const { store } = this.ports;
    if (this.uploadId === undefined) {
      await store.put(this.target, rest, 'application/jsonl');
      return this.target;
    }
    if (rest.length > 0) await this.send(rest);
    await store.completeMultipart(this.target, this.uploadId, this.parts);
    return this.target;
  }

  private async send(body: Buffer): Promise<void> {
    const { store } = this.ports;
    this.uploadId ??= await store.startMultipart(this.target, 'application/jsonl');
    const part = this.parts.length + 1;
    this.parts.push({ part, etag: await store.uploadPart(this.target, this.uploadId, part, body) });
    this.sentBytes += body.length;
  }
}

function tooLarge(name: string, maxBytes: number): string {
  return (
    `${name} decompresses to more than ${bytesText(maxBytes)}, the most this deployment reads from one ` +
    'compressed file (maxDecompressedBytes). Split it into smaller files, or upload it uncompressed.'
  );
}

function cutShortNotice(name: string, bytes: number): string {
  return (
    `${name} is cut short: its gzip data ends mid-stream after ${bytesText(bytes)} of JSON Lines. ` +
    'The lines before the cut ran; a last line the cut went through is an error record, and the lines after it ' +
    'are missing. Upload the whole file again to run them.'
  );
}

function bytesText(bytes: number): string {
  const units = [
    [1024 ** 3, 'GiB'],
    [1024 ** 2, 'MiB'],
    [1024, 'KiB'],
  ] as const;
  const [size, unit] = units.find(([size]) => bytes >= size) ?? [1, 'bytes'];
  return `${Math.round((bytes / size) * 10) / 10} ${unit}`;
}

/** Whether `error` is zlib's: the data is not gzip, or is cut short. */
export function isZlibError(error: unknown): boolean {
  return String((error as { code?: unknown }).code ?? '').startsWith('Z_');
}

/** zlib's "unexpected end of file": the data stops mid-stream, and what came before it is sound. */
function isCutShort(error: unknown): boolean {
  return (error as { code?: unknown }).code === 'Z_BUF_ERROR';
}
