import {
  abortError,
  type ChangedBlockReader,
  type Extent,
  type Logger,
  type ReadOptions,
  SyncproxyError,
  silentLogger,
  zeroFill,
} from '@syncproxy/core';
import type { ExportDiffRecord } from './export-diff.js';
import type { RbdCli } from './rbd-cli.js';
import { type RbdImageRef, rbdDiffExtents, rbdExportDiff, rbdImageInfo } from './rbd-image.js';

export interface OpenRbdReaderOptions extends RbdImageRef {
  cli: RbdCli;
  logger?: Logger;
  signal?: AbortSignal;
}

/**
 * A ChangedBlockReader over the `rbd` CLI: extents from `rbd diff --format json`
 * (with `--whole-object` in "rbd du" mode), bytes from one `rbd export-diff`
 * stream of the same diff. Byte-exactness comes from the export-diff data,
 * which also turns ranges that read back as zeroes into `z` records
 * (platforms/ceph.md, "Diff quirks").
 *
 * The export-diff stream only goes forward. Reads are served as it passes them,
 * in offset order whatever order they were asked in; a read behind the stream
 * restarts it (correct, but costs a re-read: the transfer engine reads in order).
 * A read of a range the diff does not describe fails with `integrity` rather
 * than inventing zeroes for an incremental's unchanged bytes.
 */
export async function openRbdReader(options: OpenRbdReaderOptions): Promise<ChangedBlockReader> {
  const info = await rbdImageInfo(options.cli, options, { signal: options.signal });
  const ref: RbdImageRef = {
    pool: options.pool,
    image: options.image,
    snapshot: options.snapshot,
    mode: options.mode ?? 'exact',
    ...(options.fromSnapshot !== undefined ? { fromSnapshot: options.fromSnapshot } : {}),
  };
  return new RbdReader(
    options.cli,
    ref,
    info.sizeBytes,
    info.objectSizeBytes,
    options.logger ?? silentLogger,
  );
}

interface PendingRead {
  offset: number;
  end: number;
  /** Everything below this is filled. */
  next: number;
  buffer: Uint8Array;
  /** The buffer is new, so already zero: `z` records need no fill. */
  isZeroed: boolean;
  resolve(): void;
  reject(error: unknown): void;
  signal: AbortSignal | undefined;
}

/** A range of the stream not yet used: a data piece (bytes) or a zero record. */
interface Span {
  offset: number;
  length: number;
  bytes?: Uint8Array;
}

class RbdReader implements ChangedBlockReader {
  readonly granularity: number;
  private pending: PendingRead[] = [];
  private records: AsyncGenerator<ExportDiffRecord, void, undefined> | undefined;
  /** Every byte below this has gone by in the current stream. */
  private position = 0;
  private leftover: Span | undefined;
  private pumping = false;
  private closed = false;
  private restarts = 0;
  private readonly stop = new AbortController();
  private readonly watchers = new Map<AbortSignal, () => void>();

  constructor(
    private readonly cli: RbdCli,
    private readonly ref: RbdImageRef,
    readonly diskSize: number,
    objectSize: number,
    private readonly logger: Logger,
  ) {
    // `rbd diff` reports byte ranges (an unaligned write shows as exactly its
    // bytes); only whole-object mode aligns extents, to the RADOS object.
    this.granularity = ref.mode === 'whole-object' ? objectSize : 1;
  }

  extents(options: ReadOptions = {}): AsyncIterable<Extent> {
    this.assertOpen();
    const signal = options.signal ? AbortSignal.any([options.signal, this.stop.signal]) : this.stop.signal;
    return rbdDiffExtents(this.cli, this.ref, this.diskSize, { signal });
  }

  async read(offset: number, length: number, options: ReadOptions = {}): Promise<Uint8Array> {
    if (!Number.isSafeInteger(length) || length < 0) {
      throw new SyncproxyError(
        `read(${offset}, ${length}): offset and length must be non-negative integers`,
        {
          code: 'internal',
          retryable: false,
        },
      );
    }
    const buffer = new Uint8Array(length);
    await this.fill(buffer, offset, true, options);
    return buffer;
  }

  /** Reads `target.length` bytes at `offset` into `target` (the engine's reused chunk buffers). */
  readInto(target: Uint8Array, offset: number, options: ReadOptions = {}): Promise<void> {
    return this.fill(target, offset, false, options);
  }

  private fill(buffer: Uint8Array, offset: number, isZeroed: boolean, options: ReadOptions): Promise<void> {
    this.assertOpen();
    const length = buffer.length;
    if (!Number.isSafeInteger(offset) || offset < 0) {
      return Promise.reject(
        new SyncproxyError(`read(${offset}, ${length}): offset and length must be non-negative integers`, {
          code: 'internal',
          retryable: false,
        }),
      );
    }
    if (offset + length > this.diskSize) {
      return Promise.reject(
        new SyncproxyError(`read(${offset}, ${length}) ends beyond the disk size ${this.diskSize}`, {
          code: 'internal',
          retryable: false,
        }),
      );
    }
    if (length === 0) return Promise.resolve();
    const signal = options.signal;
    if (signal?.aborted) return Promise.reject(abortError(signal, 'rbd read'));
    return new Promise<void>((resolve, reject) => {
      const request: PendingRead = {
        offset,
        end: offset + length,
        next: offset,
        buffer,
        isZeroed,
        resolve,
        reject,
        signal,
      };
      if (signal) this.watch(signal);
      const at = this.pending.findIndex((p) => p.offset > offset);
      if (at === -1) this.pending.push(request);
      else this.pending.splice(at, 0, request);
      void this.pump();
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stop.abort(new SyncproxyError('the rbd reader was closed', { code: 'aborted', retryable: false }));
    for (const request of [...this.pending]) {
      this.settle(
        request,
        new SyncproxyError('the rbd reader was closed', { code: 'aborted', retryable: false }),
      );
    }
    await this.records?.return(undefined);
    this.records = undefined;
  }

  private assertOpen(): void {
    if (this.closed)
      throw new SyncproxyError('the rbd reader is closed', { code: 'internal', retryable: false });
  }

  /**
   * One listener per signal, however many reads wait on it: an engine passes
   * the same signal to every read it keeps in flight.
   */
  private watch(signal: AbortSignal): void {
    if (this.watchers.has(signal)) return;
    const onAbort = (): void => {
      this.watchers.delete(signal);
      for (const request of this.pending.filter((p) => p.signal === signal)) {
        this.settle(request, abortError(signal, 'rbd read'));
      }
    };
    this.watchers.set(signal, onAbort);
    signal.addEventListener('abort', onAbort, { once: true });
  }

  private settle(request: PendingRead, error?: unknown): void {
    const index = this.pending.indexOf(request);
    if (index === -1) return;
    this.pending.splice(index, 1);
    const signal = request.signal;
    if (signal && !this.pending.some((p) => p.signal === signal)) {
      const onAbort = this.watchers.get(signal);
      if (onAbort) signal.removeEventListener('abort', onAbort);
      this.watchers.delete(signal);
    }
    if (error === undefined) request.resolve();
    else request.reject(error);
  }

  /** Moves the stream forward while reads wait; one loop at a time. */
  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.pending.length > 0 && !this.closed) {
        const low = Math.min(...this.pending.map((p) => p.next));
        if (low < this.position) await this.restart();
        const span = await this.nextSpan();
        if (span === undefined) {
          for (const request of [...this.pending])
            this.settle(request, this.notInDiff(request.next, request.end));
          break;
        }
        this.consume(span);
      }
    } catch (error) {
      for (const request of [...this.pending]) this.settle(request, error);
      await this.records?.return(undefined).catch(() => {});
      this.records = undefined;
      this.position = 0;
      this.leftover = undefined;
    } finally {
      this.pumping = false;
    }
  }

  private async restart(): Promise<void> {
    this.restarts++;
    this.logger.debug(
      {
        image: `${this.ref.pool}/${this.ref.image}@${this.ref.snapshot}`,
        restarts: this.restarts,
      },
      'restarting rbd export-diff for a read behind the stream',
    );
    await this.records?.return(undefined);
    this.records = undefined;
    this.position = 0;
    this.leftover = undefined;
  }

  /** The next range of the stream: the unused part of the last one, else the next record. */
  private async nextSpan(): Promise<Span | undefined> {
    if (this.leftover) {
      const span = this.leftover;
      this.leftover = undefined;
      return span;
    }
    this.records ??= rbdExportDiff(this.cli, this.ref, { signal: this.stop.signal });
    while (true) {
      const next = await this.records.next();
      if (next.done) return undefined;
      const record = next.value;
      if (record.type === 'size' && record.sizeBytes !== this.diskSize) {
        throw new SyncproxyError(
          `rbd export-diff of ${this.ref.image}@${this.ref.snapshot} reports size ${record.sizeBytes}, rbd info ${this.diskSize}`,
          { code: 'integrity', retryable: false },
        );
      }
      if (record.type === 'data')
        return { offset: record.offset, length: record.bytes.byteLength, bytes: record.bytes };
      if (record.type === 'zero') return { offset: record.offset, length: record.length };
      if (record.type === 'end') return undefined;
    }
  }

  /**
   * Copies a span into every read it overlaps and fails reads it proves to lie
   * outside the diff. What is left of it beyond the reads stays for the next
   * read, which usually follows right after (the engine reads in order).
   */
  private consume(span: Span): void {
    const spanEnd = span.offset + span.length;
    let used = span.offset;
    for (const request of [...this.pending]) {
      if (request.next >= spanEnd) continue;
      if (request.next < span.offset) {
        // Records ascend: bytes below this span that this read still needs will never come.
        this.settle(request, this.notInDiff(request.next, Math.min(span.offset, request.end)));
        continue;
      }
      const to = Math.min(request.end, spanEnd);
      if (span.bytes) {
        request.buffer.set(
          span.bytes.subarray(request.next - span.offset, to - span.offset),
          request.next - request.offset,
        );
      } else if (!request.isZeroed) {
        zeroFill(request.buffer, request.next - request.offset, to - request.next);
      }
      request.next = to;
      used = Math.max(used, to);
      if (request.next === request.end) this.settle(request);
    }
    if (used === span.offset && this.pending.length > 0) {
      // Every read still waiting lies beyond this span.
      this.position = spanEnd;
      return;
    }
    if (used < spanEnd) {
      this.leftover = {
        offset: used,
        length: spanEnd - used,
        ...(span.bytes ? { bytes: span.bytes.subarray(used - span.offset) } : {}),
      };
    }
    this.position = used;
  }

  private notInDiff(offset: number, end: number): SyncproxyError {
    const from = this.ref.fromSnapshot === undefined ? '' : ` since ${this.ref.fromSnapshot}`;
    return new SyncproxyError(
      `read of ${offset}+${end - offset} from ${this.ref.pool}/${this.ref.image}@${this.ref.snapshot}: the range is not in the rbd diff${from} (read only the reader's extents)`,
      { code: 'integrity', retryable: false },
    );
  }
}
