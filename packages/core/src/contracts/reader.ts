import type { SyncproxyError } from '../errors/syncproxy-error.js';

/** What an extent holds: bytes to copy, or a range that reads as zeroes. */
export type ExtentKind = 'data' | 'zero';

/** A byte range of a disk. Offsets and lengths are in bytes. */
export interface Extent {
  offset: number;
  length: number;
  kind: ExtentKind;
}

/** A degraded mode a reader or connector fell into, reported instead of hidden. */
export interface SyncWarning {
  /** e.g. `hash-diff` (no change tracking), `cbt-reset` (full sync instead of incremental). */
  code: string;
  message: string;
}

/**
 * What a reader tells the engine about itself, declared instead of cast. Every
 * wrapper (`defineConnector`'s included) forwards it unchanged.
 */
export interface ReaderHints {
  /** The chunk grid the reader works in (a hash-diff reader's manifest grid); the engine adopts it. */
  chunkSizeBytes?: number;
  /**
   * Listing the extents reads the disk's data (a hash diff): the engine lists
   * them once and never a second time to count totals.
   */
  extentsReadData?: boolean;
  /**
   * The extents are the changes since a base (true), or describe the whole
   * disk (false: ranges they do not name read as zeroes, and the engine zeroes
   * them on the target). `defineConnector` fills it in from `openReader`'s
   * `base` when the reader does not say; a connector that falls back to a
   * full read although a base was given declares `false` itself.
   */
  incremental?: boolean;
  /**
   * Bytes of reads this reader runs at full speed with in flight, when that is
   * less than the engine's default (`concurrency` reads of up to a chunk each:
   * 32 MiB). A fast local source (an NBD server on the proxy) needs only a few
   * requests queued to stay busy, and each byte more in flight is a buffer the
   * kernel fills outside the CPU cache. The engine keeps reads within it (a
   * read larger than it goes alone); it does not bound writes or hashing,
   * which `maxInFlightBytes` does.
   */
  readBytesInFlight?: number;
}

export interface ReadOptions {
  signal?: AbortSignal;
  /**
   * Told of each retry the reader makes itself, before its backoff (a reader whose client owns
   * the retries of its platform calls, as the AWS one does). The engine's adaptive concurrency
   * counts `throttled` errors here; the caller never retries on it, so the retry owner stays one.
   * A reader that retries nothing itself never calls it; a wrapper passes it on.
   */
  onRetry?: (error: SyncproxyError) => void;
}

/**
 * One disk at one snapshot, optionally relative to a base snapshot: the
 * nbdkit-plugin shape (size, extents, pread) in TypeScript. Spec v1.
 */
export interface ChangedBlockReader {
  /** Virtual size of the disk in bytes. */
  readonly diskSize: number;
  /** The platform's block size in bytes (512 KiB on EBS, 4 MiB objects on Ceph, 512 on CBT...). */
  readonly granularity: number;
  /** Degraded modes this reader runs in (empty when none). */
  readonly warnings?: readonly SyncWarning[];
  /** Optional facts the engine uses to plan (chunk grid, cost of listing extents). */
  readonly hints?: ReaderHints;
  /**
   * Sorted, non-overlapping extents within `[0, diskSize)`: everything allocated
   * for a full read, only what changed since the base for an incremental one.
   * May be called more than once; every pass yields the same extents.
   */
  extents(options?: ReadOptions): AsyncIterable<Extent>;
  /** The bytes of `[offset, offset + length)`; always exactly `length` bytes. */
  read(offset: number, length: number, options?: ReadOptions): Promise<Uint8Array>;
  /**
   * Optional: fills `target` with the bytes at `[offset, offset + target.length)`.
   * Readers that can read into a caller's buffer (files, devices, NBD) offer it so
   * the engine can reuse a bounded pool of chunk buffers instead of allocating per
   * read. `target` may be backed by a SharedArrayBuffer.
   */
  readInto?(target: Uint8Array, offset: number, options?: ReadOptions): Promise<void>;
  close(): Promise<void>;
}

/**
 * A reader as a session made by `defineConnector` hands it out: `await using reader = await
 * session.openReader(...)` closes it at the end of the block, also when the block throws.
 */
export interface DisposableReader extends ChangedBlockReader {
  /** The same as `close()`. */
  [Symbol.asyncDispose](): Promise<void>;
}
