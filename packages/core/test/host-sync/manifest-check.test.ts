import { open, statfs, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DiskManifest } from '@syncproxy/core';
import { describe, expect, it } from 'vitest';
import { checkImageAgainstManifest } from '../../src/host-sync/manifest-check.js';
import { digestChunk } from '../../src/transfer/chunk-hash-algorithm.js';
import { useTempDir } from '../transfer/fixtures/temp-dir.js';

const MiB = 1024 ** 2;
const CHUNK = 4 * MiB;
const DISK = 16 * CHUNK;
/** Chunks 3 and 10 hold data; every other chunk is a hole. */
const DATA_CHUNKS = [3, 10];

const dir = useTempDir('syncproxy-manifest-check-');

function chunkData(index: number): Uint8Array {
  const data = new Uint8Array(CHUNK);
  for (let i = 0; i < data.length; i += 4096) data[i] = (index * 31 + i / 4096) % 255 || 1;
  return data;
}

/** A sparse image of DISK bytes with data in DATA_CHUNKS, and its complete manifest. */
async function sparseImage(name: string): Promise<{ path: string; manifest: DiskManifest }> {
  const path = join(dir.path, name);
  await writeFile(path, new Uint8Array(0));
  await truncate(path, DISK);
  const manifest = DiskManifest.create({
    diskSize: DISK,
    chunkSizeBytes: CHUNK,
    fill: 'zero',
    hashAlgorithm: 'blake3',
  });
  const handle = await open(path, 'r+');
  try {
    for (const index of DATA_CHUNKS) {
      await handle.write(chunkData(index), 0, CHUNK, index * CHUNK);
      manifest.set(index, digestChunk('blake3', chunkData(index)));
    }
  } finally {
    await handle.close();
  }
  manifest.complete = true;
  return { path, manifest };
}

/**
 * Bytes of zero chunks a check reads past the page cache here: all of them where the temp dir's file
 * system takes O_DIRECT (Linux, not tmpfs), none elsewhere.
 */
async function pastCache(zeroBytes: number): Promise<number> {
  if (process.platform !== 'linux') return 0;
  return (await statfs(dir.path)).type === 0x01021994 ? 0 : zeroBytes;
}

async function poke(path: string, offset: number, value: number): Promise<void> {
  const handle = await open(path, 'r+');
  try {
    await handle.write(new Uint8Array([value]), 0, 1, offset);
  } finally {
    await handle.close();
  }
}

describe('checkImageAgainstManifest (verifyTarget: manifest)', () => {
  it('hashes only the chunks the manifest gives a digest, proves the others zero by reading them past the page cache, and reports progress', async () => {
    const { path, manifest } = await sparseImage('clean.raw');
    const progress: Array<[number, number]> = [];
    const result = await checkImageAgainstManifest(path, manifest, {
      onProgress: (done, total) => progress.push([done, total]),
    });
    expect(result).toEqual({
      mismatches: 0,
      bytesHashed: DATA_CHUNKS.length * CHUNK,
      bytesRead: DISK,
      bytesReadPastCache: await pastCache(DISK - DATA_CHUNKS.length * CHUNK),
    });
    expect(progress[0]).toEqual([0, DISK]);
    expect(progress.at(-1)).toEqual([DISK, DISK]);
    expect(progress).toHaveLength(manifest.chunkCount + 1);
    for (let i = 1; i < progress.length; i++) expect(progress[i]![0]).toBeGreaterThan(progress[i - 1]![0]);
  });

  it('finds one corrupted byte in a chunk that holds data', async () => {
    const { path, manifest } = await sparseImage('corrupt-data.raw');
    await poke(path, 10 * CHUNK + 12345, 0x77);
    expect((await checkImageAgainstManifest(path, manifest)).mismatches).toBe(1);
  });

  it('finds one non-zero byte written into a hole, still in the page cache (a direct read writes it back first)', async () => {
    const { path, manifest } = await sparseImage('hole-written.raw');
    await poke(path, 7 * CHUNK + 3 * MiB + 9, 0x01);
    expect(await checkImageAgainstManifest(path, manifest)).toMatchObject({
      mismatches: 1,
      bytesReadPastCache: await pastCache(DISK - DATA_CHUNKS.length * CHUNK),
    });
  });

  it('counts an unknown chunk as a mismatch without reading it, and checks only the chunks `only` selects', async () => {
    const { path, manifest } = await sparseImage('unknown.raw');
    manifest.set(5, 'unknown');
    const all = await checkImageAgainstManifest(path, manifest);
    expect(all).toMatchObject({ mismatches: 1, bytesRead: DISK - CHUNK });
    const some = await checkImageAgainstManifest(path, manifest, { only: (i) => i === 3 || i === 4 });
    expect(some).toEqual({
      mismatches: 0,
      bytesHashed: CHUNK,
      bytesRead: 2 * CHUNK,
      bytesReadPastCache: await pastCache(CHUNK),
    });
  });

  it("stops at an abort with the signal's reason, checking no chunk after it", async () => {
    const { path, manifest } = await sparseImage('aborted.raw');
    const controller = new AbortController();
    const reason = new Error('stop here');
    let progressAfterAbort = 0;
    const failure = await checkImageAgainstManifest(path, manifest, {
      signal: controller.signal,
      onProgress: (done) => {
        if (controller.signal.aborted) progressAfterAbort++;
        if (done >= 2 * CHUNK) controller.abort(reason);
      },
    }).catch((error: unknown) => error);
    expect(failure).toBe(reason);
    // Chunks already being checked when it came may finish; none starts after it.
    expect(progressAfterAbort).toBeLessThan(4);
  });

  it('finds a chunk whose digest is of the right bytes in another algorithm', async () => {
    const { path } = await sparseImage('other-algorithm.raw');
    const sha = DiskManifest.create({
      diskSize: DISK,
      chunkSizeBytes: CHUNK,
      fill: 'zero',
      hashAlgorithm: 'sha256',
    });
    for (const index of DATA_CHUNKS) sha.set(index, digestChunk('sha256', chunkData(index)));
    expect((await checkImageAgainstManifest(path, sha)).mismatches).toBe(0);
    const mislabelled = DiskManifest.create({
      diskSize: DISK,
      chunkSizeBytes: CHUNK,
      hashAlgorithm: 'blake3',
    });
    mislabelled.entries.set(sha.entries);
    expect((await checkImageAgainstManifest(path, mislabelled)).mismatches).toBe(DATA_CHUNKS.length);
  });
});
