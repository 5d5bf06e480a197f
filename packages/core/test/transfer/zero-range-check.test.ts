import { open, statfs, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ZeroRangeCheck } from '@syncproxy/core';
import { describe, expect, it } from 'vitest';
import { useTempDir } from './fixtures/temp-dir.js';

const MiB = 1024 * 1024;
const dir = useTempDir('syncproxy-zero-check-');

/** Where the temp dir's file system takes O_DIRECT (Linux, not tmpfs): reads past the cache happen there only. */
async function takesDirectIo(): Promise<boolean> {
  return process.platform === 'linux' && (await statfs(dir.path)).type !== 0x01021994;
}

/** A sparse 16 MiB file with one byte 0x5a at `dataAt`, written through the page cache and not written back. */
async function image(name: string, dataAt: number): Promise<string> {
  const path = join(dir.path, name);
  await writeFile(path, new Uint8Array(0));
  await truncate(path, 16 * MiB);
  const handle = await open(path, 'r+');
  await handle.write(new Uint8Array([0x5a]), 0, 1, dataAt);
  await handle.close();
  return path;
}

/** Runs `body` with a check over the file at `path`, then closes both. */
async function withCheck(
  path: string,
  options: { cachedOnly?: boolean },
  body: (check: ZeroRangeCheck) => Promise<void>,
): Promise<void> {
  const handle = await open(path, 'r');
  const check = await ZeroRangeCheck.open(handle, { path, ...options });
  try {
    await body(check);
  } finally {
    await check.close();
    await handle.close();
  }
}

describe('ZeroRangeCheck', () => {
  it('proves holes zero past the page cache, finds a byte not yet written back, and reads unaligned ranges through the cache', async () => {
    const path = await image('one-byte.raw', 9 * MiB + 123);
    const direct = (await takesDirectIo()) ? 12 * MiB : 0;
    await withCheck(path, {}, async (check) => {
      expect(await check.readsAsZeroes(0, 8 * MiB)).toBe(true);
      expect(await check.readsAsZeroes(8 * MiB, 4 * MiB)).toBe(false);
      // Unaligned at both ends: through the page cache.
      expect(await check.readsAsZeroes(12 * MiB + 100, 3 * MiB)).toBe(true);
      expect(await check.readsAsZeroes(9 * MiB + 100, 100)).toBe(false);
      expect(check.bytesReadPastCache).toBe(direct);
      expect(check.bytesRead).toBe(12 * MiB + 3 * MiB + 100);
    });
  });

  it('does not call a range zero where the file ends before it (it reads as nothing, not as zeroes)', async () => {
    await withCheck(await image('short.raw', 0), {}, async (check) => {
      expect(await check.readsAsZeroes(12 * MiB, 8 * MiB)).toBe(false);
      expect(await check.readsAsZeroes(16 * MiB - 4096, 8192)).toBe(false);
      expect(await check.readsAsZeroes(16 * MiB + 100, 50)).toBe(false);
    });
  });

  it('reads only through the page cache when told to', async () => {
    await withCheck(await image('cached.raw', 0), { cachedOnly: true }, async (check) => {
      expect(await check.readsAsZeroes(4 * MiB, 8 * MiB)).toBe(true);
      expect(check.bytesReadPastCache).toBe(0);
      expect(check.bytesRead).toBe(8 * MiB);
    });
  });
});
