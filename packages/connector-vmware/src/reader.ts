import {
  abortError,
  type ChangedBlockReader,
  type Extent,
  type ReaderHints,
  type ReadOptions,
  SyncproxyError,
  type SyncWarning,
} from '@syncproxy/core';
import type { NbdReader } from '@syncproxy/nbd';
import type { DiskChangeInfo } from './client.js';
import type { DataEndpoint } from './data-path.js';

/** CBT areas are whole sectors. */
export const SECTOR_BYTES = 512;

/** Asks for the QueryChangedDiskAreas window that starts at `startOffset`. */
export type ChangedAreaQuery = (startOffset: number, signal?: AbortSignal) => Promise<DiskChangeInfo>;

/**
 * The extents of a QueryChangedDiskAreas loop: each reply covers only
 * `[startOffset, startOffset + length)`, so the next call starts where it
 * ends, until the disk's capacity (govmomi `QueryChangedDiskAreas` helper).
 * Areas are checked (sorted, inside their window and the disk) and merged
 * across windows. `first` is a reply already fetched for offset 0.
 */
export async function* changedAreaExtents(
  query: ChangedAreaQuery,
  capacityBytes: number,
  options: { first?: DiskChangeInfo; signal?: AbortSignal } = {},
): AsyncGenerator<Extent> {
  let offset = 0;
  let run: Extent | undefined;
  let reply = options.first;
  while (offset < capacityBytes) {
    if (options.signal?.aborted) throw abortError(options.signal, 'QueryChangedDiskAreas');
    reply ??= await query(offset, options.signal);
    const windowEnd = reply.startOffset + reply.length;
    if (reply.startOffset !== offset || reply.length === 0) {
      throw new SyncproxyError(
        `QueryChangedDiskAreas at offset ${offset} answered the window [${reply.startOffset}, ${windowEnd}): it must start at ${offset} and not be empty`,
        { code: 'protocol', retryable: false, platform: 'vmware' },
      );
    }
    let areaEnd = offset;
    for (const area of reply.areas) {
      const end = area.start + area.length;
      if (area.length === 0) continue;
      if (area.start < areaEnd || end > windowEnd) {
        throw new SyncproxyError(
          `QueryChangedDiskAreas window [${offset}, ${windowEnd}) has area [${area.start}, ${end}) out of order or outside it`,
          { code: 'protocol', retryable: false, platform: 'vmware' },
        );
      }
      areaEnd = end;
      const start = area.start;
      const length = Math.min(end, capacityBytes) - start;
      if (length <= 0) continue;
      if (run !== undefined && run.offset + run.length === start) run.length += length;
      else {
        if (run !== undefined) yield run;
        run = { offset: start, length, kind: 'data' };
      }
    }
    offset = windowEnd;
    reply = undefined;
  }
  if (run !== undefined) yield run;
}

export interface VmwareDiskReaderOptions {
  nbd: NbdReader;
  endpoint: DataEndpoint;
  capacityBytes: number;
  /**
   * The extents are CBT's changes since a base's changeId (true), or the disk's allocated areas,
   * changeId `*` (false). The NBD reader cannot tell: it takes both as given changed extents.
   */
  incremental: boolean;
  warnings?: SyncWarning[];
  /** Told once the reader has closed (the session's bookkeeping). */
  onClose?: () => void;
}

/**
 * One disk snapshot: extents from CBT, bytes from the NBD export that serves
 * the snapshot (nbdkit vddk on a proxy). Closing it stops that export's
 * nbdkit, so none outlives its reader.
 */
export class VmwareDiskReader implements ChangedBlockReader {
  readonly diskSize: number;
  readonly granularity = SECTOR_BYTES;
  readonly warnings: readonly SyncWarning[];
  readonly hints: ReaderHints;
  readonly #nbd: NbdReader;
  readonly #endpoint: DataEndpoint;
  readonly #onClose: (() => void) | undefined;
  #closing: Promise<void> | undefined;

  constructor(options: VmwareDiskReaderOptions) {
    this.#nbd = options.nbd;
    this.#endpoint = options.endpoint;
    this.#onClose = options.onClose;
    this.diskSize = options.capacityBytes;
    this.warnings = options.warnings ?? [];
    this.hints = { ...options.nbd.hints, incremental: options.incremental };
    if (options.nbd.diskSize !== options.capacityBytes) {
      throw new SyncproxyError(
        `the NBD export of the disk is ${options.nbd.diskSize} bytes but vSphere says its capacity is ${options.capacityBytes}`,
        { code: 'integrity', retryable: false, platform: 'vmware' },
      );
    }
  }

  extents(options: ReadOptions = {}): AsyncIterable<Extent> {
    return this.#nbd.extents(options);
  }

  read(offset: number, length: number, options: ReadOptions = {}): Promise<Uint8Array> {
    return this.#nbd.read(offset, length, options);
  }

  /** Lets the engine read straight into its pooled chunk buffers. */
  readInto(target: Uint8Array, offset: number, options: ReadOptions = {}): Promise<void> {
    return this.#nbd.readInto(target, offset, options);
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      try {
        await this.#nbd.close();
      } finally {
        try {
          await this.#endpoint.close();
        } finally {
          this.#onClose?.();
        }
      }
    })();
    return this.#closing;
  }
}
