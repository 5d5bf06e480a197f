import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import {
  abortError,
  type ChangedBlockReader,
  type DiskManifest,
  type Extent,
  type ReaderHints,
  type ReadOptions,
  SyncproxyError,
  type SyncWarning,
} from '@syncproxy/core';
import { isZero, readExactly } from './client.js';

export interface ManifestReaderOptions {
  file: FileHandle;
  path: string;
  snapshotId: string;
  /** The manifest recorded by the snapshot: what the disk must hold while it is read. */
  manifest: DiskManifest;
  /** The manifest of the base snapshot, for an incremental. */
  base?: DiskManifest;
}

/**
 * A disk read against its snapshot manifest. Extents come from the manifests
 * alone (no read): the chunks holding data for a full sync, the chunks whose
 * SHA-256 differs from the base for an incremental. Every read is checked
 * against the snapshot's hashes, so a disk written since the snapshot fails
 * loudly instead of yielding a torn image.
 */
export class ManifestReader implements ChangedBlockReader {
  readonly diskSize: number;
  readonly granularity: number;
  readonly warnings: readonly SyncWarning[];
  readonly hints: ReaderHints;
  readonly #options: ManifestReaderOptions;
  #closed = false;

  constructor(options: ManifestReaderOptions) {
    this.#options = options;
    this.diskSize = options.manifest.diskSize;
    this.granularity = options.manifest.chunkSizeBytes;
    this.hints = { incremental: options.base !== undefined };
    const warnings: SyncWarning[] = [
      {
        code: 'hash-diff',
        message: 'a local disk has no change tracking: changes are found by comparing per-chunk SHA-256',
      },
    ];
    if (options.base !== undefined && !options.base.sameGeometry(options.manifest)) {
      warnings.push({
        code: 'hash-diff-full',
        message: `the base snapshot has another geometry (disk ${options.base.diskSize} bytes, chunk ${options.base.chunkSizeBytes}): everything is sent`,
      });
    }
    this.warnings = warnings;
  }

  async *extents(options?: ReadOptions): AsyncGenerator<Extent> {
    const { manifest } = this.#options;
    const base = this.#options.base?.sameGeometry(manifest) ? this.#options.base : undefined;
    const incremental = this.#options.base !== undefined;
    let pending: Extent | undefined;
    for (let chunk = 0; chunk < manifest.chunkCount; chunk++) {
      if (options?.signal?.aborted) throw abortError(options.signal, 'extents');
      const isZeroChunk = manifest.entry(chunk).state === 'zero';
      // A full sync skips zero chunks: a fresh image reads as zeroes there already.
      if (!incremental && isZeroChunk) continue;
      if (base?.matches(chunk, manifest.raw(chunk))) continue;
      const extent: Extent = {
        offset: chunk * manifest.chunkSizeBytes,
        length: manifest.chunkLength(chunk),
        kind: isZeroChunk ? 'zero' : 'data',
      };
      if (
        pending !== undefined &&
        pending.kind === extent.kind &&
        pending.offset + pending.length === extent.offset
      ) {
        pending.length += extent.length;
        continue;
      }
      if (pending !== undefined) yield pending;
      pending = extent;
    }
    if (pending !== undefined) yield pending;
  }

  async read(offset: number, length: number, options?: ReadOptions): Promise<Uint8Array> {
    if (this.#closed) throw new SyncproxyError('read after close', { code: 'internal', retryable: false });
    if (options?.signal?.aborted) throw abortError(options.signal, 'read');
    if (
      !Number.isSafeInteger(offset) ||
      !Number.isSafeInteger(length) ||
      offset < 0 ||
      length < 0 ||
      offset + length > this.diskSize
    ) {
      throw new SyncproxyError(
        `read of [${offset}, ${offset + length}) is outside the disk (${this.diskSize} bytes)`,
        {
          code: 'internal',
          retryable: false,
        },
      );
    }
    const { manifest, file, path } = this.#options;
    const chunkSize = manifest.chunkSizeBytes;
    // Whole chunks are read so each can be checked against its recorded hash.
    const first = Math.floor(offset / chunkSize);
    const last = length === 0 ? first - 1 : Math.floor((offset + length - 1) / chunkSize);
    const start = first * chunkSize;
    const end = last < first ? start : last * chunkSize + manifest.chunkLength(last);
    const bytes = await readExactly(file, path, new Uint8Array(end - start), start);
    for (let chunk = first; chunk <= last; chunk++) {
      const piece = bytes.subarray(
        chunk * chunkSize - start,
        chunk * chunkSize - start + manifest.chunkLength(chunk),
      );
      const matches = isZero(piece)
        ? manifest.matches(chunk, 'zero')
        : manifest.matches(chunk, createHash('sha256').update(piece).digest());
      if (!matches) {
        throw new SyncproxyError(
          `disk ${path} changed since snapshot ${this.#options.snapshotId} (chunk at offset ${chunk * chunkSize}): nothing may write to a local disk while it is synced; take a new snapshot, or read a frozen LVM/VSS snapshot device`,
          { code: 'integrity', retryable: false, details: { path, offset: chunk * chunkSize } },
        );
      }
    }
    return bytes.subarray(offset - start, offset - start + length);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#options.file.close();
  }
}
