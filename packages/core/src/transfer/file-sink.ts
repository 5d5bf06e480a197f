import { constants } from 'node:fs';
import { type FileHandle, open, realpath, stat } from 'node:fs/promises';
import pLimit from 'p-limit';
import { blockDeviceSize } from '../attach/block-device.js';
import type { BlockSink } from '../contracts/sink.js';
import { SyncproxyError } from '../errors/syncproxy-error.js';
import { toSyncproxyError } from '../errors/to-syncproxy-error.js';
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
   * Positional writes in flight at once. Default: 1 to a regular file, 2 to a block device. A
   * buffered write to a file holds the file's inode lock for its whole copy (ext4, XFS and tmpfs
   * alike), dirty-page throttling included, and a second writer spins on that lock while the first
   * runs: measured on 2 cores (4 GiB, ext4), a second writer added 1.2 to 1.5 CPU seconds of spinning
   * and no speed. The engine's reads and hashing stay as concurrent as they like.
   */
  maxConcurrentWrites?: number;
  /** File mode of an image the sink creates (default 0o600: a disk image holds everything the VM holds). */
  mode?: number;
}

/**
 * Granularity at which the sink remembers which parts of the file are still
 * holes it made itself: 1 bit per MiB, 128 KiB of memory for a 1 TiB disk.
 */
const HOLE_UNIT_BYTES = 1 << 20;
/** Default writes in flight to a regular file (see {@link FileSinkOptions.maxConcurrentWrites}). */
const FILE_WRITES = 1;
/** Default writes in flight to a block device: its buffered writes take no inode lock (blkdev_write_iter). */
const DEVICE_WRITES = 2;
/** Largest read when checking whether a range that must read as zeroes already does. */
const ZERO_CHECK_BYTES = 256 << 10;

/**
 * A {@link BlockSink} over a raw image file (kept sparse) or a block device.
 *
 * - `open(diskSize)` creates the file if needed, never truncates what it holds,
 *   and sets its length to `diskSize` (growing it leaves a hole); a block
 *   device must be at least `diskSize` bytes.
 * - `writeZeroes` leaves holes: Node cannot punch holes (no fallocate), so a
 *   range the sink knows is still a hole it made is skipped, and any other
 *   range is read first and overwritten with zeroes only where it is not
 *   already zero. An incremental applied on an old image stays byte-exact and
 *   a fresh image stays sparse.
 * - Positional I/O on one file handle; calls for disjoint ranges may overlap.
 */
export class FileSink implements BlockSink {
  readonly path: string;
  private readonly options: FileSinkOptions;
  private handle: FileHandle | undefined;
  private deviceSize: number | undefined;
  private isDevice = false;
  /** Bit set = the unit is a hole this sink made and nothing has been written into it since. */
  private holes: Uint8Array = new Uint8Array(0);
  private closed = false;
  private readonly writeLimit: ReturnType<typeof pLimit>;
  #targetId: string | undefined;

  constructor(path: string, options: FileSinkOptions = {}) {
    if (typeof path !== 'string' || path === '') {
      throw new SyncproxyError('FileSink needs a file or block device path', { code: 'config' });
    }
    this.path = path;
    this.options = options;
    // Known for certain once open() has seen the target (a block device or a file); 2 until then.
    this.writeLimit = pLimit(options.maxConcurrentWrites ?? DEVICE_WRITES);
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
        if (this.options.maxConcurrentWrites === undefined) this.writeLimit.concurrency = FILE_WRITES;
        this.#targetId = `file:${stat.dev}:${stat.ino}:${stat.birthtimeNs}`;
        const size = Number(stat.size);
        if (size !== diskSize) await handle.truncate(diskSize);
        this.deviceSize = diskSize;
        this.trackHoles(size, diskSize);
      }
    } catch (error) {
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

  async write(offset: number, data: Uint8Array): Promise<void> {
    const handle = this.opened();
    this.markWritten(offset, data.length);
    return this.writeLimit(() => this.writeAll(handle, offset, data));
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
      const stepEnd = Math.min(unitEnd, at + ZERO_CHECK_BYTES);
      const size = stepEnd - at;
      scratch ??= new Uint8Array(ZERO_CHECK_BYTES);
      const view = scratch.subarray(0, size);
      await this.readInto(handle, view, at);
      const from = at;
      if (!isAllZero(view))
        await this.writeLimit(() => this.writeAll(handle, from, ZERO_BLOCK.subarray(0, size)));
      at = stepEnd;
    }
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    await this.readInto(this.opened(), out, offset);
    return out;
  }

  async flush(): Promise<void> {
    if (this.handle === undefined || this.options.sync === false) return;
    const handle = this.handle;
    await this.io(`flush ${this.path}`, () => handle.datasync());
  }

  /** Idempotent. */
  async close(): Promise<void> {
    const handle = this.handle;
    this.handle = undefined;
    this.closed = true;
    this.holes = new Uint8Array(0);
    if (handle !== undefined) await this.io(`close ${this.path}`, () => handle.close());
  }

  private async readInto(handle: FileHandle, target: Uint8Array, offset: number): Promise<void> {
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
