import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DiskManifest, FileManifestStore, readManifest } from '@syncproxy/core';
import { describe, expect, it } from 'vitest';
import { useTempDir } from './fixtures/temp-dir.js';

const dir = useTempDir();

const sha = (text: string) => createHash('sha256').update(text).digest();

describe('DiskManifest', () => {
  it('holds a hash, a zero marker or unknown per chunk, with a short last chunk', () => {
    const manifest = DiskManifest.create({ diskSize: 10_000, chunkSizeBytes: 4096 });
    expect(manifest.chunkCount).toBe(3);
    expect(manifest.chunkLength(2)).toBe(1808);
    manifest.set(0, sha('a'));
    manifest.set(1, 'zero');
    expect(manifest.entry(0)).toEqual({
      state: 'hash',
      algorithm: 'sha256',
      digest: sha('a').toString('hex'),
    });
    expect(manifest.entry(1)).toEqual({ state: 'zero' });
    expect(manifest.entry(2)).toEqual({ state: 'unknown' });
    expect(manifest.matches(0, sha('a'))).toBe(true);
    expect(manifest.matches(1, 'zero')).toBe(true);
    expect(manifest.matches(2, 'zero')).toBe(false);
    expect(manifest.unknownCount()).toBe(1);
  });

  it('digests geometry and entries only', () => {
    const a = DiskManifest.create({ diskSize: 8192, chunkSizeBytes: 4096, fill: 'zero' });
    const b = DiskManifest.create({
      diskSize: 8192,
      chunkSizeBytes: 4096,
      fill: 'zero',
      transferId: 'other',
    });
    b.complete = true;
    expect(a.digest()).toBe(b.digest());
    const expected = createHash('sha256')
      .update('SYNCPROXY-MANIFEST/1\n')
      .update(Buffer.from([0, 0, 0, 0, 0, 0, 0x20, 0]))
      .update(Buffer.from([0, 0, 0, 0, 0, 0, 0x10, 0]))
      .update(new Uint8Array(64))
      .digest('hex');
    expect(a.digest()).toBe(expected);
    b.set(1, sha('x'));
    expect(a.digest()).not.toBe(b.digest());
  });

  it('round-trips through its file form and the store', async () => {
    const manifest = DiskManifest.create({
      diskSize: 5 * 4096 + 1,
      chunkSizeBytes: 4096,
      transferId: 'snap-7',
    });
    manifest.set(0, sha('first'));
    manifest.set(3, 'zero');
    manifest.complete = true;
    const store = new FileManifestStore(join(dir.path, 'm.manifest'));
    expect(await store.load()).toBeUndefined();
    await store.save(manifest);
    const loaded = await readManifest(store.path);
    expect(loaded.digest()).toBe(manifest.digest());
    expect(loaded).toMatchObject({
      diskSize: 20481,
      chunkSizeBytes: 4096,
      chunkCount: 6,
      complete: true,
      pendingFrom: 6,
      transferId: 'snap-7',
    });
    const text = (await readFile(store.path)).toString('latin1');
    expect(
      text.startsWith(
        'SYNCPROXY-MANIFEST/2\n{"diskSize":20481,"chunkSizeBytes":4096,"chunkCount":6,"hashAlgorithm":"sha256","complete":true,"pendingFrom":6,"transferId":"snap-7","updatedAt":"',
      ),
    ).toBe(true);
  });

  it('rejects a file altered after it was written with an integrity error', async () => {
    const path = join(dir.path, 'altered.manifest');
    const manifest = DiskManifest.create({ diskSize: 4096, chunkSizeBytes: 4096 });
    const bytes = Buffer.from(manifest.encode());
    bytes[bytes.length - 40] = bytes[bytes.length - 40]! ^ 1;
    await writeFile(path, bytes);
    await expect(readManifest(path)).rejects.toMatchObject({
      code: 'integrity',
      message: `${path} is not a valid syncproxy manifest: checksum mismatch (torn or altered file)`,
    });
    await expect(readManifest(join(dir.path, 'missing.manifest'))).rejects.toMatchObject({
      code: 'not-found',
    });
  });
});
