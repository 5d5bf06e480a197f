import { constants } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import type { MountSlot } from '../contracts/connector.js';
import type {
  ChangedBlockReader,
  Extent,
  ReaderHints,
  ReadOptions,
  SyncWarning,
} from '../contracts/reader.js';
import { SyncproxyError } from '../errors/syncproxy-error.js';
import { abortError, toSyncproxyError } from '../errors/to-syncproxy-error.js';
import { allocatedRanges } from './allocated-ranges.js';
import { blockDeviceSize, logicalBlockSize } from './block-device.js';

export interface DeviceReaderOptions {
  /** The device (`/dev/sdc`, as {@link locateDevice} returns it) or an image file. */
  path: string;
  /** The disk's size as the platform says; the device must hold at least this much (volumes are often rounded up). */
  diskSize: number;
  /** Block size of the reads the engine plans; default the device's logical block size, 512 for a file. */
  granularity?: number;
  /**
   * What to read for a full sync: `'allocated'` (default) the data ranges of a
   * sparse file (SEEK_DATA/SEEK_HOLE) and the whole of a device, which shows no
   * holes; `'whole'` the entire disk as data; or the extents the platform named
   * (a delta volume's changed ranges). With `'allocated'` and `'whole'` the
   * reader declares itself full (`hints.incremental: false`); with named
   * extents it declares nothing, and the caller says which they are
   * (`transferDisk`'s `full`, or `defineConnector` from the reader's base).
   */
  extents?: 'allocated' | 'whole' | readonly Extent[];
  /** Held while the reader is open; released by `close()`. */
  mountSlot?: MountSlot;
  /** Runs on `close()` after the device is closed: detach the volume, delete a clone. */
  onClose?: () => Promise<void>;
}

/**
 * A {@link ChangedBlockReader} over an attached volume's device, or an image
 * file: positional reads into the caller's buffer, so the engine's pooled chunk
 * buffers are filled without a copy. Owns `mountSlot` and `onClose` from the
 * call on: `close()` runs them whatever happened before, and a failed open
 * runs them before it throws.
 */
export async function openDeviceReader(options: DeviceReaderOptions): Promise<ChangedBlockReader> {
  const release = releaser(options);
  try {
    const { path, diskSize } = options;
    if (typeof path !== 'string' || path === '') {
      throw new SyncproxyError('openDeviceReader: path is required', { code: 'config', retryable: false });
    }
    if (!Number.isSafeInteger(diskSize) || diskSize < 0) {
      throw new SyncproxyError(`openDeviceReader: diskSize must be an integer >= 0 (got ${diskSize})`, {
        code: 'config',
        retryable: false,
      });
    }
    const handle = await open(path, constants.O_RDONLY).catch((error: unknown) => {
      throw toSyncproxyError(error, { operation: `open ${path}` });
    });
    try {
      const stat = await handle.stat();
      const isDevice = stat.isBlockDevice();
      if (!isDevice && !stat.isFile()) {
        throw new SyncproxyError(`openDeviceReader: ${path} is neither a block device nor a file`, {
          code: 'config',
          retryable: false,
        });
      }
      const size = isDevice ? await blockDeviceSize(stat.rdev) : stat.size;
      if (size < diskSize) {
        throw new SyncproxyError(
          `${path} holds ${size} bytes, less than the disk's ${diskSize}: the wrong volume is attached, or it is not fully attached yet`,
          { code: 'integrity', retryable: false, details: { path, size, diskSize } },
        );
      }
      const granularity = options.granularity ?? (isDevice ? await logicalBlockSize(stat.rdev) : 512);
      if (!Number.isSafeInteger(granularity) || granularity < 1) {
        throw new SyncproxyError(
          `openDeviceReader: granularity must be an integer >= 1 (got ${granularity})`,
          {
            code: 'config',
            retryable: false,
          },
        );
      }
      const plan = await planExtents(options, isDevice, granularity);
      const hints: ReaderHints | undefined = Array.isArray(options.extents)
        ? undefined
        : { incremental: false };
      return new DeviceReader({ handle, path, diskSize, granularity, ...plan, hints, release });
    } catch (error) {
      await handle.close().catch(() => {});
      throw error;
    }
  } catch (error) {
    await release().catch(() => {});
    throw error;
  }
}

interface ExtentPlan {
  extents: readonly Extent[];
  warnings: SyncWarning[];
}

async function planExtents(
  options: DeviceReaderOptions,
  isDevice: boolean,
  granularity: number,
): Promise<ExtentPlan> {
  const { diskSize, path } = options;
  const whole: Extent[] = diskSize > 0 ? [{ offset: 0, length: diskSize, kind: 'data' }] : [];
  const choice = options.extents ?? 'allocated';
  if (choice === 'whole' || (choice === 'allocated' && isDevice)) return { extents: whole, warnings: [] };
  if (choice === 'allocated') {
    const ranges = await allocatedRanges(path, diskSize);
    if (ranges === undefined) {
      return {
        extents: whole,
        warnings: [
          {
            code: 'allocation-unknown',
            message: `the data ranges of ${path} could not be listed (xfs_io missing?): the whole file is read`,
          },
        ],
      };
    }
    return { extents: alignOutward(ranges, granularity, diskSize), warnings: [] };
  }
  if (!Array.isArray(choice)) {
    throw new SyncproxyError(
      `openDeviceReader: extents must be 'allocated', 'whole' or an array of extents (got ${JSON.stringify(choice)})`,
      { code: 'config', retryable: false },
    );
  }
  let end = 0;
  for (const [i, extent] of choice.entries()) {
    const valid =
      Number.isSafeInteger(extent?.offset) &&
      Number.isSafeInteger(extent?.length) &&
      extent.length > 0 &&
      extent.offset >= end &&
      extent.offset + extent.length <= diskSize &&
      (extent.kind === 'data' || extent.kind === 'zero');
    if (!valid) {
      throw new SyncproxyError(
        `openDeviceReader: extents[${i}] ${JSON.stringify(extent)} must be sorted, non-overlapping, non-empty and within the disk (${diskSize} bytes)`,
        { code: 'config', retryable: false },
      );
    }
    end = extent.offset + extent.length;
  }
  return { extents: choice.map((e) => ({ ...e })), warnings: [] };
}

/** File-system blocks may be smaller than the granularity: widen each range to whole blocks and merge. */
function alignOutward(
  ranges: { offset: number; length: number }[],
  granularity: number,
  diskSize: number,
): Extent[] {
  const extents: Extent[] = [];
  for (const range of ranges) {
    const start = Math.floor(range.offset / granularity) * granularity;
    const end = Math.min(diskSize, Math.ceil((range.offset + range.length) / granularity) * granularity);
    if (end <= start) continue;
    const last = extents.at(-1);
    if (last !== undefined && last.offset + last.length >= start) {
      last.length = Math.max(last.offset + last.length, end) - last.offset;
    } else {
      extents.push({ offset: start, length: end - start, kind: 'data' });
    }
  }
  return extents;
}

/** Runs `onClose`, then releases the slot, once; the first error is rethrown after both ran. */
function releaser(options: DeviceReaderOptions): () => Promise<void> {
  let done: Promise<void> | undefined;
  return () => {
    done ??= (async () => {
      let failure: unknown;
      try {
        await options.onClose?.();
      } catch (error) {
        failure = error;
      }
      try {
        await options.mountSlot?.release();
      } catch (error) {
        failure ??= error;
      }
      if (failure !== undefined) throw toSyncproxyError(failure, { operation: `close ${options.path}` });
    })();
    return done;
  };
}

interface DeviceReaderInit extends ExtentPlan {
  handle: FileHandle;
  path: string;
  diskSize: number;
  granularity: number;
  hints: ReaderHints | undefined;
  release: () => Promise<void>;
}

class DeviceReader implements ChangedBlockReader {
  readonly diskSize: number;
  readonly granularity: number;
  readonly hints?: ReaderHints;
  readonly warnings: readonly SyncWarning[];
  readonly #handle: FileHandle;
  readonly #path: string;
  readonly #extents: readonly Extent[];
  readonly #release: () => Promise<void>;
  #closing: Promise<void> | undefined;

  constructor(init: DeviceReaderInit) {
    this.diskSize = init.diskSize;
    this.granularity = init.granularity;
    if (init.hints !== undefined) this.hints = init.hints;
    this.warnings = init.warnings;
    this.#handle = init.handle;
    this.#path = init.path;
    this.#extents = init.extents;
    this.#release = init.release;
  }

  async *extents(options?: ReadOptions): AsyncGenerator<Extent> {
    for (const extent of this.#extents) {
      if (options?.signal?.aborted) throw abortError(options.signal, 'extents');
      yield { ...extent };
    }
  }

  async read(offset: number, length: number, options?: ReadOptions): Promise<Uint8Array> {
    this.#check(offset, length);
    const target = new Uint8Array(length);
    await this.readInto(target, offset, options);
    return target;
  }

  async readInto(target: Uint8Array, offset: number, options?: ReadOptions): Promise<void> {
    this.#check(offset, target.length);
    if (this.#closing !== undefined) {
      throw new SyncproxyError(`read of ${this.#path} after close`, { code: 'internal', retryable: false });
    }
    let done = 0;
    while (done < target.length) {
      if (options?.signal?.aborted) throw abortError(options.signal, 'read');
      let bytesRead: number;
      try {
        ({ bytesRead } = await this.#handle.read(target, done, target.length - done, offset + done));
      } catch (error) {
        throw toSyncproxyError(error, { operation: `read ${this.#path} at offset ${offset + done}` });
      }
      if (bytesRead === 0) {
        // The size was checked at open: a device or file that ends early now was detached or truncated under us.
        throw new SyncproxyError(
          `short read of ${this.#path}: it ends at ${offset + done} bytes, the disk is ${this.diskSize} (detached or truncated while read)`,
          { code: 'io', retryable: false, details: { path: this.#path, offset: offset + done } },
        );
      }
      done += bytesRead;
    }
  }

  /** Closes the device, then runs `onClose` and releases the mount slot, whatever failed before. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      let failure: unknown;
      try {
        await this.#handle.close();
      } catch (error) {
        failure = toSyncproxyError(error, { operation: `close ${this.#path}` });
      }
      try {
        await this.#release();
      } catch (error) {
        failure ??= error;
      }
      if (failure !== undefined) throw failure;
    })();
    return this.#closing;
  }

  #check(offset: number, length: number): void {
    if (
      !Number.isSafeInteger(offset) ||
      !Number.isSafeInteger(length) ||
      offset < 0 ||
      length < 0 ||
      offset + length > this.diskSize
    ) {
      throw new SyncproxyError(
        `read of [${offset}, ${offset + length}) is outside the disk (${this.diskSize} bytes)`,
        { code: 'internal', retryable: false },
      );
    }
  }
}
