import { createHash } from 'node:crypto';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FileSink, readManifest, type TransferOptions, transferDisk } from '@syncproxy/core';
import { describe, expect, it } from 'vitest';
import { PatternReader } from './fixtures/readers.js';
import { manifestDigestOf, useTempDir } from './fixtures/temp-dir.js';

const dir = useTempDir();

const MiB = 1 << 20;
const DISK = 64 * MiB;
const EXTENTS = [{ offset: 0, length: DISK, kind: 'data' as const }];
const options: Partial<TransferOptions> = {
  chunkSizeBytes: MiB,
  concurrency: 2,
  maxInFlightBytes: 2 * MiB,
  checkpointEvery: { chunks: 8 },
  transferId: 'snap-1',
  full: true,
};

/** Starts a full transfer to `path` and stops it after 40 of its 64 chunks are written. */
async function interrupted(path: string): Promise<void> {
  const stop = new AbortController();
  const sink = new FileSink(path);
  const write = sink.write.bind(sink);
  let writes = 0;
  sink.write = async (offset, data) => {
    await write(offset, data);
    if (++writes === 40) stop.abort(new Error('killed'));
  };
  await expect(
    transferDisk({ ...options, reader: new PatternReader(DISK, EXTENTS), sink, signal: stop.signal }),
  ).rejects.toMatchObject({ code: 'aborted' });
}

async function sha256(path: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(path))
    .digest('hex');
}

describe('checkpoints and manifests are bound to the target they were saved for', () => {
  it('an image deleted and made anew is synced whole: the leftover checkpoint and manifest are not continued', async () => {
    const path = join(dir.path, 'deleted.img');
    await interrupted(path);
    await rm(path);
    const reader = new PatternReader(DISK, EXTENTS);
    const result = await transferDisk({ ...options, reader, sink: new FileSink(path) });
    expect(await sha256(path)).toBe(reader.sha256());
    expect(result.resumed).toBe(false);
    expect(result.chunksSkipped).toBe(0);
    expect(result.warnings.map((w) => w.code)).toEqual(['checkpoint-discarded', 'manifest-reset']);
    expect(result.warnings[0]!.message).toContain('the image was replaced or made anew');
    const image = await readFile(path);
    expect(result.manifestDigest).toBe(manifestDigestOf(image, MiB));
  });

  it('an image swapped for another file is not resumed into', async () => {
    const path = join(dir.path, 'swapped.img');
    await interrupted(path);
    await writeFile(`${path}.other`, new Uint8Array(DISK).fill(7));
    await rename(`${path}.other`, path);
    const reader = new PatternReader(DISK, EXTENTS);
    const result = await transferDisk({ ...options, reader, sink: new FileSink(path) });
    expect(await sha256(path)).toBe(reader.sha256());
    expect(result.resumed).toBe(false);
    expect((await readManifest(`${path}.manifest`)).digest()).toBe(result.manifestDigest);
  });

  it('the same image is resumed, and its manifest continued', async () => {
    const path = join(dir.path, 'same.img');
    await interrupted(path);
    const reader = new PatternReader(DISK, EXTENTS);
    const result = await transferDisk({ ...options, reader, sink: new FileSink(path) });
    expect(await sha256(path)).toBe(reader.sha256());
    expect(result.resumed).toBe(true);
    expect(result.chunksSkipped).toBeGreaterThanOrEqual(24);
    expect(result.warnings).toEqual([]);
    expect(result.manifestDigest).toBe(manifestDigestOf(await readFile(path), MiB));
  });

  it('FileSink names the same file alike on every open, and a file made anew at the path otherwise', async () => {
    const path = join(dir.path, 'named.img');
    const names: Array<string | undefined> = [];
    for (const recreate of [false, false, true]) {
      if (recreate) await rm(path);
      const sink = new FileSink(path);
      expect(sink.targetId).toBeUndefined();
      await sink.open(MiB);
      names.push(sink.targetId);
      await sink.close();
    }
    expect(names[0]).toMatch(/^file:\d+:\d+:\d+$/);
    expect(names[1]).toBe(names[0]);
    expect(names[2]).not.toBe(names[0]);
  });
});
