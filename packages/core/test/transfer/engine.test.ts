import { randomFillSync } from 'node:crypto';
import { SyncproxyError, TokenBucket, type TransferProgress, transferDisk } from '@syncproxy/core';
import { describe, expect, it } from 'vitest';
import { createManualClock } from '../../src/clock.js';
import type { TransferCheckpoint } from '../../src/transfer/checkpoint.js';
import { MemorySink, MemoryStores } from './fixtures/memory-sink.js';
import { faultyReader, MemoryReader, seededRandom } from './fixtures/readers.js';
import { manifestDigestOf } from './fixtures/temp-dir.js';

const KiB = 1024;
const MiB = 1024 * KiB;

function randomImage(size: number, seed: number): Uint8Array {
  const image = new Uint8Array(size);
  const random = seededRandom(seed);
  randomFillSync(image);
  // A few zero runs so that zero detection is part of every run.
  for (let i = 0; i < 4; i++) {
    const at = Math.floor(random() * (size - 300 * KiB));
    image.fill(0, at, at + 300 * KiB);
  }
  return image;
}

const whole = (size: number) => [{ offset: 0, length: size, kind: 'data' as const }];

describe('transferDisk faults', () => {
  it('completes byte-exact when 10% of reads fail with a retryable error, counting every retry', async () => {
    const image = randomImage(24 * MiB + 123, 1);
    const random = seededRandom(42);
    const reader = faultyReader(new MemoryReader(image, whole(image.length)), () =>
      random() < 0.1 ? new SyncproxyError('GetSnapshotBlock throttled', { code: 'throttled' }) : undefined,
    );
    const sink = new MemorySink();
    const result = await transferDisk({
      reader,
      sink,
      chunkSizeBytes: 256 * KiB,
      retry: { attempts: 20, baseDelayMs: 0 },
      checkpoint: false,
      manifest: false,
    });
    expect(Buffer.compare(sink.image, image)).toBe(0);
    expect(reader.failures).toBeGreaterThan(0);
    expect(result.retries).toBe(reader.failures);
    expect(result.bytesRead).toBe(image.length - 0);
    expect(result.chunks).toBe(Math.ceil(image.length / (256 * KiB)));
  });

  it('rejects with a non-retryable error and its code, keeps the checkpoint, and a later resume completes', async () => {
    const image = randomImage(16 * MiB, 2);
    const stores = new MemoryStores();
    const failing = faultyReader(new MemoryReader(image, whole(image.length)), (n) =>
      n === 40
        ? new SyncproxyError('read refused: snapshot access denied', { code: 'permission', retryable: false })
        : undefined,
    );
    const sink = new MemorySink();
    const options = {
      sink,
      chunkSizeBytes: 128 * KiB,
      concurrency: 2,
      checkpoint: stores.checkpoint,
      manifest: stores.manifest,
      checkpointEvery: { chunks: 4 },
    };
    const error = await transferDisk({ ...options, reader: failing }).catch((e: unknown) => e);
    expect(SyncproxyError.isInstance(error)).toBe(true);
    expect((error as SyncproxyError).code).toBe('permission');
    expect((error as SyncproxyError).message).toBe('read refused: snapshot access denied');
    const checkpoint = stores.checkpointValue!;
    expect(checkpoint.chunksDone).toBeGreaterThanOrEqual(30);
    expect(checkpoint.chunksDone).toBeLessThan(128);
    expect(stores.manifestValue!.complete).toBe(false);

    const healthy = new MemoryReader(image, whole(image.length));
    const result = await transferDisk({ ...options, reader: healthy });
    expect(result.resumed).toBe(true);
    expect(result.chunksSkipped).toBe(checkpoint.chunksDone);
    expect(result.chunks).toBe(128 - checkpoint.chunksDone);
    expect(healthy.reads.length).toBe(128 - checkpoint.chunksDone);
    expect(Buffer.compare(sink.image, image)).toBe(0);
    expect(stores.checkpointValue).toBeUndefined();
    expect(stores.manifestValue!.complete).toBe(true);
    expect(stores.manifestValue!.unknownCount()).toBe(0);
  });

  it('rejects with the retryable error once its attempts are spent', async () => {
    const image = randomImage(2 * MiB, 3);
    const reader = faultyReader(new MemoryReader(image, whole(image.length)), (_n, offset) =>
      offset === MiB ? new SyncproxyError('connection reset', { code: 'network' }) : undefined,
    );
    const error = await transferDisk({
      reader,
      sink: new MemorySink(),
      chunkSizeBytes: 512 * KiB,
      retry: { attempts: 3, baseDelayMs: 0 },
      checkpoint: false,
      manifest: false,
    }).catch((e: unknown) => e);
    expect((error as SyncproxyError).code).toBe('network');
    expect(reader.failures).toBe(3);
  });

  it('rejects with a protocol error when a reader returns fewer bytes than asked', async () => {
    const short = {
      diskSize: MiB,
      granularity: 512,
      async *extents() {
        yield { offset: 0, length: MiB, kind: 'data' as const };
      },
      read: async (_offset: number, length: number) => new Uint8Array(length - 1),
      close: async () => {},
    };
    await expect(
      transferDisk({ reader: short, sink: new MemorySink(), full: true, checkpoint: false, manifest: false }),
    ).rejects.toMatchObject({
      code: 'protocol',
      message: 'reader returned 1048575 bytes for [0, 1048576)',
    });
  });
});

describe('transferDisk abort', () => {
  it('rejects within 1 s of the abort, starts no read after it and writes nothing after the rejection', async () => {
    const image = randomImage(32 * MiB, 4);
    const inner = new MemoryReader(image, whole(image.length));
    const held: Array<() => void> = [];
    let readsStarted = 0;
    const controller = new AbortController();
    const sink = new MemorySink();
    const stores = new MemoryStores();
    // The first 20 reads answer at once; later ones hang (ignoring their signal) until released by the test.
    const reader = {
      diskSize: inner.diskSize,
      granularity: inner.granularity,
      hints: inner.hints,
      extents: () => inner.extents(),
      read: (offset: number, length: number) => {
        readsStarted++;
        if (readsStarted <= 20) return inner.read(offset, length);
        return new Promise<Uint8Array>((resolve) => held.push(() => resolve(inner.read(offset, length))));
      },
      close: async () => {},
    };
    const transfer = transferDisk({
      reader,
      sink,
      chunkSizeBytes: 256 * KiB,
      concurrency: 4,
      checkpoint: stores.checkpoint,
      manifest: stores.manifest,
      signal: controller.signal,
    });
    while (held.length < 4) await new Promise((resolve) => setImmediate(resolve));
    const readsAtAbort = readsStarted;
    const abortedAt = performance.now();
    controller.abort();
    const error = await transfer.catch((e: unknown) => e);
    const rejectedAfterMs = performance.now() - abortedAt;
    const writesAtRejection = sink.writes().length;

    expect((error as SyncproxyError).code).toBe('aborted');
    expect((error as SyncproxyError).message).toBe('transfer aborted');
    expect(rejectedAfterMs).toBeLessThan(1000);
    for (const release of held) release();
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(sink.writes().length).toBe(writesAtRejection);
    expect(readsStarted).toBe(readsAtAbort);
    expect(stores.checkpointValue!.chunksDone).toBe(20);

    const resumed = await transferDisk({
      reader: new MemoryReader(image, whole(image.length)),
      sink,
      chunkSizeBytes: 256 * KiB,
      checkpoint: stores.checkpoint,
      manifest: stores.manifest,
    });
    expect(resumed.chunksSkipped).toBe(20);
    expect(Buffer.compare(sink.image, image)).toBe(0);
  });

  it('rejects at once without opening the sink when the signal is already aborted', async () => {
    const sink = new MemorySink();
    const image = new Uint8Array(4096);
    await expect(
      transferDisk({ reader: new MemoryReader(image, whole(4096)), sink, signal: AbortSignal.abort() }),
    ).rejects.toMatchObject({ code: 'aborted' });
    expect(sink.calls).toEqual([]);
  });
});

describe('transferDisk full or incremental', () => {
  /** A reader of the first 64 KiB of a 128 KiB disk that does not say whether that is all of it. */
  function undeclared(): MemoryReader {
    const image = new Uint8Array(128 * KiB);
    randomFillSync(image.subarray(0, 64 * KiB));
    return new MemoryReader(image, [{ offset: 0, length: 64 * KiB, kind: 'data' }], 512, { hints: {} });
  }

  it('refuses a transfer that neither full nor the reader declares full or incremental, naming full, and touches nothing', async () => {
    const sink = new MemorySink();
    sink.image = new Uint8Array(128 * KiB).fill(0xee);
    const reader = undeclared();
    const error = await transferDisk({ reader, sink, checkpoint: false, manifest: false }).catch((e) => e);
    expect(SyncproxyError.isInstance(error)).toBe(true);
    expect(error).toMatchObject({ code: 'config', retryable: false });
    expect(error.message).toMatch(
      /^transferDisk: full is not set and the reader does not declare hints\.incremental/,
    );
    expect(sink.calls).toEqual([]);
    expect(reader.reads).toEqual([]);
    expect(sink.image.every((b) => b === 0xee)).toBe(true);
  });

  it('refuses a full that is not a boolean', async () => {
    await expect(
      transferDisk({
        reader: undeclared(),
        sink: new MemorySink(),
        full: 'yes' as unknown as boolean,
        checkpoint: false,
        manifest: false,
      }),
    ).rejects.toMatchObject({
      code: 'config',
      message: 'transferDisk: full must be true or false (got yes)',
    });
  });

  it('with full: true zeroes what the extents do not name over an old image; with full: false keeps it', async () => {
    for (const full of [true, false]) {
      const sink = new MemorySink();
      sink.image = new Uint8Array(128 * KiB).fill(0xee);
      const reader = undeclared();
      await transferDisk({
        reader,
        sink,
        full,
        chunkSizeBytes: 64 * KiB,
        checkpoint: false,
        manifest: false,
      });
      expect(Buffer.compare(sink.image.subarray(0, 64 * KiB), reader.image.subarray(0, 64 * KiB))).toBe(0);
      expect(sink.image.subarray(64 * KiB).every((b) => b === (full ? 0 : 0xee))).toBe(true);
    }
  });
});

describe('transferDisk zero handling and results', () => {
  it('never reads zero extents, writes data that reads as zeroes with writeZeroes, and reports exact counts', async () => {
    const image = new Uint8Array(10 * 64 * KiB + 1000);
    randomFillSync(image.subarray(0, 64 * KiB));
    randomFillSync(image.subarray(5 * 64 * KiB, 6 * 64 * KiB));
    const reader = new MemoryReader(image, [
      { offset: 0, length: 2 * 64 * KiB, kind: 'data' }, // second half reads as zeroes
      { offset: 2 * 64 * KiB, length: 3 * 64 * KiB, kind: 'zero' },
      { offset: 5 * 64 * KiB, length: 64 * KiB, kind: 'data' },
      { offset: 10 * 64 * KiB, length: 1000, kind: 'data' },
    ]);
    const sink = new MemorySink();
    sink.image = new Uint8Array(image.length).fill(0xee);
    const result = await transferDisk({
      reader,
      sink,
      full: false,
      chunkSizeBytes: 64 * KiB,
      checkpoint: false,
      manifest: false,
    });
    expect(reader.reads).toEqual([
      [0, 64 * KiB],
      [64 * KiB, 64 * KiB],
      [5 * 64 * KiB, 64 * KiB],
      [10 * 64 * KiB, 1000],
    ]);
    expect(sink.writes().sort((a, b) => a.offset! - b.offset!)).toEqual([
      { op: 'write', offset: 0, length: 64 * KiB },
      { op: 'writeZeroes', offset: 64 * KiB, length: 64 * KiB },
      { op: 'writeZeroes', offset: 2 * 64 * KiB, length: 64 * KiB },
      { op: 'writeZeroes', offset: 3 * 64 * KiB, length: 64 * KiB },
      { op: 'writeZeroes', offset: 4 * 64 * KiB, length: 64 * KiB },
      { op: 'write', offset: 5 * 64 * KiB, length: 64 * KiB },
      { op: 'writeZeroes', offset: 10 * 64 * KiB, length: 1000 },
    ]);
    expect(result).toMatchObject({
      bytesRead: 3 * 64 * KiB + 1000,
      bytesWritten: 2 * 64 * KiB,
      zeroBytes: 4 * 64 * KiB + 1000,
      chunks: 7,
      chunksSkipped: 0,
      retries: 0,
      resumed: false,
    });
    // Chunks 6..9 were never named: left as they were (an incremental).
    expect(sink.image.subarray(6 * 64 * KiB, 10 * 64 * KiB).every((b) => b === 0xee)).toBe(true);
  });

  it('completes an empty disk with no chunks and the empty manifest digest', async () => {
    const sink = new MemorySink();
    const result = await transferDisk({
      reader: new MemoryReader(new Uint8Array(0), []),
      sink,
      checkpoint: false,
      manifest: false,
    });
    expect(result).toMatchObject({
      bytesRead: 0,
      bytesWritten: 0,
      zeroBytes: 0,
      chunks: 0,
      unknownChunks: 0,
    });
    expect(sink.calls.map((c) => c.op)).toEqual(['open', 'flush', 'close']);
  });

  it('hashes the zero pieces of a chunk read into a reused buffer as zeroes, not as the stale bytes of the chunk before', async () => {
    const chunkSizeBytes = 64 * KiB;
    const image = new Uint8Array(3 * chunkSizeBytes);
    randomFillSync(image.subarray(0, chunkSizeBytes + 16 * KiB));
    randomFillSync(image.subarray(2 * chunkSizeBytes));
    // Chunk 1 is 16 KiB of data then a zero extent; with one chunk at a time it reuses chunk 0's buffer.
    const extents = [
      { offset: 0, length: chunkSizeBytes + 16 * KiB, kind: 'data' as const },
      { offset: chunkSizeBytes + 16 * KiB, length: 48 * KiB, kind: 'zero' as const },
      { offset: 2 * chunkSizeBytes, length: chunkSizeBytes, kind: 'data' as const },
    ];
    const stores = new MemoryStores();
    const result = await transferDisk({
      reader: new MemoryReader(image, extents, 512, { readInto: true }),
      sink: new MemorySink(),
      chunkSizeBytes,
      concurrency: 1,
      maxInFlightBytes: chunkSizeBytes,
      checkpoint: false,
      manifest: stores.manifest,
    });
    expect(result.manifestDigest).toBe(manifestDigestOf(image, chunkSizeBytes));
  });

  it('with full: true zeroes every range no extent names', async () => {
    const image = new Uint8Array(300 * KiB);
    randomFillSync(image.subarray(100 * KiB, 150 * KiB));
    const sink = new MemorySink();
    sink.image = new Uint8Array(image.length).fill(0xee);
    await transferDisk({
      reader: new MemoryReader(image, [{ offset: 100 * KiB, length: 50 * KiB, kind: 'data' }]),
      sink,
      full: true,
      checkpoint: false,
      manifest: false,
    });
    expect(Buffer.compare(sink.image, image)).toBe(0);
  });

  it('rejects unsorted extents with a protocol error naming the offsets', async () => {
    const image = new Uint8Array(64 * KiB);
    const reader = new MemoryReader(image, [
      { offset: 8192, length: 512, kind: 'data' },
      { offset: 0, length: 512, kind: 'data' },
    ]);
    await expect(
      transferDisk({ reader, sink: new MemorySink(), checkpoint: false, manifest: false }),
    ).rejects.toMatchObject({
      code: 'protocol',
      message: 'reader extents: extents are not sorted: 0 comes after 8192',
    });
  });

  it('detects a target that does not keep what was written when verify is on', async () => {
    const image = new Uint8Array(512 * KiB);
    randomFillSync(image);
    const stores = new MemoryStores();
    // Flips one bit of the chunk at 128 KiB on its way to the target.
    class LossySink extends MemorySink {
      override async write(offset: number, data: Uint8Array): Promise<void> {
        const copy = data.slice();
        if (offset === 128 * KiB) copy[17] = copy[17]! ^ 1;
        await super.write(offset, copy);
      }
    }
    const lossy = new LossySink();
    const sink = new MemorySink();
    const error = await transferDisk({
      reader: new MemoryReader(image, whole(image.length)),
      sink: lossy,
      chunkSizeBytes: 64 * KiB,
      verify: true,
      checkpoint: stores.checkpoint,
      manifest: stores.manifest,
    }).catch((e: unknown) => e);
    expect((error as SyncproxyError).code).toBe('integrity');
    expect((error as SyncproxyError).message).toBe(
      'verification failed: 1 chunk(s) of the target differ from the source (first at offset 131072); run the transfer again to resend them',
    );
    expect(stores.checkpointValue!.doneBelow).toBe(2);
    expect(stores.checkpointValue!.doneRuns).toEqual([[3, 8]]);
    sink.image = lossy.image;
    const again = await transferDisk({
      reader: new MemoryReader(image, whole(image.length)),
      sink,
      chunkSizeBytes: 64 * KiB,
      verify: true,
      checkpoint: stores.checkpoint,
      manifest: stores.manifest,
    });
    expect(again.chunks).toBe(1);
    expect(again.verified).toBe(true);
    expect(Buffer.compare(sink.image, image)).toBe(0);
  });
});

describe('transferDisk progress and bandwidth', () => {
  it('emits progress at most every 100 ms of clock time and ends with a complete event', async () => {
    let now = 0;
    const clock = { now: () => now };
    const image = new Uint8Array(2 * MiB);
    randomFillSync(image);
    const inner = new MemoryReader(image, whole(image.length));
    const reader = Object.assign(Object.create(inner) as MemoryReader, {
      read: (offset: number, length: number) => {
        now += 30;
        return inner.read(offset, length);
      },
    });
    const events: Array<TransferProgress & { at: number }> = [];
    await transferDisk({
      reader,
      sink: new MemorySink(),
      chunkSizeBytes: 64 * KiB,
      concurrency: 1,
      checkpoint: false,
      manifest: false,
      clock,
      onProgress: (p) => events.push({ ...p, at: now }),
    });
    for (let i = 1; i < events.length - 1; i++)
      expect(events[i]!.at - events[i - 1]!.at).toBeGreaterThanOrEqual(100);
    expect(events.length).toBeLessThanOrEqual(Math.floor((32 * 30) / 100) + 2);
    expect(events.at(-1)).toMatchObject({
      bytesDone: 2 * MiB,
      bytesTotal: 2 * MiB,
      chunksDone: 32,
      chunksTotal: 32,
      etaMs: 0,
    });
    expect(events.at(-1)!.bytesPerSecond).toBeCloseTo((2 * MiB) / 0.96, 0);
    expect(events.at(-1)!.dataBytes).toBe(2 * MiB);
  });

  it('counts data bytes apart from logical bytes: zeroes are done, not data', async () => {
    const image = new Uint8Array(2 * MiB);
    randomFillSync(image, 0, MiB);
    const events: TransferProgress[] = [];
    await transferDisk({
      reader: new MemoryReader(image, whole(image.length)),
      sink: new MemorySink(),
      chunkSizeBytes: 64 * KiB,
      checkpoint: false,
      manifest: false,
      onProgress: (p) => events.push(p),
    });
    expect(events.at(-1)).toMatchObject({ bytesDone: 2 * MiB, dataBytes: MiB });
  });

  it('holds reads to the token bucket rate', async () => {
    const clock = createManualClock();
    const bucket = new TokenBucket({ bytesPerSecond: MiB, burstBytes: MiB, clock });
    const image = new Uint8Array(4 * MiB);
    randomFillSync(image);
    const sink = new MemorySink();
    let settled = false;
    const transfer = transferDisk({
      reader: new MemoryReader(image, whole(image.length)),
      sink,
      chunkSizeBytes: 256 * KiB,
      bandwidth: bucket,
      clock,
      checkpoint: false,
      manifest: false,
    }).finally(() => {
      settled = true;
    });
    let lastAdvanceAt = 0;
    // Time moves only while a read waits for the bucket; hashing and writes take no clock time.
    while (!settled) {
      if (clock.pendingTimers() > 0) {
        await clock.advance(10);
        lastAdvanceAt = clock.now();
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
    await transfer;
    // 4 MiB at 1 MiB/s with 1 MiB of burst: the last read may start at 3 s, not earlier.
    expect(lastAdvanceAt).toBeGreaterThanOrEqual(2990);
    expect(lastAdvanceAt).toBeLessThanOrEqual(3020);
    expect(Buffer.compare(sink.image, image)).toBe(0);
  });
});

describe('transferDisk figures across a resume', () => {
  it('written and zeroed count each byte of the disk once, chunks re-sent after a crash included', async () => {
    const chunk = 64 * KiB;
    const image = new Uint8Array(16 * chunk);
    randomFillSync(image.subarray(0, 10 * chunk));
    const extents = [
      { offset: 0, length: 10 * chunk, kind: 'data' as const },
      { offset: 10 * chunk, length: 6 * chunk, kind: 'zero' as const },
    ];
    // The first run keeps every checkpoint; it "crashed" right after its first one: the resume sees only that.
    const saved: TransferCheckpoint[] = [];
    const sink = new MemorySink();
    const options = {
      sink,
      chunkSizeBytes: chunk,
      concurrency: 1,
      maxInFlightBytes: 4 * chunk,
      checkpointEvery: { chunks: 3 },
      manifest: false as const,
      transferId: 't',
    };
    const failing = faultyReader(new MemoryReader(image, extents), (_n, offset) =>
      offset === 8 * chunk ? new SyncproxyError('gone', { code: 'permission', retryable: false }) : undefined,
    );
    await expect(
      transferDisk({
        ...options,
        reader: failing,
        checkpoint: {
          load: async () => undefined,
          save: async (c) => {
            saved.push(structuredClone(c));
          },
          clear: async () => {},
        },
      }),
    ).rejects.toMatchObject({ code: 'permission' });
    const crashedAt = saved[0]!;
    const writtenBefore = sink.writes().length;
    expect(writtenBefore).toBeGreaterThan(crashedAt.chunksDone);

    const progress: TransferProgress[] = [];
    const result = await transferDisk({
      ...options,
      reader: new MemoryReader(image, extents),
      checkpoint: { load: async () => crashedAt, save: async () => {}, clear: async () => {} },
      onProgress: (p) => progress.push(p),
    });
    expect(Buffer.compare(sink.image, image)).toBe(0);
    expect(result.chunksSkipped).toBe(crashedAt.chunksDone);
    // What crossed the network this run: the chunks the checkpoint did not name, some of them a second time.
    expect(result.bytesRead).toBe((10 - crashedAt.chunksDone) * chunk);
    // What the disk holds: each byte once, however many runs wrote it.
    expect(result).toMatchObject({ bytesWritten: 10 * chunk, zeroBytes: 6 * chunk, resumed: true });
    expect(progress.at(-1)).toMatchObject({ bytesDone: 16 * chunk, dataBytes: 10 * chunk });
  });
});
