import type { JobFinalization } from '../core/ledger.ts';
import type { FinalizeCheckpoint, ObjectLocation, UploadedPart } from '../core/model.ts';
import type { ObjectStore } from '../core/ports.ts';
import type { JobStatsState } from './job-stats.ts';

/** Where the output stands after a line: what the checkpoint of a part that ends there records. */
export interface OutputPosition {
  readonly lastLine: number;
  readonly linesWritten: number;
  readonly stats: JobStatsState;
}

interface PendingPart extends OutputPosition {
  readonly part: number;
  readonly upload: Promise<string>;
}

export interface UploadLimits {
  /** Bytes of output per multipart part (S3 takes 5 MiB or more, but the last). */
  readonly partBytes: number;
  /** Parts uploading at once while the next is being assembled. */
  readonly partsInFlight: number;
}

/**
 * A job's output as a multipart upload that can be taken up again: lines gather into parts, a few parts upload
 * at once, and each completed prefix of parts is saved in the ledger as the job's finalize checkpoint. An
 * output that fits one part is written with a single put instead.
 */
export class CheckpointedUpload {
  private uploadId: string | undefined;
  private readonly parts: UploadedPart[];
  private readonly pending: PendingPart[] = [];
  // Lines stay strings until a part is cut: one buffer per part instead of one per line.
  private chunks: string[] = [];
  private bytes = 0;

  constructor(
    private readonly jobId: string,
    private readonly output: ObjectLocation,
    private readonly ports: {
      readonly store: ObjectStore;
      readonly ledger: Pick<JobFinalization, 'saveFinalizeCheckpoint'>;
    },
    private readonly limits: UploadLimits,
    checkpoint: FinalizeCheckpoint | undefined,
  ) {
    this.uploadId = checkpoint?.uploadId;
    this.parts = [...(checkpoint?.parts ?? [])];
  }

  /** Adds a line; true when the part being assembled is full and should be cut. */
  append(line: string): boolean {
    this.chunks.push(line);
    this.bytes += Buffer.byteLength(line);
    return this.bytes >= this.limits.partBytes;
  }

  /** Starts uploading the assembled part; waits for the oldest when too many are in flight. */
  async cutPart(position: OutputPosition): Promise<void> {
    const { store } = this.ports;
    this.uploadId ??= await store.startMultipart(this.output, 'application/jsonl');
    const part = this.parts.length + this.pending.length + 1;
    const upload = store.uploadPart(this.output, this.uploadId, part, Buffer.from(this.chunks.join('')));
    // Awaited in order by settleOldest; until then a failure must not count as unhandled.
    upload.catch(() => {});
    this.pending.push({ part, upload, ...position });
    this.chunks = [];
    this.bytes = 0;
    if (this.pending.length >= this.limits.partsInFlight) await this.settleOldest();
  }

  /** Waits for every part in flight, each saving its checkpoint. */
  async settle(): Promise<void> {
    while (this.pending.length > 0) await this.settleOldest();
  }

  /** Uploads what is left and completes the object; `position` is where the last line ends. */
  async finish(position: OutputPosition | undefined): Promise<void> {
    if (this.uploadId === undefined) {
      await this.ports.store.put(this.output, this.chunks.join(''), 'application/jsonl');
      return;
    }
    if (this.bytes > 0 && position !== undefined) await this.cutPart(position);
    await this.settle();
    await this.ports.store.completeMultipart(this.output, this.uploadId, this.parts);
  }

  private async settleOldest(): Promise<void> {
    const oldest = this.pending.shift();
    if (oldest === undefined || this.uploadId === undefined) return;
    this.parts.push({ part: oldest.part, etag: await oldest.upload });
    await this.ports.ledger.saveFinalizeCheckpoint(this.jobId, {
      uploadId: this.uploadId,
      parts: [...this.parts],
      lastLine: oldest.lastLine,
      linesWritten: oldest.linesWritten,
      stats: oldest.stats,
    });
  }
}
