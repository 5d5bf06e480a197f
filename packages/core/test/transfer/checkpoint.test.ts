import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FileCheckpointStore } from '@syncproxy/core';
import { describe, expect, it } from 'vitest';
import { ChunkLedger } from '../../src/transfer/checkpoint.js';
import { useTempDir } from './fixtures/temp-dir.js';

const dir = useTempDir();

const geometry = { diskSize: 100 * 4096, chunkSizeBytes: 4096 };
const at = new Date('2026-01-01T00:00:00.000Z');

describe('ChunkLedger', () => {
  it('keeps a watermark and the runs finished above it, counting skipped cells as done', () => {
    const ledger = new ChunkLedger();
    ledger.reach(2);
    ledger.reach(3);
    ledger.reach(7);
    ledger.finish(3, 4096);
    ledger.finish(7, 100);
    expect(ledger.snapshot(geometry, at)).toMatchObject({
      doneBelow: 2,
      doneRuns: [[3, 8]],
      bytesDone: 4196,
      chunksDone: 2,
    });
    ledger.finish(2, 4096);
    expect(ledger.snapshot(geometry, at)).toMatchObject({ doneBelow: 8, doneRuns: [] });
    ledger.end(100);
    expect(ledger.snapshot(geometry, at)).toMatchObject({ doneBelow: 100, doneRuns: [] });
  });

  it('resumes from a checkpoint and forgets a chunk that failed verification', () => {
    const ledger = new ChunkLedger({
      version: 1,
      ...geometry,
      doneBelow: 5,
      doneRuns: [[9, 12]],
      bytesDone: 8 * 4096,
      chunksDone: 8,
      updatedAt: at.toISOString(),
    });
    expect([4, 5, 9, 11, 12].map((i) => ledger.isDone(i))).toEqual([true, false, true, true, false]);
    ledger.forget(2, 4096);
    ledger.forget(10, 4096);
    expect(ledger.snapshot(geometry, at)).toMatchObject({
      doneBelow: 2,
      doneRuns: [
        [3, 5],
        [9, 10],
        [11, 12],
      ],
      chunksDone: 6,
    });
  });
});

describe('FileCheckpointStore', () => {
  it('round-trips a checkpoint, reports none when the file is missing, and removes it on clear', async () => {
    const store = new FileCheckpointStore(join(dir.path, 'a.checkpoint.json'));
    expect(await store.load()).toBeUndefined();
    const checkpoint = new ChunkLedger().snapshot({ ...geometry, transferId: 'snap-1' }, at);
    await store.save(checkpoint);
    expect(await store.load()).toEqual(checkpoint);
    expect(JSON.parse(await readFile(store.path, 'utf8'))).toEqual({
      version: 1,
      transferId: 'snap-1',
      diskSize: 409600,
      chunkSizeBytes: 4096,
      doneBelow: 0,
      doneRuns: [],
      bytesDone: 0,
      chunksDone: 0,
      dataBytes: 0,
      zeroBytes: 0,
      updatedAt: '2026-01-01T00:00:00.000Z',
    });
    await store.clear();
    expect(await store.load()).toBeUndefined();
  });

  it('rejects a checkpoint claiming more bytes written than done', async () => {
    await mkdir(dir.path, { recursive: true });
    const path = join(dir.path, 'over.checkpoint.json');
    const checkpoint = { ...new ChunkLedger().snapshot(geometry, at), bytesDone: 4096, dataBytes: 8192 };
    await writeFile(path, JSON.stringify(checkpoint));
    await expect(new FileCheckpointStore(path).load()).rejects.toMatchObject({
      code: 'integrity',
      message: `${path} is not a valid syncproxy checkpoint: bad dataBytes`,
    });
  });

  it('rejects a damaged checkpoint with an integrity error', async () => {
    await mkdir(dir.path, { recursive: true });
    const path = join(dir.path, 'bad.checkpoint.json');
    await writeFile(path, '{"version":1,"diskSize":1');
    await expect(new FileCheckpointStore(path).load()).rejects.toMatchObject({
      code: 'integrity',
      message: `${path} is not a valid syncproxy checkpoint: not JSON`,
    });
  });
});
