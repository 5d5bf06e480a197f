import { createHash } from 'node:crypto';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  createHashDiffReader,
  DiskManifest,
  type Extent,
  FileSink,
  readManifest,
  transferDisk,
} from '@syncproxy/core';
import { describe, expect, it } from 'vitest';
import { createChunkDigest, digestChunk } from '../../src/transfer/chunk-hash-algorithm.js';
import { MemorySink, MemoryStores } from './fixtures/memory-sink.js';
import { MemoryReader } from './fixtures/readers.js';
import { useTempDir } from './fixtures/temp-dir.js';

// test/fixtures/format-1.manifest was written by the code before format 2 (SHA-256 entries, magic
// "SYNCPROXY-MANIFEST/1", no algorithm in the header), for the image fixtureImage() makes.
const FORMAT_1 = new URL('../fixtures/format-1.manifest', import.meta.url);
const FORMAT_1_DIGEST = '68fb19b3cc0cd11f737a11458b4fd2caef89713769f50e581cb26fe80c2e8d4d';
const CHUNK = 65536;
const SIZE = 3 * CHUNK + 1000;

function fixtureImage(): Uint8Array {
  const image = new Uint8Array(SIZE);
  for (let i = 0; i < CHUNK; i++) image[i] = i % 251;
  image.fill(0x5a, 2 * CHUNK, 3 * CHUNK);
  for (let i = 3 * CHUNK; i < SIZE; i++) image[i] = (i * 7) % 256;
  return image;
}

const sha256 = (data: Uint8Array) => new Uint8Array(createHash('sha256').update(data).digest());
const whole: Extent[] = [{ offset: 0, length: SIZE, kind: 'data' }];

async function collect(extents: AsyncIterable<Extent>): Promise<Extent[]> {
  const out: Extent[] = [];
  for await (const e of extents) out.push(e);
  return out;
}

const dir = useTempDir();

describe('manifest format 1 (written before the hash algorithm was recorded)', () => {
  it('is read as a SHA-256 manifest with its entries, bookkeeping and digest', async () => {
    const manifest = await readManifest(FORMAT_1.pathname);
    const image = fixtureImage();
    expect(manifest.hashAlgorithm).toBe('sha256');
    expect(manifest).toMatchObject({
      diskSize: SIZE,
      chunkSizeBytes: CHUNK,
      chunkCount: 4,
      complete: true,
      pendingFrom: 4,
      transferId: 'fixture-format-1',
      updatedAt: '2026-11-30T12:00:00.000Z',
    });
    expect(manifest.entry(0)).toEqual({
      state: 'hash',
      algorithm: 'sha256',
      digest: Buffer.from(sha256(image.subarray(0, CHUNK))).toString('hex'),
    });
    expect(manifest.entry(1)).toEqual({ state: 'zero' });
    expect(manifest.matches(2, sha256(image.subarray(2 * CHUNK, 3 * CHUNK)))).toBe(true);
    expect(manifest.matches(3, sha256(image.subarray(3 * CHUNK)))).toBe(true);
    // A sync state recorded this digest before format 2: it must still name the same manifest.
    expect(manifest.digest()).toBe(FORMAT_1_DIGEST);
  });

  it('is rewritten as format 2 that names its algorithm, with the same digest', async () => {
    const manifest = await readManifest(FORMAT_1.pathname);
    const bytes = manifest.encode();
    expect(Buffer.from(bytes).toString('latin1')).toMatch(
      /^SYNCPROXY-MANIFEST\/2\n\{[^\n]*"hashAlgorithm":"sha256"/,
    );
    const again = DiskManifest.decode(bytes);
    expect(again.hashAlgorithm).toBe('sha256');
    expect(again.digest()).toBe(FORMAT_1_DIGEST);
  });

  it('is an exact base for a hash diff: only the changed chunk is yielded, hashed with SHA-256', async () => {
    const previousManifest = await readManifest(FORMAT_1.pathname);
    const after = fixtureImage();
    after[2 * CHUNK + 17] = 1;
    const reader = createHashDiffReader({ reader: new MemoryReader(after, whole), previousManifest });
    expect(await collect(reader.extents())).toEqual([{ offset: 2 * CHUNK, length: CHUNK, kind: 'data' }]);
    const same = createHashDiffReader({ reader: new MemoryReader(fixtureImage(), whole), previousManifest });
    expect(await collect(same.extents())).toEqual([]);
  });

  it('is an exact base for an incremental transfer, which keeps the manifest in SHA-256', async () => {
    const path = join(dir.path, 'format-1.raw');
    await writeFile(path, fixtureImage());
    await copyFile(FORMAT_1, `${path}.manifest`);
    const after = fixtureImage();
    after.fill(0x33, 10, 30);
    after.fill(0, 2 * CHUNK, 3 * CHUNK);
    const reader = createHashDiffReader({
      reader: new MemoryReader(after, whole),
      previousManifest: await readManifest(`${path}.manifest`),
    });
    const result = await transferDisk({ reader, sink: new FileSink(path), checkpoint: false });
    expect(Buffer.compare(await readFile(path), after)).toBe(0);
    const manifest = await readManifest(`${path}.manifest`);
    expect(manifest.hashAlgorithm).toBe('sha256');
    expect(manifest.matches(0, sha256(after.subarray(0, CHUNK)))).toBe(true);
    expect(manifest.entry(2)).toEqual({ state: 'zero' });
    expect(manifest.matches(3, sha256(after.subarray(3 * CHUNK)))).toBe(true);
    expect(result.manifestDigest).toBe(manifest.digest());
  });
});

describe('hash algorithms', () => {
  it('never match a digest of one algorithm against an entry of another', () => {
    const data = fixtureImage().subarray(0, CHUNK);
    const manifest = DiskManifest.create({ diskSize: CHUNK, chunkSizeBytes: CHUNK, hashAlgorithm: 'blake3' });
    manifest.set(0, sha256(data));
    expect(manifest.matches(0, sha256(data), 'sha256')).toBe(false);
    expect(manifest.matches(0, sha256(data))).toBe(true);
  });

  it('makes a hash diff against entries of another algorithm send every data chunk again', async () => {
    const image = fixtureImage();
    const old = await readManifest(FORMAT_1.pathname);
    // The same SHA-256 bytes, labelled BLAKE3: none of them may be taken for the chunk's BLAKE3.
    const relabelled = DiskManifest.create({
      diskSize: SIZE,
      chunkSizeBytes: CHUNK,
      hashAlgorithm: 'blake3',
    });
    relabelled.entries.set(old.entries);
    relabelled.complete = true;
    relabelled.pendingFrom = relabelled.chunkCount;
    const reader = createHashDiffReader({
      reader: new MemoryReader(image, whole),
      previousManifest: relabelled,
    });
    expect((await collect(reader.extents())).map((e) => e.offset)).toEqual([0, 2 * CHUNK, 3 * CHUNK]);
  });

  it('gives BLAKE3 (reference vector) and SHA-256 digests, whole or in pieces', () => {
    const abc = new TextEncoder().encode('abc');
    expect(Buffer.from(digestChunk('blake3', abc)).toString('hex')).toBe(
      '6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85',
    );
    expect(digestChunk('sha256', abc)).toEqual(sha256(abc));
    const data = fixtureImage();
    for (const algorithm of ['sha256', 'blake3'] as const) {
      const pieces = createChunkDigest(algorithm);
      pieces.update(data.subarray(0, 1000));
      pieces.update(data.subarray(1000));
      expect(pieces.digest()).toEqual(digestChunk(algorithm, data));
    }
  });

  it('writes new manifests in BLAKE3, and refuses to read an algorithm it does not know', async () => {
    const stores = new MemoryStores();
    const image = fixtureImage();
    await transferDisk({
      reader: new MemoryReader(image, whole),
      sink: new MemorySink(),
      chunkSizeBytes: CHUNK,
      manifest: stores.manifest,
      checkpoint: false,
    });
    const manifest = stores.manifestValue!;
    expect(manifest.hashAlgorithm).toBe('blake3');
    expect(manifest.matches(0, digestChunk('blake3', image.subarray(0, CHUNK)))).toBe(true);
    expect(manifest.entry(1)).toEqual({ state: 'zero' });
    const text = Buffer.from(manifest.encode()).toString('latin1').replace('"blake3"', '"md5"');
    expect(() => DiskManifest.decode(Buffer.from(text, 'latin1'))).toThrow(/unknown hash algorithm "md5"/);
  });
});
