import { randomFillSync } from 'node:crypto';
import { type ChangedBlockReader, type ReadOptions, SyncproxyError, transferDisk } from '@syncproxy/core';
import { describe, expect, it } from 'vitest';
import { MemorySink } from './fixtures/memory-sink.js';
import { faultyReader, MemoryReader, seededRandom } from './fixtures/readers.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * A reader whose own client retries throttled calls (as the AWS one does): a share of its reads
 * are throttled once, reported through `onRetry`, and then succeed. It counts reads in flight.
 */
function selfRetryingReader(inner: ChangedBlockReader, share: number, seed: number) {
  const random = seededRandom(seed);
  const stats = { reported: 0, reads: 0, inFlight: 0, maxInFlight: 0, withoutListener: 0 };
  const reader: ChangedBlockReader = {
    diskSize: inner.diskSize,
    granularity: inner.granularity,
    ...(inner.hints !== undefined ? { hints: inner.hints } : {}),
    extents: (options?: ReadOptions) => inner.extents(options),
    async read(offset: number, length: number, options?: ReadOptions) {
      stats.reads++;
      stats.inFlight++;
      stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
      try {
        // Yield so that reads overlap as they would on a network.
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (random() < share) {
          if (options?.onRetry === undefined) stats.withoutListener++;
          options?.onRetry?.(new SyncproxyError('RequestThrottledException', { code: 'throttled' }));
          stats.reported++;
        }
        return await inner.read(offset, length, options);
      } finally {
        stats.inFlight--;
      }
    },
    close: () => inner.close(),
  };
  return { reader, stats };
}

function image(size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  randomFillSync(bytes);
  return bytes;
}

describe('transferDisk with adaptive concurrency (the default)', () => {
  it('is byte-exact under throttling, both the retries a reader makes itself and those the engine makes, and retries nothing twice', async () => {
    const source = image(32 * MiB + 4 * KiB);
    const { reader: reporting, stats } = selfRetryingReader(
      new MemoryReader(source, [{ offset: 0, length: source.length, kind: 'data' }]),
      0.2,
      7,
    );
    const random = seededRandom(11);
    const reader = faultyReader(reporting, () =>
      random() < 0.1 ? new SyncproxyError('Rate exceeded', { code: 'throttled' }) : undefined,
    );
    const sink = new MemorySink();
    const result = await transferDisk({
      reader,
      sink,
      chunkSizeBytes: 256 * KiB,
      retry: { attempts: 30, baseDelayMs: 0 },
      checkpoint: false,
      manifest: false,
    });
    expect(Buffer.compare(sink.image, source)).toBe(0);
    expect(stats.reported).toBeGreaterThan(0);
    expect(stats.withoutListener).toBe(0);
    // The engine retried only what reached it; the reader's own retries were counted, not repeated.
    expect(result.retries).toBe(reader.failures);
    expect(stats.reads).toBe(Math.ceil(source.length / (256 * KiB)));
  });

  it('keeps a fixed concurrency when one is given', async () => {
    const source = image(8 * MiB);
    const { reader, stats } = selfRetryingReader(
      new MemoryReader(source, [{ offset: 0, length: source.length, kind: 'data' }]),
      0,
      3,
    );
    const sink = new MemorySink();
    await transferDisk({
      reader,
      sink,
      chunkSizeBytes: 64 * KiB,
      concurrency: 2,
      checkpoint: false,
      manifest: false,
    });
    expect(Buffer.compare(sink.image, source)).toBe(0);
    expect(stats.maxInFlight).toBe(2);
  });
});
