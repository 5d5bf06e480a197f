import { randomFillSync } from 'node:crypto';
import { type ChangedBlockReader, type Extent, type ReaderHints, transferDisk } from '@syncproxy/core';
import { describe, expect, it } from 'vitest';
import { MemorySink } from './fixtures/memory-sink.js';

const KiB = 1024;
const chunkSizeBytes = 256 * KiB;

/** A disk in memory whose reads land a turn of the event loop later, recording what they overlap with. */
class SlowReader implements ChangedBlockReader {
  readonly diskSize: number;
  readonly granularity = 4096;
  bytesInFlight = 0;
  maxBytesInFlight = 0;
  readsInFlight = 0;
  maxReadsInFlight = 0;
  readLengths = new Set<number>();
  /** The distinct buffers the engine read into. */
  readonly buffers = new Set<ArrayBufferLike>();

  readonly hints: ReaderHints;

  constructor(
    readonly image: Uint8Array,
    hints: ReaderHints = {},
  ) {
    this.diskSize = image.length;
    this.hints = { incremental: false, ...hints };
  }

  async *extents(): AsyncGenerator<Extent> {
    yield { offset: 0, length: this.diskSize, kind: 'data' };
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    await this.readInto(out, offset);
    return out;
  }

  async readInto(target: Uint8Array, offset: number): Promise<void> {
    this.buffers.add(target.buffer);
    this.readLengths.add(target.length);
    this.bytesInFlight += target.length;
    this.readsInFlight++;
    this.maxBytesInFlight = Math.max(this.maxBytesInFlight, this.bytesInFlight);
    this.maxReadsInFlight = Math.max(this.maxReadsInFlight, this.readsInFlight);
    await new Promise<void>((resolve) => setImmediate(resolve));
    target.set(this.image.subarray(offset, offset + target.length));
    this.bytesInFlight -= target.length;
    this.readsInFlight--;
  }

  async close(): Promise<void> {}
}

function image(chunks: number): Uint8Array {
  const bytes = new Uint8Array(chunks * chunkSizeBytes);
  randomFillSync(bytes);
  return bytes;
}

describe('transferDisk reads in flight', () => {
  it("keeps reads within the reader's hints.readBytesInFlight, byte-exact", async () => {
    const source = image(32);
    const reader = new SlowReader(source, { readBytesInFlight: 2 * chunkSizeBytes });
    const sink = new MemorySink();
    await transferDisk({ reader, sink, chunkSizeBytes, checkpoint: false, manifest: false });
    expect(Buffer.compare(sink.image, source)).toBe(0);
    expect(reader.maxBytesInFlight).toBe(2 * chunkSizeBytes);
  });

  it('cuts reads so that concurrency of them fit in the hinted bytes: as many reads in flight, each smaller', async () => {
    const source = image(32);
    const reader = new SlowReader(source, { readBytesInFlight: 2 * chunkSizeBytes });
    const sink = new MemorySink();
    await transferDisk({ reader, sink, chunkSizeBytes, concurrency: 8, checkpoint: false, manifest: false });
    expect(Buffer.compare(sink.image, source)).toBe(0);
    expect([...reader.readLengths]).toEqual([chunkSizeBytes / 4]);
    expect(reader.maxReadsInFlight).toBe(8);
  });

  it('keeps concurrency reads of a chunk each in flight when the reader hints nothing', async () => {
    const source = image(32);
    const reader = new SlowReader(source);
    const sink = new MemorySink();
    await transferDisk({ reader, sink, chunkSizeBytes, concurrency: 8, checkpoint: false, manifest: false });
    expect(Buffer.compare(sink.image, source)).toBe(0);
    expect(reader.maxBytesInFlight).toBe(8 * chunkSizeBytes);
  });

  it('gives a chunk its buffer when its read starts: chunks queued for a read hold none', async () => {
    const source = image(64);
    // The default budget (64 MiB) admits 32 chunks at once; two are read at a time.
    const reader = new SlowReader(source, { readBytesInFlight: 2 * chunkSizeBytes });
    const sink = new MemorySink();
    await transferDisk({ reader, sink, chunkSizeBytes, checkpoint: false, manifest: false });
    expect(Buffer.compare(sink.image, source)).toBe(0);
    // Two being read, one or two being written: the pool cycles through a handful, not one per queued chunk.
    expect(reader.buffers.size).toBeLessThanOrEqual(4);
  });
});

describe('transferDisk extents', () => {
  /** A reader of `count` data extents of 1 KiB, one every 2 KiB, that counts its listings. */
  function listingReader(count: number) {
    const image = new Uint8Array(count * 2048);
    randomFillSync(image);
    const extents = Array.from({ length: count }, (_, i) => ({
      offset: i * 2048,
      length: 1024,
      kind: 'data' as const,
    }));
    const reader = {
      diskSize: image.length,
      granularity: 512,
      hints: { incremental: false },
      listings: 0,
      async *extents(): AsyncGenerator<Extent> {
        reader.listings++;
        for (const extent of extents) yield { ...extent };
      },
      async read(offset: number, length: number): Promise<Uint8Array> {
        return image.slice(offset, offset + length);
      },
      async close(): Promise<void> {},
    };
    const expected = new Uint8Array(image.length);
    for (const e of extents) expected.set(image.subarray(e.offset, e.offset + e.length), e.offset);
    return { reader, expected };
  }

  it('lists the extents once when the count before the transfer kept them, byte-exact', async () => {
    const { reader, expected } = listingReader(100);
    const sink = new MemorySink();
    const result = await transferDisk({
      reader,
      sink,
      chunkSizeBytes: 64 * KiB,
      checkpoint: false,
      manifest: false,
    });
    expect(reader.listings).toBe(1);
    expect(result.bytesRead).toBe(100 * 1024);
    expect(Buffer.compare(sink.image, expected)).toBe(0);
  });

  it('lists them again when there are too many to keep (more than 16384), byte-exact', async () => {
    const { reader, expected } = listingReader(16_385);
    const sink = new MemorySink();
    const result = await transferDisk({
      reader,
      sink,
      chunkSizeBytes: 1024 * KiB,
      checkpoint: false,
      manifest: false,
    });
    expect(reader.listings).toBe(2);
    expect(result.bytesRead).toBe(16_385 * 1024);
    expect(Buffer.compare(sink.image, expected)).toBe(0);
  });
});
