import {
  abortError,
  type ChangedBlockReader,
  type Extent,
  type ReaderHints,
  type ReadOptions,
  SyncproxyError,
  type SyncWarning,
  zeroFill,
} from '@syncproxy/core';
import type { ObsBucket } from './bucket.js';
import type { ExportedObject } from './snapshot-export.js';

export interface ExportReaderOptions {
  bucket: ObsBucket;
  diskSize: number;
  objects: readonly ExportedObject[];
  /** The platform's block size reads are planned in. Default 1 MiB. */
  granularity?: number;
  warnings?: readonly SyncWarning[];
  /** Runs once on close (deletes the exported objects), also after a failed read. */
  onClose?: () => Promise<void>;
}

/**
 * A full read of a volume from the objects its snapshot data export wrote:
 * extents are the objects' ranges (what the export holds; the rest reads as
 * zeroes), bytes come from ranged GETs, as many in flight as the engine asks.
 */
export class ExportReader implements ChangedBlockReader {
  readonly diskSize: number;
  readonly granularity: number;
  readonly warnings: readonly SyncWarning[];
  /** The export holds the whole volume: ranges no object covers read as zeroes. */
  readonly hints: ReaderHints = { incremental: false };
  readonly #bucket: ObsBucket;
  readonly #objects: readonly ExportedObject[];
  readonly #onClose: (() => Promise<void>) | undefined;
  #closed: Promise<void> | undefined;

  constructor(options: ExportReaderOptions) {
    this.diskSize = options.diskSize;
    this.granularity = options.granularity ?? 1024 * 1024;
    this.warnings = options.warnings ?? [];
    this.#bucket = options.bucket;
    this.#onClose = options.onClose;
    let end = 0;
    for (const object of options.objects) {
      if (object.offset < end || object.length <= 0 || object.offset + object.length > this.diskSize) {
        throw new SyncproxyError(
          `exported object ${object.key} covers [${object.offset}, ${object.offset + object.length}), which overlaps another or leaves the disk (${this.diskSize} bytes)`,
          { code: 'protocol', retryable: false },
        );
      }
      end = object.offset + object.length;
    }
    this.#objects = options.objects;
  }

  async *extents(options?: ReadOptions): AsyncGenerator<Extent> {
    let pending: Extent | undefined;
    for (const object of this.#objects) {
      if (options?.signal?.aborted) throw abortError(options.signal, 'extents');
      if (pending && pending.offset + pending.length === object.offset) {
        pending.length += object.length;
        continue;
      }
      if (pending) yield pending;
      pending = { offset: object.offset, length: object.length, kind: 'data' };
    }
    if (pending) yield pending;
  }

  async read(offset: number, length: number, options?: ReadOptions): Promise<Uint8Array> {
    const target = new Uint8Array(length);
    await this.readInto(target, offset, options);
    return target;
  }

  async readInto(target: Uint8Array, offset: number, options?: ReadOptions): Promise<void> {
    if (this.#closed) throw new SyncproxyError('read after close', { code: 'internal', retryable: false });
    const end = offset + target.length;
    if (!Number.isSafeInteger(offset) || offset < 0 || end > this.diskSize) {
      throw new SyncproxyError(`read of [${offset}, ${end}) is outside the disk (${this.diskSize} bytes)`, {
        code: 'internal',
        retryable: false,
      });
    }
    const reads: Array<Promise<void>> = [];
    let cursor = offset;
    for (const object of this.#overlapping(offset, end)) {
      const from = Math.max(offset, object.offset);
      const to = Math.min(end, object.offset + object.length);
      if (from > cursor) zeroFill(target, cursor - offset, from - cursor);
      reads.push(
        this.#bucket.readInto(
          object.key,
          from - object.offset,
          target.subarray(from - offset, to - offset),
          options?.signal,
        ),
      );
      cursor = to;
    }
    if (cursor < end) zeroFill(target, cursor - offset, end - cursor);
    // Every GET settles before this returns, so none writes into a buffer the engine already reuses.
    const failed = (await Promise.allSettled(reads)).find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /** Objects that overlap `[start, end)`, found by binary search (exports of big disks hold many). */
  *#overlapping(start: number, end: number): Generator<ExportedObject> {
    const objects = this.#objects;
    let low = 0;
    let high = objects.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      const object = objects[middle]!;
      if (object.offset + object.length <= start) low = middle + 1;
      else high = middle;
    }
    for (let i = low; i < objects.length && objects[i]!.offset < end; i++) yield objects[i]!;
  }

  close(): Promise<void> {
    this.#closed ??= this.#onClose?.() ?? Promise.resolve();
    return this.#closed;
  }
}
