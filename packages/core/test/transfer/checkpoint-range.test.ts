import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FileSink, transferDisk } from '@syncproxy/core';
import { describe, expect, it } from 'vitest';
import { MemoryReader, patternBytes } from './fixtures/readers.js';
import { useTempDir } from './fixtures/temp-dir.js';

const dir = useTempDir();

const CHUNK = 64 << 10;

describe('a checkpoint claiming more than its disk holds', () => {
  const patches: Array<[string, Record<string, unknown>]> = [
    ['doneBelow 256', { doneBelow: 256 }],
    ['doneBelow 1e9', { doneBelow: 1e9 }],
    ['a run past the end', { doneRuns: [[0, 9]] }],
    ['bytesDone past the disk', { bytesDone: 1e12 }],
  ];
  for (const [field, patch] of patches) {
    it(`${field}: is not resumed, and every chunk is sent`, async () => {
      const image = patternBytes(0, 4 * CHUNK, 3);
      const path = join(dir.path, `${field.replace(/\W/g, '-')}.raw`);
      await writeFile(
        `${path}.checkpoint.json`,
        JSON.stringify({
          version: 1,
          transferId: 't1',
          diskSize: image.length,
          chunkSizeBytes: CHUNK,
          doneBelow: 0,
          doneRuns: [],
          bytesDone: 0,
          chunksDone: 0,
          updatedAt: '2026-01-01T00:00:00.000Z',
          ...patch,
        }),
      );
      const reader = new MemoryReader(image, [{ offset: 0, length: image.length, kind: 'data' }]);
      const result = await transferDisk({
        reader,
        sink: new FileSink(path),
        chunkSizeBytes: CHUNK,
        transferId: 't1',
      });
      expect(result).toMatchObject({ resumed: false, chunks: 4, chunksSkipped: 0 });
      expect(result.warnings.map((w) => w.code)).toContain('checkpoint-discarded');
      expect(Buffer.compare(await readFile(path), image)).toBe(0);
    });
  }
});
