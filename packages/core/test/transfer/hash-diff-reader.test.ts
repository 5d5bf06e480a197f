import { randomFillSync } from 'node:crypto';
import { createHashDiffReader, type Extent, transferDisk } from '@syncproxy/core';
import { describe, expect, it } from 'vitest';
import { MemorySink, MemoryStores } from './fixtures/memory-sink.js';
import { MemoryReader } from './fixtures/readers.js';

const KiB = 1024;
const chunk = 64 * KiB;

async function collect(extents: AsyncIterable<Extent>): Promise<Extent[]> {
  const out: Extent[] = [];
  for await (const e of extents) out.push(e);
  return out;
}

/** A target synced in full from `image` in chunks of `chunk`, and its manifest, in memory. */
async function syncedTarget(image: Uint8Array) {
  const stores = new MemoryStores();
  const sink = new MemorySink();
  const all: Extent[] = [{ offset: 0, length: image.length, kind: 'data' }];
  await transferDisk({
    reader: new MemoryReader(image, all),
    sink,
    chunkSizeBytes: chunk,
    manifest: stores.manifest,
    checkpoint: false,
  });
  return { stores, sink, all };
}

describe('createHashDiffReader', () => {
  it('yields exactly the chunks whose SHA-256 changed, zeroed chunks as zero extents, and serves them without reading twice', async () => {
    const size = 8 * chunk + 100;
    const before = new Uint8Array(size);
    randomFillSync(before.subarray(0, 6 * chunk));
    const { stores, sink, all } = await syncedTarget(before);

    const after = before.slice();
    after[chunk + 5] = after[chunk + 5]! ^ 0xff; // chunk 1 changed
    after.fill(0, 3 * chunk, 4 * chunk); // chunk 3 now zero
    after[8 * chunk + 99] = 1; // the short last chunk changed
    const inner = new MemoryReader(after, all);
    const reader = createHashDiffReader({ reader: inner, previousManifest: stores.manifestValue });
    expect(reader.granularity).toBe(chunk);
    expect(reader.warnings?.map((w) => w.code)).toEqual(['hash-diff']);

    const result = await transferDisk({ reader, sink, manifest: stores.manifest, checkpoint: false });
    expect(Buffer.compare(sink.image, after)).toBe(0);
    expect(result.warnings.map((w) => w.code)).toEqual(['hash-diff']);
    // The full transfer wrote 9 chunks; the hash diff then wrote only the 3 that changed.
    expect(
      sink
        .writes()
        .slice(9)
        .sort((a, b) => a.offset! - b.offset!),
    ).toEqual([
      { op: 'write', offset: chunk, length: chunk },
      { op: 'writeZeroes', offset: 3 * chunk, length: chunk },
      { op: 'write', offset: 8 * chunk, length: 100 },
    ]);
    expect(inner.reads.length).toBe(9);
    expect(reader.stats).toEqual({ chunksScanned: 9, chunksChanged: 3, bytesScanned: 8 * chunk + 100 });
    expect(result.bytesRead).toBe(chunk + 100);
  });

  it('reads through readInto into shared buffers where the reader has it, hashed off the event loop, and yields the same changes', async () => {
    const size = 8 * chunk;
    const before = randomFillSync(new Uint8Array(size));
    const { stores, sink, all } = await syncedTarget(before);
    const after = before.slice();
    after[2 * chunk + 7] = after[2 * chunk + 7]! ^ 0xff;
    after.fill(0, 5 * chunk, 6 * chunk);
    const inner = new MemoryReader(after, all, 512, { readInto: true });
    const readInto = inner.readInto!;
    const shared: boolean[] = [];
    Object.defineProperty(inner, 'readInto', {
      value: (target: Uint8Array, offset: number) => {
        shared.push(target.buffer instanceof SharedArrayBuffer);
        return readInto(target, offset);
      },
    });
    const reader = createHashDiffReader({ reader: inner, previousManifest: stores.manifestValue });
    const result = await transferDisk({ reader, sink, manifest: stores.manifest, checkpoint: false });
    await reader.close();
    expect(Buffer.compare(sink.image, after)).toBe(0);
    expect(shared).toEqual(new Array(8).fill(true));
    expect(inner.reads.length).toBe(8);
    expect(reader.stats).toEqual({ chunksScanned: 8, chunksChanged: 2, bytesScanned: size });
    expect(result.bytesRead).toBe(chunk);
    expect(stores.manifestValue!.matches(5, 'zero')).toBe(true);
  });

  it('without a previous manifest yields every chunk, and lists unallocated chunks as zero without reading them', async () => {
    const size = 4 * chunk;
    const image = new Uint8Array(size);
    randomFillSync(image.subarray(chunk, 2 * chunk));
    const inner = new MemoryReader(image, [{ offset: chunk, length: chunk, kind: 'data' }]);
    const extents = await collect(createHashDiffReader({ reader: inner, chunkSizeBytes: chunk }).extents());
    expect(extents).toEqual([
      { offset: 0, length: chunk, kind: 'zero' },
      { offset: chunk, length: chunk, kind: 'data' },
      { offset: 2 * chunk, length: chunk, kind: 'zero' },
      { offset: 3 * chunk, length: chunk, kind: 'zero' },
    ]);
    expect(inner.reads).toEqual([[chunk, chunk]]);
  });

  it('does not trust an incomplete manifest at or above its pendingFrom chunk', async () => {
    const size = 4 * chunk;
    const image = new Uint8Array(size);
    randomFillSync(image);
    const { stores, all } = await syncedTarget(image);
    const previous = stores.manifestValue!.clone();
    previous.complete = false;
    previous.pendingFrom = 2;
    const extents = await collect(
      createHashDiffReader({ reader: new MemoryReader(image, all), previousManifest: previous }).extents(),
    );
    expect(extents).toEqual([
      { offset: 2 * chunk, length: chunk, kind: 'data' },
      { offset: 3 * chunk, length: chunk, kind: 'data' },
    ]);
  });
});
