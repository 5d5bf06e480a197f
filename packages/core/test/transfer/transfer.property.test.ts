import { randomFillSync } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createHashDiffReader, type Extent, FileSink, readManifest, transferDisk } from '@syncproxy/core';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryReader, sha256Hex } from './fixtures/readers.js';
import { manifestDigestOf, sortExtents, tempDir } from './fixtures/temp-dir.js';

let dir: { path: string; remove: () => Promise<void> };
let run = 0;
beforeAll(async () => {
  dir = await tempDir();
});
afterAll(async () => {
  await dir.remove();
});

interface Request {
  at: number;
  size: number;
  kind: 'data' | 'zero';
  /** Data that is all zeroes, to exercise zero detection. */
  zeroData: boolean;
}

const requestArb = fc.record({
  at: fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }),
  size: fc.oneof(fc.integer({ min: 1, max: 600 }), fc.integer({ min: 1, max: 40_000 })),
  kind: fc.constantFrom('data' as const, 'zero' as const),
  zeroData: fc.boolean(),
});

const geometryArb = fc.record({
  diskSize: fc.oneof(fc.integer({ min: 1, max: 4096 }), fc.integer({ min: 1, max: 300_000 })),
  granularity: fc.constantFrom(1, 512, 4096),
  chunkUnits: fc.integer({ min: 1, max: 24 }),
  concurrency: fc.integer({ min: 1, max: 6 }),
  coalesceGapBytes: fc.constantFrom(0, 0, 700),
});

/** Turns requests into extents within the disk and writes their bytes into `image`. */
function apply(image: Uint8Array, requests: Request[]): Extent[] {
  const extents: Extent[] = [];
  const dataRanges: Array<[number, number]> = [];
  for (const r of requests) {
    const offset = Math.floor(r.at * image.length);
    const length = Math.min(r.size, image.length - offset);
    if (length <= 0) continue;
    extents.push({ offset, length, kind: r.kind });
    if (r.kind === 'data') {
      const bytes = image.subarray(offset, offset + length);
      if (r.zeroData) bytes.fill(0);
      else randomFillSync(bytes);
      dataRanges.push([offset, offset + length]);
    }
  }
  // A zero extent must read as zeroes wherever no data extent overlaps it (where one does, the engine reads it).
  for (const e of extents) {
    if (e.kind !== 'zero') continue;
    for (let i = e.offset; i < e.offset + e.length; i++) {
      if (!dataRanges.some(([s, t]) => s <= i && i < t)) image[i] = 0;
    }
  }
  return sortExtents(extents);
}

async function fileBytes(path: string): Promise<Uint8Array> {
  return new Uint8Array(await readFile(path));
}

describe('transferDisk property: the target equals the source image', () => {
  it('a full transfer of random extents yields the source image byte for byte, with the exact manifest digest', async () => {
    await fc.assert(
      fc.asyncProperty(
        geometryArb,
        fc.array(requestArb, { maxLength: 25 }),
        fc.boolean(),
        fc.boolean(),
        async (g, requests, full, readInto) => {
          const image = new Uint8Array(g.diskSize);
          const extents = apply(image, requests);
          const reader = new MemoryReader(image, extents, g.granularity, { readInto });
          const path = join(dir.path, `full-${run++}.img`);
          const chunkSizeBytes = g.granularity * g.chunkUnits * (g.granularity === 1 ? 512 : 1);
          const result = await transferDisk({
            reader,
            sink: new FileSink(path),
            chunkSizeBytes,
            concurrency: g.concurrency,
            maxInFlightBytes: chunkSizeBytes * 3,
            coalesceGapBytes: g.coalesceGapBytes,
            full,
            verify: true,
          });
          const target = await fileBytes(path);
          expect(target.length).toBe(image.length);
          expect(sha256Hex(target)).toBe(sha256Hex(image));
          expect(Buffer.compare(target, image)).toBe(0);
          if (full) {
            expect(result.manifestDigest).toBe(manifestDigestOf(image, chunkSizeBytes));
            expect(result.unknownChunks).toBe(0);
          }
          expect(result.bytesWritten + result.zeroBytes).toBeGreaterThanOrEqual(0);
          expect(result.verified).toBe(true);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('an incremental on top of a full transfer yields the newer image, and a hash diff on top of that the newest', async () => {
    await fc.assert(
      fc.asyncProperty(
        geometryArb,
        fc.array(requestArb, { maxLength: 15 }),
        fc.array(requestArb, { maxLength: 15 }),
        fc.array(requestArb, { maxLength: 8 }),
        fc.boolean(),
        async (g, first, changes, laterChanges, readInto) => {
          const chunkSizeBytes = g.granularity * g.chunkUnits * (g.granularity === 1 ? 512 : 1);
          const path = join(dir.path, `incr-${run++}.img`);
          const base = new Uint8Array(g.diskSize);
          const baseExtents = apply(base, first);
          await transferDisk({
            reader: new MemoryReader(base, baseExtents, g.granularity),
            sink: new FileSink(path),
            chunkSizeBytes,
          });

          const newer = base.slice();
          const changed = apply(newer, changes);
          const incremental = await transferDisk({
            reader: new MemoryReader(newer, changed, g.granularity, {
              readInto,
              hints: { incremental: true },
            }),
            sink: new FileSink(path),
            chunkSizeBytes,
            concurrency: g.concurrency,
            coalesceGapBytes: g.coalesceGapBytes,
          });
          expect(Buffer.compare(await fileBytes(path), newer)).toBe(0);
          // Every touched chunk was hashed (partly covered ones read back); untouched ones came from the full transfer.
          expect(incremental.unknownChunks).toBe((await readManifest(`${path}.manifest`)).unknownCount());

          const newest = newer.slice();
          apply(newest, laterChanges);
          const everything: Extent[] =
            g.diskSize > 0 ? [{ offset: 0, length: g.diskSize, kind: 'data' }] : [];
          const hashDiff = createHashDiffReader({
            reader: new MemoryReader(newest, everything, g.granularity),
            previousManifest: await readManifest(`${path}.manifest`),
            chunkSizeBytes,
          });
          await transferDisk({ reader: hashDiff, sink: new FileSink(path) });
          expect(Buffer.compare(await fileBytes(path), newest)).toBe(0);
          expect(hashDiff.stats.chunksScanned).toBe(Math.ceil(g.diskSize / chunkSizeBytes));
        },
      ),
      { numRuns: 40 },
    );
  });
});
