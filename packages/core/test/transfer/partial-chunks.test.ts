import { randomFillSync } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  DiskManifest,
  type Extent,
  FileManifestStore,
  FileSink,
  readManifest,
  SyncproxyError,
  TARGET_DIFFERS_FROM_MANIFEST,
  transferDisk,
} from '@syncproxy/core';
import { describe, expect, it } from 'vitest';
import { digestChunk } from '../../src/transfer/chunk-hash-algorithm.js';
import { MemoryReader } from './fixtures/readers.js';
import { useTempDir } from './fixtures/temp-dir.js';

// An incremental that changes part of a chunk keeps the target's bytes around its changes; the chunk's
// new manifest entry is a digest over them, so they must be proven against the manifest first.
const CHUNK = 64 << 10;
const SIZE = 4 * CHUNK;

const dir = useTempDir();

const whole: Extent[] = [{ offset: 0, length: SIZE, kind: 'data' }];

/** A target synced in full from random bytes, with its manifest; `after` is a copy to change. */
async function syncedTarget(name: string) {
  const path = join(dir.path, `${name}.raw`);
  const before = randomFillSync(new Uint8Array(SIZE));
  before.fill(0, 3 * CHUNK);
  await transferDisk({
    reader: new MemoryReader(before, whole),
    sink: new FileSink(path),
    chunkSizeBytes: CHUNK,
    checkpoint: false,
  });
  return { path, after: before.slice() };
}

function incremental(path: string, after: Uint8Array, extents: Extent[], readInto = false) {
  return transferDisk({
    reader: new MemoryReader(after, extents, 512, { readInto }),
    sink: new FileSink(path),
    chunkSizeBytes: CHUNK,
    full: false,
    checkpoint: false,
  });
}

async function flipByte(path: string, at: number): Promise<void> {
  const image = await readFile(path);
  image[at] = image[at]! ^ 0xff;
  await writeFile(path, image);
}

describe('chunks an incremental writes in part', () => {
  for (const readInto of [false, true]) {
    it(`get the digest of the kept bytes with the new pieces over them, ${readInto ? 'read into pooled buffers' : 'read piece by piece'}; a zero entry proves a hole`, async () => {
      const { path, after } = await syncedTarget(`digest-${readInto}`);
      after.fill(0x33, CHUNK + 10, CHUNK + 30);
      after.fill(0x44, 3 * CHUNK + 100, 3 * CHUNK + 200);
      const extents: Extent[] = [
        { offset: CHUNK + 10, length: 20, kind: 'data' },
        { offset: 3 * CHUNK + 100, length: 100, kind: 'data' },
      ];
      const result = await incremental(path, after, extents, readInto);
      expect(Buffer.compare(await readFile(path), after)).toBe(0);
      const manifest = await readManifest(`${path}.manifest`);
      for (const chunk of [0, 1, 2, 3]) {
        const bytes = after.subarray(chunk * CHUNK, (chunk + 1) * CHUNK);
        expect(manifest.matches(chunk, digestChunk(manifest.hashAlgorithm, bytes)), `chunk ${chunk}`).toBe(
          true,
        );
      }
      expect(result).toMatchObject({ unknownChunks: 0, warnings: [] });
    });
  }

  it("read the target through the sink's readInto where it has one, into shared buffers the hashing threads take; verify does too", async () => {
    const { path, after } = await syncedTarget('read-into');
    after.fill(0x77, CHUNK + 10, CHUNK + 30);
    /** A FileSink whose `read` the engine must not need: it records what `readInto` is given. */
    class ReadIntoSink extends FileSink {
      readonly targets: Array<{ offset: number; length: number; shared: boolean }> = [];
      override read(): Promise<Uint8Array> {
        return Promise.reject(new Error('read called where readInto serves'));
      }
      override readInto(offset: number, target: Uint8Array): Promise<void> {
        this.targets.push({
          offset,
          length: target.length,
          shared: target.buffer instanceof SharedArrayBuffer,
        });
        return super.readInto(offset, target);
      }
    }
    const sink = new ReadIntoSink(path);
    const result = await transferDisk({
      reader: new MemoryReader(after, [{ offset: CHUNK + 10, length: 20, kind: 'data' }]),
      sink,
      chunkSizeBytes: CHUNK,
      full: false,
      checkpoint: false,
      verify: true,
    });
    expect(Buffer.compare(await readFile(path), after)).toBe(0);
    // The kept bytes of chunk 1, then verify's read-back of it.
    expect(sink.targets).toEqual([
      { offset: CHUNK, length: CHUNK, shared: true },
      { offset: CHUNK, length: CHUNK, shared: true },
    ]);
    const manifest = await readManifest(`${path}.manifest`);
    expect(manifest.matches(1, digestChunk(manifest.hashAlgorithm, after.subarray(CHUNK, 2 * CHUNK)))).toBe(
      true,
    );
    expect(result).toMatchObject({ unknownChunks: 0, verified: true, warnings: [] });
  });

  it("whose manifest entry is zero are proven zero by the sink's readsAsZeroes, not read into memory; a byte written there since rejects with integrity", async () => {
    /** A FileSink that records what the engine asks of the target. */
    class SpySink extends FileSink {
      readonly asked: string[] = [];
      override readInto(offset: number, target: Uint8Array): Promise<void> {
        this.asked.push(`readInto ${offset / CHUNK}`);
        return super.readInto(offset, target);
      }
      override readsAsZeroes(offset: number, length: number): Promise<boolean> {
        this.asked.push(`readsAsZeroes ${offset / CHUNK} ${length / CHUNK}`);
        return super.readsAsZeroes(offset, length);
      }
    }
    const changes: Extent[] = [{ offset: 3 * CHUNK + 100, length: 100, kind: 'data' }];
    const { path, after } = await syncedTarget('zero-entry');
    after.fill(0x66, 3 * CHUNK + 100, 3 * CHUNK + 200);
    const sink = new SpySink(path);
    const result = await transferDisk({
      reader: new MemoryReader(after, changes, 512, { readInto: true }),
      sink,
      chunkSizeBytes: CHUNK,
      full: false,
      checkpoint: false,
    });
    expect(sink.asked).toEqual(['readsAsZeroes 3 1']);
    expect(Buffer.compare(await readFile(path), after)).toBe(0);
    const manifest = await readManifest(`${path}.manifest`);
    expect(manifest.matches(3, digestChunk(manifest.hashAlgorithm, after.subarray(3 * CHUNK)))).toBe(true);
    expect(result).toMatchObject({ unknownChunks: 0, warnings: [] });

    const other = await syncedTarget('zero-entry-written');
    await flipByte(other.path, 3 * CHUNK + 5000);
    other.after.fill(0x66, 3 * CHUNK + 100, 3 * CHUNK + 200);
    const spy = new SpySink(other.path);
    const failure = await transferDisk({
      reader: new MemoryReader(other.after, changes),
      sink: spy,
      chunkSizeBytes: CHUNK,
      full: false,
      checkpoint: false,
    }).catch((error: unknown) => error);
    expect(failure).toMatchObject({
      code: 'integrity',
      details: { chunk: 3, reason: TARGET_DIFFERS_FROM_MANIFEST },
    });
    // Not zero: read whole, and found to match no entry.
    expect(spy.asked).toEqual(['readsAsZeroes 3 1', 'readInto 3']);
  });

  it('whose kept bytes differ from an exact manifest entry reject with integrity naming the chunk, and nothing of it is written', async () => {
    const { path, after } = await syncedTarget('differs');
    await flipByte(path, 2 * CHUNK + 1000);
    const image = await readFile(path);
    after.fill(0x55, 2 * CHUNK, 2 * CHUNK + 16);
    const failure = await incremental(path, after, [{ offset: 2 * CHUNK, length: 16, kind: 'data' }]).catch(
      (error: unknown) => error,
    );
    expect(SyncproxyError.isInstance(failure)).toBe(true);
    expect(failure).toMatchObject({
      code: 'integrity',
      retryable: false,
      details: { chunk: 2, reason: TARGET_DIFFERS_FROM_MANIFEST },
    });
    expect((failure as Error).message).toContain('chunk 2 of the target differs from its manifest');
    expect(Buffer.compare(await readFile(path), image)).toBe(0);
  });

  it('whose manifest entry is unknown keep it unknown, with a manifest-unproven warning', async () => {
    const { path, after } = await syncedTarget('unknown');
    const manifest = await readManifest(`${path}.manifest`);
    manifest.set(1, 'unknown');
    await new FileManifestStore(`${path}.manifest`).save(manifest);
    after.fill(0x66, CHUNK + 8, CHUNK + 24);
    const result = await incremental(path, after, [{ offset: CHUNK + 8, length: 16, kind: 'data' }]);
    expect(Buffer.compare(await readFile(path), after)).toBe(0);
    expect((await readManifest(`${path}.manifest`)).entry(1)).toEqual({ state: 'unknown' });
    expect(result.unknownChunks).toBe(1);
    expect(result.warnings.map((w) => w.code)).toEqual(['manifest-unproven']);
  });

  it('are checked by verify: a write that lands wrong in one is found, where the old read-back took the wrong bytes as the digest', async () => {
    const { path, after } = await syncedTarget('verify');
    after.fill(0x88, CHUNK + 64, CHUNK + 128);
    /** Writes one byte wrong: what a faulty target does. */
    class FaultySink extends FileSink {
      override write(offset: number, data: Uint8Array): Promise<void> {
        const wrong = data.slice();
        wrong[0] = wrong[0]! ^ 0xff;
        return super.write(offset, wrong);
      }
    }
    const failure = await transferDisk({
      reader: new MemoryReader(after, [{ offset: CHUNK + 64, length: 64, kind: 'data' }]),
      sink: new FaultySink(path),
      chunkSizeBytes: CHUNK,
      full: false,
      checkpoint: false,
      verify: true,
    }).catch((error: unknown) => error);
    expect(failure).toMatchObject({ code: 'integrity', details: { chunks: [1] } });
    expect((failure as Error).message).toContain('verification failed: 1 chunk(s)');
  });

  it('in a manifest of SHA-256 (format 1 and 2 before BLAKE3) are proven with SHA-256', async () => {
    const path = join(dir.path, 'sha256.raw');
    const before = randomFillSync(new Uint8Array(SIZE));
    await writeFile(path, before);
    const manifest = DiskManifest.create({ diskSize: SIZE, chunkSizeBytes: CHUNK, hashAlgorithm: 'sha256' });
    for (let chunk = 0; chunk < 4; chunk++)
      manifest.set(chunk, digestChunk('sha256', before.subarray(chunk * CHUNK, (chunk + 1) * CHUNK)));
    manifest.complete = true;
    manifest.pendingFrom = manifest.chunkCount;
    await new FileManifestStore(`${path}.manifest`).save(manifest);
    const after = before.slice();
    after.fill(0x77, 100, 200);
    const result = await incremental(path, after, [{ offset: 100, length: 100, kind: 'data' }]);
    const saved = await readManifest(`${path}.manifest`);
    expect(saved.hashAlgorithm).toBe('sha256');
    expect(saved.matches(0, digestChunk('sha256', after.subarray(0, CHUNK)))).toBe(true);
    expect(result.unknownChunks).toBe(0);
  });
});
