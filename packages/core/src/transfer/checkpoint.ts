import { readFile, rm } from 'node:fs/promises';
import { writeFileAtomic } from '../atomic-file.js';
import { SyncproxyError } from '../errors/syncproxy-error.js';
import { toSyncproxyError } from '../errors/to-syncproxy-error.js';

/**
 * What a transfer has finished, in chunks of the grid (`index *
 * chunkSizeBytes`). Compact: a watermark plus the runs finished above it,
 * which stay few because chunks finish nearly in order.
 */
export interface TransferCheckpoint {
  version: 1;
  /** The caller's name for this transfer; a checkpoint of another transfer is never resumed. */
  transferId?: string;
  /** The sink's `targetId` when saved: a checkpoint of another target (a replaced or re-made image) is never resumed. */
  targetId?: string;
  diskSize: number;
  chunkSizeBytes: number;
  /** Every chunk with a lower index is done or was never part of the transfer. */
  doneBelow: number;
  /** Done chunks at or above `doneBelow`, as sorted `[start, end)` index runs. */
  doneRuns: Array<[number, number]>;
  /** Bytes of the done chunks' pieces (data and zero), for progress after a resume. */
  bytesDone: number;
  /** Chunks done, for progress after a resume. */
  chunksDone: number;
  /**
   * Of {@link bytesDone}, those written as data and those made to read as zeroes, so that the
   * figures of a resumed transfer count each byte once (absent from older checkpoints: 0).
   */
  dataBytes?: number;
  zeroBytes?: number;
  /** ISO-8601. */
  updatedAt: string;
}

/** Where the engine keeps a transfer's checkpoint. */
export interface CheckpointStore {
  load(): Promise<TransferCheckpoint | undefined>;
  /** Must be atomic: after a crash, `load` returns the previous or the new checkpoint, whole. */
  save(checkpoint: TransferCheckpoint): Promise<void>;
  /** Called once the transfer is complete. */
  clear(): Promise<void>;
}

/** A checkpoint in one JSON file, replaced atomically (temporary file, fsync, rename). */
export class FileCheckpointStore implements CheckpointStore {
  constructor(readonly path: string) {}

  async load(): Promise<TransferCheckpoint | undefined> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      if ((error as { code?: unknown }).code === 'ENOENT') return undefined;
      throw toSyncproxyError(error, { operation: `read checkpoint ${this.path}` });
    }
    return parseCheckpoint(text, this.path);
  }

  async save(checkpoint: TransferCheckpoint): Promise<void> {
    await writeFileAtomic(this.path, `${JSON.stringify(checkpoint)}\n`);
  }

  async clear(): Promise<void> {
    try {
      await rm(this.path, { force: true });
    } catch (error) {
      throw toSyncproxyError(error, { operation: `remove checkpoint ${this.path}` });
    }
  }
}

/** Parses and checks a checkpoint's JSON; `integrity` error when it is not one. */
export function parseCheckpoint(text: string, source = 'checkpoint'): TransferCheckpoint {
  const bad = (why: string) =>
    new SyncproxyError(`${source} is not a valid syncproxy checkpoint: ${why}`, {
      code: 'integrity',
      retryable: false,
    });
  let value: Partial<TransferCheckpoint>;
  try {
    value = JSON.parse(text);
  } catch {
    throw bad('not JSON');
  }
  const ints = ['diskSize', 'chunkSizeBytes', 'doneBelow', 'bytesDone', 'chunksDone'] as const;
  if (value?.version !== 1) throw bad(`unsupported version ${JSON.stringify(value?.version)}`);
  for (const key of ints)
    if (!Number.isSafeInteger(value[key]) || (value[key] as number) < 0) throw bad(`bad ${key}`);
  for (const key of ['dataBytes', 'zeroBytes'] as const) {
    const n = value[key];
    if (n !== undefined && (!Number.isSafeInteger(n) || n < 0 || n > (value.bytesDone as number)))
      throw bad(`bad ${key}`);
  }
  if (value.targetId !== undefined && typeof value.targetId !== 'string') throw bad('bad targetId');
  if (!Array.isArray(value.doneRuns)) throw bad('bad doneRuns');
  let previous = value.doneBelow as number;
  for (const run of value.doneRuns) {
    if (
      !Array.isArray(run) ||
      !Number.isSafeInteger(run[0]) ||
      !Number.isSafeInteger(run[1]) ||
      run[0] < previous ||
      run[1] <= run[0]
    ) {
      throw bad('doneRuns must be sorted, disjoint [start, end) runs above doneBelow');
    }
    previous = run[1];
  }
  return value as TransferCheckpoint;
}

/**
 * The engine's record of done chunks: a watermark and the runs done above it.
 * Chunks start in increasing index order and finish in any order, so the runs
 * stay about as many as the chunks in flight. Cells the plan passes over (no
 * extent touched them) count as done: a resume meets the same plan.
 */
export class ChunkLedger {
  private doneBelow: number;
  private readonly runs: Array<[number, number]>;
  /** Every cell below it has been passed over, skipped or started. */
  private cursor = 0;
  bytesDone: number;
  chunksDone: number;
  /** Of the done chunks' bytes, those written as data: each byte once, whichever run wrote it. */
  dataBytes: number;
  /** Of the done chunks' bytes, those made to read as zeroes. */
  zeroBytes: number;

  constructor(previous?: TransferCheckpoint) {
    this.doneBelow = previous?.doneBelow ?? 0;
    this.runs = (previous?.doneRuns ?? []).map(([start, end]) => [start, end]);
    this.bytesDone = previous?.bytesDone ?? 0;
    this.chunksDone = previous?.chunksDone ?? 0;
    this.dataBytes = previous?.dataBytes ?? 0;
    this.zeroBytes = previous?.zeroBytes ?? 0;
  }

  isDone(index: number): boolean {
    if (index < this.doneBelow) return true;
    for (const [start, end] of this.runs) {
      if (index < start) return false;
      if (index < end) return true;
    }
    return false;
  }

  /** The plan reached cell `index`: cells between the previous one and it were not part of it. */
  reach(index: number): void {
    if (index > this.cursor) this.add(this.cursor, index);
    this.cursor = Math.max(this.cursor, index + 1);
  }

  /** The plan ended: no cell from the cursor to `chunkCount` is part of it. */
  end(chunkCount: number): void {
    if (chunkCount > this.cursor) this.add(this.cursor, chunkCount);
    this.cursor = Math.max(this.cursor, chunkCount);
  }

  /** Chunk `index` is done: `written` of its bytes went as data, `zeroed` as zeroes. */
  finish(index: number, bytes: number, written = 0, zeroed = 0): void {
    this.bytesDone += bytes;
    this.dataBytes += written;
    this.zeroBytes += zeroed;
    this.chunksDone++;
    this.add(index, index + 1);
  }

  /** Marks a done chunk as not done (it failed verification). */
  forget(index: number, bytes: number, written = 0, zeroed = 0): void {
    if (!this.isDone(index)) return;
    this.bytesDone -= bytes;
    this.dataBytes -= written;
    this.zeroBytes -= zeroed;
    this.chunksDone--;
    if (index < this.doneBelow) {
      if (index + 1 < this.doneBelow) this.runs.unshift([index + 1, this.doneBelow]);
      this.doneBelow = index;
      return;
    }
    const at = this.runs.findIndex(([start, end]) => start <= index && index < end);
    const run = this.runs[at]!;
    const pieces: Array<[number, number]> = [];
    if (run[0] < index) pieces.push([run[0], index]);
    if (index + 1 < run[1]) pieces.push([index + 1, run[1]]);
    this.runs.splice(at, 1, ...pieces);
  }

  snapshot(
    geometry: { diskSize: number; chunkSizeBytes: number; transferId?: string; targetId?: string },
    now: Date,
  ): TransferCheckpoint {
    return {
      version: 1,
      ...(geometry.transferId !== undefined ? { transferId: geometry.transferId } : {}),
      ...(geometry.targetId !== undefined ? { targetId: geometry.targetId } : {}),
      diskSize: geometry.diskSize,
      chunkSizeBytes: geometry.chunkSizeBytes,
      doneBelow: this.doneBelow,
      doneRuns: this.runs.map(([start, end]) => [start, end]),
      bytesDone: this.bytesDone,
      chunksDone: this.chunksDone,
      dataBytes: this.dataBytes,
      zeroBytes: this.zeroBytes,
      updatedAt: now.toISOString(),
    };
  }

  private add(start: number, end: number): void {
    if (end <= this.doneBelow) return;
    start = Math.max(start, this.doneBelow);
    // Insert, then merge neighbours that touch or overlap; runs stay few.
    let at = 0;
    while (at < this.runs.length && this.runs[at]![0] < start) at++;
    this.runs.splice(at, 0, [start, end]);
    const merged: Array<[number, number]> = [];
    for (const run of this.runs) {
      const last = merged[merged.length - 1];
      if (last !== undefined && run[0] <= last[1]) last[1] = Math.max(last[1], run[1]);
      else merged.push(run);
    }
    while (merged.length > 0 && merged[0]![0] <= this.doneBelow) {
      this.doneBelow = Math.max(this.doneBelow, merged.shift()![1]);
    }
    this.runs.splice(0, this.runs.length, ...merged);
  }
}
