import { constants } from 'node:fs';
import { type FileHandle, open, realpath, stat } from 'node:fs/promises';
import pLimit from 'p-limit';
import { blockDeviceSize } from '../attach/block-device.js';
import type { BlockSink } from '../contracts/sink.js';
import { SyncproxyError } from '../errors/syncproxy-error.js';
import { toSyncproxyError } from '../errors/to-syncproxy-error.js';
import { ChunkBufferPool, DIRECT_IO_ALIGNMENT, isDirectIoAligned } from './chunk-buffers.js';
import { isInvalidArgument, openDirect } from './direct-io.js';
import { isAllZero, ZERO_BLOCK } from './zero-detection.js';

export interface FileSinkOptions {
  /** fsync on `flush()` (default true). Only benchmarks and throw-away targets should turn it off. */
  sync?: boolean;
  /**
   * Path prefix of the engine's default checkpoint (`<statePath>.checkpoint.json`)
   * and manifest (`<statePath>.manifest`). Default: the image path for a regular
   * file; none for a block device (pass stores to `transferDisk`, or this).
   */
  statePath?: string;
  /**
   * Positional writes in flight at once, of both kinds together. Default: through the page cache, 1
   * to a regular file and 2 to a block device, and past it ({@link FileSinkOptions.directIo}) 2 more. A
   * buffered write to a file holds the file's inode lock for its whole copy (ext4, XFS and tmpfs
   * alike), dirty-page throttling included, and a second writer spins on that lock while the first
   * runs: measured on 2 cores (4 GiB, ext4), a second writer added 1.2 to 1.5 CPU seconds of spinning
   * and no speed. The engine's reads and hashing stay as concurrent as they like.
   */
  maxConcurrentWrites?: number;
  /** File mode of an image the sink creates (default 0o600: a disk image holds everything the VM holds). */
  mode?: number;
  /**
   * Write the engine's chunks past the page cache (`O_DIRECT`), on Linux, where the file system or
   * device takes it (default true). Only writes whose memory, offset and length are 4 KiB-aligned go
   * that way: the engine's own chunk buffers are ({@link transferDisk}); anything else is written
   * through the page cache as before, and so are reads, but for the zero checks of `writeZeroes`
   * ({@link FileSink.directBytesRead}). An image of many GiB then does not
   * push everything else out of the page cache, the final flush has little left to write, and the
   * kernel copies nothing (measured, 2 GiB to ext4 on 2 cores: `dd oflag=direct` 1.8–2.8 s and
   * 0.3–1.0 s of system CPU, against 4.4–6.8 s and 3.5–5.7 s through the page cache).
   * `flush()` still makes the image durable: the device's cache is flushed either way.
   */
  directIo?: boolean;
}

/**
 * Granularity at which the sink remembers which parts of the file are still
 * holes it made itself: 1 bit per MiB, 128 KiB of memory for a 1 TiB disk.
 */
const HOLE_UNIT_BYTES = 1 << 20;
/** Default writes in flight to a regular file (see {@link FileSinkOptions.maxConcurrentWrites}). */
const FILE_WRITES = 1;
/**
 * Default direct writes in flight (see {@link FileSinkOptions.directIo}): a direct write waits for
 * the device, and a second one in flight keeps it busy meanwhile. Measured (4 GiB to ext4, 2 cores):
 * 1, 2 and 4 writes took 3.2, 2.6 and 2.9 s.
 */
const DIRECT_WRITES = 2;
/** Default writes in flight to a block device: its buffered writes take no inode lock (blkdev_write_iter). */
const DEVICE_WRITES = 2;
/** Largest read through the page cache when checking whether a range that must read as zeroes already does. */
const ZERO_CHECK_BYTES = 256 << 10;
/**
 * The same check's reads past the page cache, where the image takes them: a hole unit at a time, into
 * page-aligned buffers, at most this many at once (more wait: the kernel's zeroing of a hole read is
 * CPU work, and more reads than cores add none).
 */
const DIRECT_ZERO_CHECKS = 4;

/**
 * A {@link BlockSink} over a raw image file (kept sparse) or a block device.
 *
 * - `open(diskSize)` creates the file if needed, never truncates what it holds,
 *   and sets its length to `diskSize` (growing it leaves a hole); a block
 *   device must be at least `diskSize` bytes.
 * - `writeZeroes` leaves holes: Node cannot punch holes (no fallocate), so a
 *   range the sink knows is still a hole it made is skipped, and any other
 *   range is read first (past the page cache where it can) and overwritten
 *   with zeroes only where it is not already zero. An incremental applied on
 *   an old image stays byte-exact and a fresh image stays sparse.
 * - Positional I/O on one file handle; calls for disjoint ranges may overlap.
 */
export class FileSink implements BlockSink {
  readonly path: string;
  private readonly options: FileSinkOptions;
  private handle: FileHandle | undefined;
  /** The same file opened again with O_DIRECT, for aligned writes; undefined where it cannot be. */
  private direct: FileHandle | undefined;
  /** The O_DIRECT handle after the kernel refused a write on it: closed with the sink. */
  private retiredDirect: FileHandle | undefined;
  #directBytes = 0;
  #directBytesRead = 0;
  /** Page-aligned buffers for reads past the page cache ({@link readsAsZeroes}), made on first use. */
  readonly #alignedScratch = new ChunkBufferPool(HOLE_UNIT_BYTES, DIRECT_ZERO_CHECKS);
  readonly #directZeroChecks = pLimit(DIRECT_ZERO_CHECKS);
  private deviceSize: number | undefined;
  private isDevice = false;
  /** Bit set = the unit is a hole this sink made and nothing has been written into it since. */
  private holes: Uint8Array = new Uint8Array(0);
  private closed = false;
  private readonly writeLimit: ReturnType<typeof pLimit>;
  /** Direct writes in flight: {@link writeLimit} itself when `maxConcurrentWrites` is given. */
  private readonly directLimit: ReturnType<typeof pLimit>;
  #targetId: string | undefined;

  constructor(path: string, options: FileSinkOptions = {}) {
    if (typeof path !== 'string' || path === '') {
      throw new SyncproxyError('FileSink needs a file or block device path', { code: 'config' });
    }
    this.path = path;
    this.options = options;
    // Known for certain once open() has seen the target (a block device or a file); 2 until then.
    this.writeLimit = pLimit(options.maxConcurrentWrites ?? DEVICE_WRITES);
    this.directLimit = options.maxConcurrentWrites === undefined ? pLimit(DIRECT_WRITES) : this.writeLimit;
  }

  /** The target's size: the device's for a block device, else the disk size once opened. */
  get size(): number | undefined {
    return this.deviceSize;
  }

  /**
   * The image file's device, inode and birth time, after `open` (see {@link BlockSink.targetId}):
   * a file deleted and made again may get the same inode, never the same birth time. Undefined for
   * a block device.
   */
  get targetId(): string | undefined {
    return this.#targetId;
  }

  /**
   * Bytes written past the page cache since the sink was made (see {@link FileSinkOptions.directIo}):
   * 0 where the file system refuses `O_DIRECT`, with `directIo: false`, or for writes from buffers
   * that are not aligned.
   */
  get directBytesWritten(): number {
    return this.#directBytes;
  }

  /**
   * Bytes read past the page cache since the sink was made: `writeZeroes` reads what it must zero of
   * an image it did not make so, to find what is not zero yet (a hole then makes no page of cache).
   * 0 where the file system refuses `O_DIRECT`, on tmpfs, and with `directIo: false`.
   */
  get directBytesRead(): number {
    return this.#directBytesRead;
  }

  /** True when the target is a block device (known after `open`). */
  get isBlockDevice(): boolean {
    return this.isDevice;
  }

  /** See {@link FileSinkOptions.statePath}; undefined for a block device unless given. */
  get statePath(): string | undefined {
    if (this.options.statePath !== undefined) return this.options.statePath;
    return this.isDevice ? undefined : this.path;
  }

  async open(diskSize: number): Promise<void> {
    if (this.handle !== undefined) return;
    this.closed = false;
    const handle = await this.openTarget();
    try {
      // One stat, in bigint: inode numbers and birth times may not fit a double.
      const stat = await handle.stat({ bigint: true });
      if (stat.isBlockDevice()) {
        this.isDevice = true;
        this.deviceSize = await blockDeviceSize(Number(stat.rdev));
        if (this.deviceSize < diskSize) {
          throw new SyncproxyError(
            `block device ${this.path} holds ${this.deviceSize} bytes, less than the disk's ${diskSize} (use a larger device)`,
            { code: 'no-capacity', retryable: false },
          );
        }
      } else if (stat.isFile()) {
        this.#targetId = `file:${stat.dev}:${stat.ino}:${stat.birthtimeNs}`;
        const size = Number(stat.size);
        if (size !== diskSize) await handle.truncate(diskSize);
        this.deviceSize = diskSize;
        this.trackHoles(size, diskSize);
      }
      if (stat.isFile() || stat.isBlockDevice()) this.direct = await this.openDirect(handle, stat.isFile());
      if (stat.isFile() && this.options.maxConcurrentWrites === undefined)
        this.writeLimit.concurrency = FILE_WRITES;
    } catch (error) {
      await this.direct?.close().catch(() => {});
      this.direct = undefined;
      await handle.close().catch(() => {});
      throw SyncproxyError.isInstance(error)
        ? error
        : toSyncproxyError(error, { operation: `open ${this.path}` });
    }
    this.handle = handle;
  }

  /**
   * Opens the image without following a symlink at its path: one planted
   * there (by another user of a shared directory) would make the sync
   * overwrite the link's target. The one link followed is one that resolves
   * to a block device, the way `/dev/disk/by-id/...` names devices.
   */
  private async openTarget(): Promise<FileHandle> {
    const flags = constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW;
    const mode = this.options.mode ?? 0o600;
    try {
      return await open(this.path, flags, mode);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ELOOP') throw this.mapIo('open', error);
    }
    const device = await stat(this.path).then(
      (s) => s.isBlockDevice(),
      () => false,
    );
    if (!device) {
      throw new SyncproxyError(
        `refusing to write image ${this.path}: it is a symbolic link (remove it, or give the path of the file itself)`,
        { code: 'io', retryable: false },
      );
    }
    const resolved = await this.io('open', () => realpath(this.path));
    return this.io('open', () => open(resolved, constants.O_RDWR | constants.O_NOFOLLOW));
  }

  /** The open image again, with O_DIRECT ({@link openDirect}); undefined with `directIo: false`. */
  private async openDirect(handle: FileHandle, isFile: boolean): Promise<FileHandle | undefined> {
    if (this.options.directIo === false) return undefined;
    // Read and write: the zero checks of writeZeroes read past the page cache too.
    return openDirect(handle, constants.O_RDWR, isFile);
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    const handle = this.opened();
    this.markWritten(offset, data.length);
    const direct =
      this.direct !== undefined &&
      offset % DIRECT_IO_ALIGNMENT === 0 &&
      data.length % DIRECT_IO_ALIGNMENT === 0 &&
      isDirectIoAligned(data);
    if (!direct) return this.writeLimit(() => this.writeAll(handle, offset, data));
    return this.directLimit(async () => {
      const directHandle = this.direct;
      if (directHandle !== undefined) {
        try {
          await this.writeAll(directHandle, offset, data);
          this.#directBytes += data.length;
          return;
        } catch (error) {
          // A device with larger blocks than 4 KiB, say: every later write goes through the page cache.
          // The handle stays open until close(): another write may still be using it.
          if (!SyncproxyError.isInstance(error) || !isInvalidArgument(error.cause)) throw error;
          this.#retireDirect(directHandle);
        }
      }
      // In the slot already held: with maxConcurrentWrites both kinds share one limit.
      await this.writeAll(handle, offset, data);
    });
  }

  private async writeAll(handle: FileHandle, offset: number, data: Uint8Array): Promise<void> {
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await this.io(`write ${this.path} at ${offset + done}`, () =>
        handle.write(data, done, data.length - done, offset + done),
      );
      if (bytesWritten === 0) {
        throw new SyncproxyError(`write ${this.path} at ${offset + done} wrote nothing`, {
          code: 'io',
          retryable: false,
        });
      }
      done += bytesWritten;
    }
  }

  async writeZeroes(offset: number, length: number): Promise<void> {
    const handle = this.opened();
    const end = offset + length;
    let scratch: Uint8Array | undefined;
    let at = offset;
    while (at < end) {
      const unit = Math.floor(at / HOLE_UNIT_BYTES);
      const unitEnd = Math.min((unit + 1) * HOLE_UNIT_BYTES, end);
      if (this.isHole(unit)) {
        at = unitEnd;
        continue;
      }
      const from = at;
      let stepEnd = unitEnd;
      let zero = await this.readsAsZeroesPastCache(from, unitEnd - from);
      if (zero === undefined) {
        stepEnd = Math.min(unitEnd, at + ZERO_CHECK_BYTES);
        scratch ??= new Uint8Array(ZERO_CHECK_BYTES);
        const view = scratch.subarray(0, stepEnd - from);
        await this.readFully(handle, view, from);
        zero = isAllZero(view);
      }
      if (!zero)
        await this.writeLimit(() => this.writeAll(handle, from, ZERO_BLOCK.subarray(0, stepEnd - from)));
      at = stepEnd;
    }
  }

  /**
   * Whether `length` bytes at `offset` read as zeroes, read past the page cache: a hole of an old
   * image so costs no page of cache (measured, a full sync onto a 16 GiB ext4 image with 1% data: 26 s
   * through the cache, which it also filled with 16 GiB of zero pages). A direct read writes the
   * range's dirty pages back first, so it sees every write. Undefined where it cannot be read so (no
   * direct handle, unaligned, or no aligned buffer to be had): read it through the cache.
   */
  private readsAsZeroesPastCache(offset: number, length: number): Promise<boolean | undefined> {
    if (this.direct === undefined || offset % DIRECT_IO_ALIGNMENT !== 0 || length % DIRECT_IO_ALIGNMENT !== 0)
      return Promise.resolve(undefined);
    return this.#directZeroChecks(() => this.#readsAsZeroesPastCache(offset, length));
  }

  async #readsAsZeroesPastCache(offset: number, length: number): Promise<boolean | undefined> {
    const direct = this.direct;
    if (direct === undefined) return undefined;
    const buffer = this.#alignedScratch.acquire(HOLE_UNIT_BYTES);
    try {
      if (!isDirectIoAligned(buffer) || length > buffer.length) return undefined;
      const view = buffer.subarray(0, length);
      await this.readFully(direct, view, offset);
      this.#directBytesRead += length;
      return isAllZero(view);
    } catch (error) {
      // A device with larger blocks than 4 KiB, say: every later read and write goes through the cache.
      if (!SyncproxyError.isInstance(error) || !isInvalidArgument(error.cause)) throw error;
      this.#retireDirect(direct);
      return undefined;
    } finally {
      // A plain buffer (the pool's slots all in use) is left to the GC: only aligned ones are kept.
      if (isDirectIoAligned(buffer)) this.#alignedScratch.release(buffer);
    }
  }

  /** Stops using `direct` after the kernel refused it; it stays open until close(), as another call may still use it. */
  #retireDirect(direct: FileHandle): void {
    if (this.direct !== direct) return;
    this.direct = undefined;
    this.retiredDirect = direct;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    await this.readFully(this.opened(), out, offset);
    return out;
  }

  /** Reads `target.length` bytes at `offset` into `target`; past the end of the file, zeroes. */
  async readInto(offset: number, target: Uint8Array): Promise<void> {
    await this.readFully(this.opened(), target, offset);
  }

  async flush(): Promise<void> {
    if (this.handle === undefined || this.options.sync === false) return;
    const handle = this.handle;
    await this.io(`flush ${this.path}`, () => handle.datasync());
  }

  /** Idempotent. */
  async close(): Promise<void> {
    const handle = this.handle;
    const direct = [this.direct, this.retiredDirect];
    this.handle = undefined;
    this.direct = undefined;
    this.retiredDirect = undefined;
    this.closed = true;
    this.holes = new Uint8Array(0);
    await Promise.all(direct.map((d) => d?.close().catch(() => {})));
    if (handle !== undefined) await this.io(`close ${this.path}`, () => handle.close());
  }

  private async readFully(handle: FileHandle, target: Uint8Array, offset: number): Promise<void> {
    let done = 0;
    while (done < target.length) {
      const { bytesRead } = await this.io(`read ${this.path} at ${offset + done}`, () =>
        handle.read(target, done, target.length - done, offset + done),
      );
      if (bytesRead === 0) {
        // Past the end of the file everything reads as zeroes.
        target.fill(0, done);
        return;
      }
      done += bytesRead;
    }
  }

  private trackHoles(previousSize: number, diskSize: number): void {
    const units = Math.ceil(diskSize / HOLE_UNIT_BYTES);
    this.holes = new Uint8Array(Math.ceil(units / 8));
    // Units wholly past the old end of the file are holes the truncate made.
    for (let unit = Math.ceil(previousSize / HOLE_UNIT_BYTES); unit < units; unit++) {
      this.holes[unit >> 3]! |= 1 << (unit & 7);
    }
  }

  private isHole(unit: number): boolean {
    return ((this.holes[unit >> 3] ?? 0) & (1 << (unit & 7))) !== 0;
  }

  private markWritten(offset: number, length: number): void {
    if (length === 0 || this.holes.length === 0) return;
    const last = Math.floor((offset + length - 1) / HOLE_UNIT_BYTES);
    for (let unit = Math.floor(offset / HOLE_UNIT_BYTES); unit <= last; unit++) {
      const at = unit >> 3;
      if (at < this.holes.length) this.holes[at]! &= ~(1 << (unit & 7));
    }
  }

  private opened(): FileHandle {
    if (this.handle === undefined) {
      throw new SyncproxyError(
        `FileSink ${this.path} is ${this.closed ? 'closed' : 'not open'} (call open(diskSize) first)`,
        {
          code: 'internal',
          retryable: false,
        },
      );
    }
    return this.handle;
  }

  private async io<T>(operation: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      throw this.mapIo(operation, error);
    }
  }

  private mapIo(operation: string, error: unknown): SyncproxyError {
    const mapped = toSyncproxyError(error, { operation });
    // Local disk errors do not heal by waiting (unlike a network sink).
    if (mapped.code === 'internal') {
      return new SyncproxyError(mapped.message, { code: 'io', retryable: false, cause: error });
    }
    return mapped;
  }
}
