import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { type Extent, FileSink, transferDisk } from '@syncproxy/core';
import { expect, it } from 'vitest';
import { PatternReader, patternBytes } from './fixtures/readers.js';
import { useTempDir } from './fixtures/temp-dir.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

const dir = useTempDir();

it('a 64 GiB disk holding 100 MiB of data leaves a target with at most 110 MiB allocated', async () => {
  // 100 MiB of data in 50 extents of 2 MiB spread over the disk, and 3000 MiB of zero extents between some of them.
  const extents: Extent[] = [];
  for (let i = 0; i < 50; i++) {
    const offset = i * (GiB + 3 * MiB) + 512 * 1024;
    extents.push({ offset, length: 2 * MiB, kind: 'data' });
    if (i % 5 === 0) extents.push({ offset: offset + 2 * MiB, length: 300 * MiB, kind: 'zero' });
  }
  const reader = new PatternReader(64 * GiB, extents);
  const path = join(dir.path, 'sparse.img');
  const result = await transferDisk({ reader, sink: new FileSink(path) });

  const info = await stat(path);
  expect(info.size).toBe(64 * GiB);
  expect(info.blocks * 512).toBeLessThanOrEqual(110 * MiB);
  expect(info.blocks * 512).toBeGreaterThanOrEqual(100 * MiB);
  expect(result.bytesRead).toBe(100 * MiB);
  expect(result.bytesWritten).toBe(100 * MiB);
  // A full sync: every byte that is not data is zero, and none of it was written (holes FileSink made).
  expect(result.zeroBytes).toBe(64 * GiB - 100 * MiB);

  const handle = await open(path, 'r');
  try {
    for (const extent of extents) {
      // Each data extent plus 4 KiB either side (which must read as zeroes).
      const from = extent.offset - 4096;
      const bytes = new Uint8Array(extent.kind === 'data' ? extent.length + 8192 : 4096);
      await handle.read(bytes, 0, bytes.length, extent.kind === 'data' ? from : extent.offset);
      const expected = new Uint8Array(bytes.length);
      if (extent.kind === 'data') expected.set(patternBytes(extent.offset, extent.length), 4096);
      expect(Buffer.compare(bytes, expected)).toBe(0);
    }
  } finally {
    await handle.close();
  }
});
