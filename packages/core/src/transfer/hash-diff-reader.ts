import type {
  ChangedBlockReader,
  Extent,
  ReaderHints,
  ReadOptions,
  SyncWarning,
} from '../contracts/reader.js';
import { SyncproxyError } from '../errors/syncproxy-error.js';
import { ChunkBufferPool } from './chunk-buffers.js';
import { canDigest } from './chunk-hash-algorithm.js';
import { ChunkHasher } from './chunk-hasher.js';
import { planChunks } from './chunk-plan.js';
import type { DiskManifest } from './manifest.js';
import { isAllZero } from './zero-detection.js';

export const DEFAULT_CHUNK_SIZE_BYTES = 4 << 20;

export interface HashDiffReaderOptions {
  /** A full reader of the disk (its extents name everything allocated). */
  reader: ChangedBlockReader;
  /** The manifest of the target as the previous transfer left it; none means every chunk is sent. */
  previousManifest?: DiskManifest;
  /** Default: the previous manifest's chunk size, else 4 MiB. */
  chunkSizeBytes?: number;
  /** Chunks read and hashed ahead of the one being compared (default 4). */
  readAhead?: number;
}

export interface HashDiffStats {
  chunksScanned: number;
  chunksChanged: number;
  bytesScanned: number;
}

/** A reader that yields only chunks whose digest differs from the previous manifest. */
export interface HashDiffReader extends ChangedBlockReader {
  /**
   * `chunkSizeBytes`: the grid it compares in (the engine adopts it so the new manifest keeps the
   * grid); `extentsReadData`: its extents cost a read of the whole disk (the engine lists them once);
   * `incremental`: true when it compares against a previous manifest.
   */
  readonly hints: Required<Pick<ReaderHints, 'chunkSizeBytes' | 'extentsReadData' | 'incremental'>>;
  /** @deprecated read `hints.chunkSizeBytes`. */
  readonly chunkSizeBytes: number;
  /** @deprecated read `hints.extentsReadData`. */
  readonly listsExtentsByReading: true;
  readonly stats: HashDiffStats;
}

/**
 * Change detection for platforms without change tracking, and for local
 * disks an agent reads: every chunk of the full `reader` is read and hashed
 * with the previous manifest's algorithm (SHA-256 or BLAKE3), and only those
 * whose digest differs from `previousManifest` are yielded,
 * whole chunks aligned to the manifest's grid. Chunks that now read as zeroes
 * are yielded as `zero` extents (never read again by the engine).
 *
 * The bytes of a changed chunk, read once to hash it, are kept until the
 * engine reads them (up to `readAhead + 4` chunks), so nothing is read twice.
 * A reader that can read into a buffer (`readInto`) reads into shared memory,
 * which a {@link ChunkHasher}'s threads hash without a copy: the `readAhead`
 * chunks in flight are hashed on every core, not one after another on the
 * event loop. The buffers of unchanged chunks are reused.
 *
 * An incomplete manifest (of an interrupted transfer) is trusted only below
 * its `pendingFrom` chunk; above it, chunks may be half-written, so they are
 * all sent.
 */
export function createHashDiffReader(options: HashDiffReaderOptions): HashDiffReader {
  const { reader, previousManifest } = options;
  const chunkSizeBytes =
    options.chunkSizeBytes ?? previousManifest?.chunkSizeBytes ?? DEFAULT_CHUNK_SIZE_BYTES;
  const readAhead = options.readAhead ?? 4;
  if (!Number.isSafeInteger(chunkSizeBytes) || chunkSizeBytes <= 0) {
    throw new SyncproxyError(`hash-diff chunk size must be a positive integer (got ${chunkSizeBytes})`, {
      code: 'config',
    });
  }
  if (!Number.isInteger(readAhead) || readAhead < 1) {
    throw new SyncproxyError(`hash-diff readAhead must be an integer >= 1 (got ${readAhead})`, {
      code: 'config',
    });
  }
  const diskSize = reader.diskSize;
  // A manifest whose digests cannot be taken here (BLAKE3 without its binding) is no base either.
  const comparable =
    previousManifest?.sameGeometry({ diskSize, chunkSizeBytes }) && canDigest(previousManifest.hashAlgorithm)
      ? previousManifest
      : undefined;
  const trustedBelow =
    comparable === undefined ? 0 : comparable.complete ? comparable.chunkCount : comparable.pendingFrom;
  const warnings: SyncWarning[] = [
    ...(reader.warnings ?? []),
    {
      code: 'hash-diff',
      message:
        'no change tracking: every chunk is read and hashed, and only chunks whose digest changed are sent',
    },
  ];
  if (previousManifest !== undefined && comparable === undefined) {
    warnings.push({
      code: 'hash-diff-full',
      message: canDigest(previousManifest.hashAlgorithm)
        ? `the previous manifest describes another geometry (disk ${previousManifest.diskSize} bytes, chunk ${previousManifest.chunkSizeBytes}): every chunk is sent`
        : `the previous manifest holds ${previousManifest.hashAlgorithm} digests, which cannot be taken here: every chunk is sent`,
    });
  }
  const stats: HashDiffStats = { chunksScanned: 0, chunksChanged: 0, bytesScanned: 0 };
  const kept = new Map<number, Uint8Array>();
  const keptLimit = readAhead + 4;
  // Made only when there are digests to take, and stopped by close().
  const hasher =
    comparable === undefined ? undefined : new ChunkHasher({ algorithm: comparable.hashAlgorithm });
  const buffers =
    typeof reader.readInto === 'function' ? new ChunkBufferPool(chunkSizeBytes, readAhead + 1) : undefined;

  // Digests are taken with the algorithm of the manifest they are compared with; with nothing to
  // compare (no base, or past its trusted part) no digest is taken at all: the chunk is sent.
  const comparedAt = (index: number): boolean => comparable !== undefined && index < trustedBelow;
  const unchanged = (index: number, digest: Uint8Array | 'zero' | undefined): boolean =>
    digest !== undefined &&
    comparable !== undefined &&
    comparedAt(index) &&
    comparable.matches(index, digest);

  async function* cells(signal?: AbortSignal): AsyncGenerator<{ index: number; hasData: boolean }> {
    let next = 0;
    for await (const job of planChunks(reader.extents({ signal }), { diskSize, chunkSizeBytes })) {
      for (; next < job.index; next++) yield { index: next, hasData: false };
      yield { index: job.index, hasData: job.dataBytes > 0 };
      next = job.index + 1;
    }
    const count = Math.ceil(diskSize / chunkSizeBytes);
    for (; next < count; next++) yield { index: next, hasData: false };
  }

  type Scanned = { index: number; data: Uint8Array | undefined; digest: Uint8Array | 'zero' | undefined };

  const scan = async (index: number, hasData: boolean, signal?: AbortSignal): Promise<Scanned> => {
    if (!hasData) return { index, data: undefined, digest: 'zero' };
    const offset = index * chunkSizeBytes;
    const length = Math.min(chunkSizeBytes, diskSize - offset);
    let data: Uint8Array;
    if (buffers !== undefined) {
      data = buffers.acquire(length);
      await reader.readInto!(data, offset, { signal });
    } else {
      data = await reader.read(offset, length, { signal });
    }
    if (data.length !== length) {
      throw new SyncproxyError(`reader returned ${data.length} bytes for [${offset}, ${offset + length})`, {
        code: 'protocol',
        retryable: false,
      });
    }
    stats.bytesScanned += length;
    let scanned: Scanned;
    if (isAllZero(data)) scanned = { index, data: undefined, digest: 'zero' };
    else if (!comparedAt(index)) return { index, data, digest: undefined };
    else scanned = { index, data, digest: await hasher!.hash(data) };
    // A chunk that is not sent gives its buffer back (its read and its digest have settled); a changed
    // one's bytes go to the engine, which keeps them as long as it needs.
    if (scanned.data === undefined || unchanged(index, scanned.digest)) {
      buffers?.release(data);
      if (scanned.data !== undefined) scanned = { ...scanned, data: undefined };
    }
    return scanned;
  };

  return {
    diskSize,
    granularity: chunkSizeBytes,
    hints: { chunkSizeBytes, extentsReadData: true, incremental: comparable !== undefined },
    chunkSizeBytes,
    listsExtentsByReading: true,
    stats,
    warnings,
    async *extents(readOptions?: ReadOptions): AsyncGenerator<Extent> {
      const signal = readOptions?.signal;
      const window: Array<Promise<Scanned>> = [];
      const settle = async function* (pending: Promise<Scanned>): AsyncGenerator<Extent> {
        const scanned = await pending;
        stats.chunksScanned++;
        if (unchanged(scanned.index, scanned.digest)) return;
        stats.chunksChanged++;
        const offset = scanned.index * chunkSizeBytes;
        const length = Math.min(chunkSizeBytes, diskSize - offset);
        if (scanned.data === undefined) {
          yield { offset, length, kind: 'zero' };
          return;
        }
        kept.set(offset, scanned.data);
        while (kept.size > keptLimit) kept.delete(kept.keys().next().value as number);
        yield { offset, length, kind: 'data' };
      };
      try {
        for await (const cell of cells(signal)) {
          const pending = scan(cell.index, cell.hasData, signal);
          // Rejections are awaited in order below; this keeps a later one from being "unhandled" meanwhile.
          pending.catch(() => {});
          window.push(pending);
          if (window.length >= readAhead) yield* settle(window.shift()!);
        }
        while (window.length > 0) yield* settle(window.shift()!);
      } finally {
        window.length = 0;
      }
    },
    async read(offset: number, length: number, readOptions?: ReadOptions): Promise<Uint8Array> {
      const start = Math.floor(offset / chunkSizeBytes) * chunkSizeBytes;
      const data = kept.get(start);
      if (data !== undefined && offset + length <= start + data.length) {
        if (offset === start && length === data.length) kept.delete(start);
        return data.subarray(offset - start, offset - start + length);
      }
      return reader.read(offset, length, readOptions);
    },
    async close(): Promise<void> {
      try {
        await reader.close();
      } finally {
        await hasher?.close();
      }
    },
  };
}
