import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { checkImageAgainstManifest } from '../../src/host-sync/manifest-check.js';
import { createHashDiffReader, DiskManifest, type Extent, transferDisk } from '../../src/index.js';
import { MemorySink, MemoryStores } from './fixtures/memory-sink.js';
import { MemoryReader } from './fixtures/readers.js';
import { useTempDir } from './fixtures/temp-dir.js';

// A platform where the BLAKE3 binding does not load: every require of it fails.
vi.mock('node:module', async (original) => {
  const actual = await original<typeof import('node:module')>();
  const createRequire = (from: string | URL) => {
    const real = actual.createRequire(from);
    const fake = ((id: string) => {
      if (id.includes('blake-hash')) throw new Error('Cannot find module @napi-rs/blake-hash-test-platform');
      return real(id);
    }) as NodeJS.Require;
    fake.resolve = ((id: string) => {
      if (id.includes('blake-hash')) throw new Error('Cannot find module @napi-rs/blake-hash-test-platform');
      return real.resolve(id);
    }) as NodeJS.RequireResolve;
    return fake;
  };
  return { ...actual, default: { ...actual, createRequire }, createRequire };
});

const CHUNK = 64 * 1024;
const image = new Uint8Array(4 * CHUNK).map((_, i) => (i % 97) + 1);
const whole: Extent[] = [{ offset: 0, length: image.length, kind: 'data' }];

/** A complete manifest of `image` in BLAKE3, as a platform with the binding wrote it. */
function blake3Manifest(): DiskManifest {
  const manifest = DiskManifest.create({
    diskSize: image.length,
    chunkSizeBytes: CHUNK,
    hashAlgorithm: 'blake3',
  });
  for (let i = 0; i < manifest.chunkCount; i++) manifest.set(i, new Uint8Array(32).fill(i + 1));
  manifest.complete = true;
  manifest.pendingFrom = manifest.chunkCount;
  return manifest;
}

const dir = useTempDir();

describe('without the BLAKE3 binding', () => {
  it('a new manifest is SHA-256 and the result says why (hash-fallback)', async () => {
    const stores = new MemoryStores();
    const result = await transferDisk({
      reader: new MemoryReader(image, whole),
      sink: new MemorySink(),
      chunkSizeBytes: CHUNK,
      manifest: stores.manifest,
      checkpoint: false,
    });
    expect(stores.manifestValue!.hashAlgorithm).toBe('sha256');
    const fallback = result.warnings.find((w) => w.code === 'hash-fallback');
    expect(fallback?.message).toMatch(/@napi-rs\/blake-hash-test-platform.*SHA-256/);
  });

  it('a stored BLAKE3 manifest is not continued: a new SHA-256 one starts (manifest-reset)', async () => {
    const stores = new MemoryStores();
    stores.manifestValue = blake3Manifest();
    const result = await transferDisk({
      reader: new MemoryReader(image, [{ offset: CHUNK, length: CHUNK, kind: 'data' }]),
      sink: new MemorySink(),
      chunkSizeBytes: CHUNK,
      full: false,
      manifest: stores.manifest,
      checkpoint: false,
    });
    expect(result.warnings.map((w) => w.code)).toEqual(
      expect.arrayContaining(['manifest-reset', 'hash-fallback']),
    );
    expect(stores.manifestValue!.hashAlgorithm).toBe('sha256');
    expect(stores.manifestValue!.unknownCount()).toBe(3);
  });

  it('a hash diff against a BLAKE3 manifest sends every chunk, with a hash-diff-full warning', async () => {
    const reader = createHashDiffReader({
      reader: new MemoryReader(image, whole),
      previousManifest: blake3Manifest(),
    });
    const extents: Extent[] = [];
    for await (const e of reader.extents()) extents.push(e);
    expect(extents.map((e) => e.offset)).toEqual([0, CHUNK, 2 * CHUNK, 3 * CHUNK]);
    expect(reader.warnings?.find((w) => w.code === 'hash-diff-full')?.message).toMatch(/blake3 digests/);
  });

  it('verifyTarget manifest counts every chunk of a BLAKE3 manifest as different', async () => {
    const path = join(dir.path, 'image.raw');
    await writeFile(path, image);
    expect((await checkImageAgainstManifest(path, blake3Manifest())).mismatches).toBe(4);
  });
});
