import { randomFillSync } from 'node:crypto';
import type { ChangedBlockReader, Extent, ReaderHints } from '../src/index.js';

const POOL_BYTES = 64 << 20;
let pool: Uint8Array | undefined;

/**
 * An in-memory source of any virtual size: reads are views into one 64 MiB
 * random pool (no generation cost, no copy), so the engine is what is measured.
 * `extents` is a function so a 1 TiB disk's extents are generated, not stored.
 */
export class PoolReader implements ChangedBlockReader {
  readonly granularity = 4096;
  readonly hints: ReaderHints;
  bytesRead = 0;

  /** `incremental`: the extents are changes since a base (default false: they describe the whole disk). */
  constructor(
    readonly diskSize: number,
    private readonly list: () => Iterable<Extent>,
    options: { incremental?: boolean } = {},
  ) {
    this.hints = { incremental: options.incremental ?? false };
    if (pool === undefined) {
      pool = new Uint8Array(POOL_BYTES);
      randomFillSync(pool);
    }
  }

  async *extents(): AsyncGenerator<Extent> {
    yield* this.list();
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    this.bytesRead += length;
    const at = offset % POOL_BYTES;
    if (at + length <= POOL_BYTES) return pool!.subarray(at, at + length);
    const out = new Uint8Array(length);
    for (let done = 0; done < length; ) {
      const from = (offset + done) % POOL_BYTES;
      const n = Math.min(length - done, POOL_BYTES - from);
      out.set(pool!.subarray(from, from + n), done);
      done += n;
    }
    return out;
  }

  async close(): Promise<void> {}
}

/** One data extent over the whole disk. */
export function dense(diskSize: number): () => Iterable<Extent> {
  return function* () {
    yield { offset: 0, length: diskSize, kind: 'data' as const };
  };
}

/** `chunkBytes` changed every `every` chunks: a spread-out incremental. */
export function everyNth(
  diskSize: number,
  chunkBytes: number,
  every: number,
  maxExtents = Number.POSITIVE_INFINITY,
): () => Iterable<Extent> {
  return function* () {
    let count = 0;
    for (
      let offset = 0;
      offset + chunkBytes <= diskSize && count < maxExtents;
      offset += chunkBytes * every
    ) {
      count++;
      yield { offset, length: chunkBytes, kind: 'data' as const };
    }
  };
}
