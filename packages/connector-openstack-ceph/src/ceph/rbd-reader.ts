import {
  abortError,
  type ChangedBlockReader,
  type Extent,
  type Logger,
  type ReaderHints,
  type ReadOptions,
  SyncproxyError,
  silentLogger,
  zeroFill,
} from '@syncproxy/core';
import type { RbdCli, RbdProcess } from './rbd-cli.js';
import {
  diffExtentsOf,
  RbdExportDiffStream,
  type RbdImageInfo,
  type RbdImageRef,
  rbdDiffExtents,
  rbdImageInfo,
  spawnRbdDiff,
} from './rbd-image.js';

export interface OpenRbdReaderOptions extends RbdImageRef {
  cli: RbdCli;
  logger?: Logger;
  signal?: AbortSignal;
  /**
   * @internal Read rbd's output from a Unix socket straight into the engine's buffers
   * (default true) or from Node's pipe to the child: for benchmarks and tests. Where no
   * socket can be made the reader uses the pipe anyway.
   */
  useSocket?: boolean;
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
  const { cli } = options;
  const ref: RbdImageRef = {
    pool: options.pool,
    image: options.image,
    snapshot: options.snapshot,
    mode: options.mode ?? 'exact',
    ...(options.fromSnapshot !== undefined ? { fromSnapshot: options.fromSnapshot } : {}),
  };
  const useSocket = options.useSocket ?? true;
  // The listing and the stream start with `rbd info`, not after it: each rbd command spends tens of
  // milliseconds connecting to the cluster, and the engine's first read waits for the whole listing.
  const stop = new AbortController();
  const listing = spawnRbdDiff(cli, ref, { signal: stop.signal });
  const opening = RbdExportDiffStream.open(cli, ref, { signal: stop.signal, useSocket });
  opening.catch(() => {});
  let info: RbdImageInfo;
  try {
    info = await rbdImageInfo(cli, options, { signal: options.signal });
  } catch (error) {
    stop.abort(error);
    await listing.stop();
    await opening.then((stream) => stream.close()).catch(() => {});
    throw error;
  }
  return new RbdReader(
    cli,
    ref,
    info.sizeBytes,
    info.objectSizeBytes,
    options.logger ?? silentLogger,
    useSocket,
    stop,
    { listing, opening },
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

class RbdReader implements ChangedBlockReader {
  readonly granularity: number;
  readonly hints: ReaderHints;
  private pending: PendingRead[] = [];
  private stream: RbdExportDiffStream | undefined;
  /** The stream started ahead of the first read (see {@link extents}). */
  private opening: Promise<RbdExportDiffStream> | undefined;
  /** Every byte below this has gone by in the current stream. */
  private position = 0;
  /** The end of the `z` record the stream is in, from `position` on. */
  private zeroEnd: number | undefined;
  private pumping = false;
  private closed = false;
  private restarts = 0;
  /** The `rbd diff` started with the reader, for the first listing. */
  private listing: RbdProcess | undefined;
  private readonly watchers = new Map<AbortSignal, () => void>();

  constructor(
    private readonly cli: RbdCli,
    private readonly ref: RbdImageRef,
    readonly diskSize: number,
    objectSize: number,
    private readonly logger: Logger,
    private readonly useSocket: boolean,
    private readonly stop: AbortController,
    started: { listing: RbdProcess; opening: Promise<RbdExportDiffStream> },
  ) {
    this.listing = started.listing;
    this.opening = started.opening;
    // `rbd diff` reports byte ranges (an unaligned write shows as exactly its
    // bytes); only whole-object mode aligns extents, to the RADOS object.
    this.granularity = ref.mode === 'whole-object' ? objectSize : 1;
    // `rbd diff` without `--from-snap` lists the whole image; with it, the changes since that snapshot.
    this.hints = { incremental: ref.fromSnapshot !== undefined };
  }

  extents(options: ReadOptions = {}): AsyncIterable<Extent> {
    this.assertOpen();
    const signal = options.signal ? AbortSignal.any([options.signal, this.stop.signal]) : this.stop.signal;
    // The stream started with the reader: rbd export-diff has connected to the cluster and filled its
    // pipe while the engine lists. The first listing reads the `rbd diff` started with the reader too.
    const started = this.listing;
    this.listing = undefined;
    return started === undefined
      ? rbdDiffExtents(this.cli, this.ref, this.diskSize, { signal })
      : diffExtentsOf(started, this.ref, this.diskSize, signal);
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
    await this.listing?.stop();
    this.listing = undefined;
    await this.stream?.close();
    this.stream = undefined;
    const opening = this.opening;
    this.opening = undefined;
    await opening?.then((stream) => stream.close()).catch(() => {});
  }

  private openStream(): Promise<RbdExportDiffStream> {
    return RbdExportDiffStream.open(this.cli, this.ref, {
      signal: this.stop.signal,
      useSocket: this.useSocket,
    });
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
        if (this.lowestNext() < this.position) await this.restart();
        const spanEnd = await this.enterRecord();
        if (spanEnd === undefined) {
          for (const request of [...this.pending])
            this.settle(request, this.notInDiff(request.next, request.end));
          break;
        }
        if (this.pending.length === 0) break;
        await this.serve(spanEnd);
      }
    } catch (error) {
      for (const request of [...this.pending]) this.settle(request, error);
      await this.stream?.close().catch(() => {});
      this.stream = undefined;
      this.position = 0;
      this.zeroEnd = undefined;
    } finally {
      this.pumping = false;
    }
  }

  private lowestNext(): number {
    let low = Number.POSITIVE_INFINITY;
    for (const request of this.pending) low = Math.min(low, request.next);
    return low;
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
    await this.stream?.close();
    this.stream = undefined;
    this.position = 0;
    this.zeroEnd = undefined;
  }

  /**
   * Puts the stream inside a `w` or `z` record (the one it is in, else the
   * next) and returns where that record ends; undefined at the stream's end.
   * Reads that need bytes of a gap before the next record fail: records ascend,
   * so those bytes will never come.
   */
  private async enterRecord(): Promise<number | undefined> {
    if (this.zeroEnd !== undefined) return this.zeroEnd;
    if (this.stream !== undefined && this.stream.dataLeft > 0) return this.position + this.stream.dataLeft;
    if (this.stream === undefined) {
      const opening = this.opening ?? this.openStream();
      this.opening = undefined;
      const stream = await opening;
      if (this.closed) {
        await stream.close();
        throw new SyncproxyError('the rbd reader was closed', { code: 'aborted', retryable: false });
      }
      this.stream = stream;
    }
    while (true) {
      const record = await this.stream.next();
      if (record.type === 'size' && record.sizeBytes !== this.diskSize) {
        throw new SyncproxyError(
          `rbd export-diff of ${this.ref.image}@${this.ref.snapshot} reports size ${record.sizeBytes}, rbd info ${this.diskSize}`,
          { code: 'integrity', retryable: false },
        );
      }
      if (record.type === 'end') return undefined;
      if (record.type !== 'write' && record.type !== 'zero') continue;
      for (const request of [...this.pending]) {
        if (request.next < record.offset) {
          this.settle(request, this.notInDiff(request.next, Math.min(record.offset, request.end)));
        }
      }
      this.position = record.offset;
      if (record.type === 'zero') this.zeroEnd = record.offset + record.length;
      return record.offset + record.length;
    }
  }

  /**
   * Serves the waiting read lowest in the disk from the record the stream is
   * in, up to `spanEnd`: data goes straight from rbd into that read's buffer,
   * then to any other read overlapping the same bytes. Bytes no read waits
   * for are passed over (the engine reads in order; a read behind restarts).
   */
  private async serve(spanEnd: number): Promise<void> {
    const stream = this.stream!;
    const isZero = this.zeroEnd !== undefined;
    let first = this.pending[0]!;
    for (const request of this.pending) if (request.next < first.next) first = request;
    const from = Math.min(first.next, spanEnd);
    if (from > this.position) {
      if (!isZero) await stream.skipData(from - this.position);
      this.advance(from, spanEnd);
      if (from === spanEnd) return;
    }
    const to = Math.min(first.end, spanEnd);
    if (isZero) {
      if (!first.isZeroed) zeroFill(first.buffer, from - first.offset, to - from);
    } else {
      await stream.readData(first.buffer, from - first.offset, to - from);
    }
    for (const request of [...this.pending]) {
      if (request === first || request.next >= to) continue;
      const at = request.next;
      const end = Math.min(request.end, to);
      if (isZero) {
        if (!request.isZeroed) zeroFill(request.buffer, at - request.offset, end - at);
      } else {
        request.buffer.set(first.buffer.subarray(at - first.offset, end - first.offset), at - request.offset);
      }
      request.next = end;
      if (request.next === request.end) this.settle(request);
    }
    first.next = to;
    if (first.next === first.end) this.settle(first);
    this.advance(to, spanEnd);
  }

  private advance(to: number, spanEnd: number): void {
    this.position = to;
    if (to === spanEnd) this.zeroEnd = undefined;
  }

  private notInDiff(offset: number, end: number): SyncproxyError {
    const from = this.ref.fromSnapshot === undefined ? '' : ` since ${this.ref.fromSnapshot}`;
    return new SyncproxyError(
      `read of ${offset}+${end - offset} from ${this.ref.pool}/${this.ref.image}@${this.ref.snapshot}: the range is not in the rbd diff${from} (read only the reader's extents)`,
      { code: 'integrity', retryable: false },
    );
  }
}
