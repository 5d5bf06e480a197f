import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  applyChanges,
  changedRanges,
  createSeededDisk,
  type DiskChange,
  seededBytes,
  seededChanges,
  VirtualDisk,
  writeImageFile,
} from '@syncproxy/testkit/mock';
import { afterAll, describe, expect, it } from 'vitest';

const MIB = 1024 * 1024;
const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

describe('seeded fixtures', () => {
  it('the same seed gives the same bytes; another seed gives others', () => {
    expect(seededBytes(42, 16)).toEqual(seededBytes(42, 16));
    expect(Buffer.from(seededBytes(42, 8)).toString('hex')).not.toBe(
      Buffer.from(seededBytes(43, 8)).toString('hex'),
    );
    expect(seededBytes(7, 5).length).toBe(5);
  });

  it('a seeded disk is reproducible, sparse, and has data in its first and last blocks', () => {
    const a = createSeededDisk({ seed: 3, sizeBytes: 4 * MIB + 123 });
    const b = createSeededDisk({ seed: 3, sizeBytes: 4 * MIB + 123 });
    expect(sha(a.read(0, a.sizeBytes))).toBe(sha(b.read(0, b.sizeBytes)));
    expect(a.allocatedExtents()).toEqual(b.allocatedExtents());
    const extents = a.allocatedExtents();
    expect(extents[0]!.offset).toBe(0);
    const last = extents[extents.length - 1]!;
    expect(last.offset + last.length).toBe(4 * MIB + 123);
    expect(a.allocatedBytes).toBeLessThan(a.sizeBytes);
  });

  it('seeded changes: a zeroed middle range, one byte inside it, a cross-MiB write and the last byte', () => {
    const changes = seededChanges({ seed: 9, sizeBytes: 8 * MIB, count: 0 });
    expect(changes.map((c) => [c.kind, c.offset, c.kind === 'data' ? c.data.length : c.length])).toEqual([
      ['zero', 4 * MIB - 40 * 1024, 80 * 1024],
      ['data', 4 * MIB + 7, 1],
      ['data', MIB - 3000, 7000],
      ['data', 8 * MIB - 1, 1],
    ]);
    expect(changedRanges(changes)).toEqual([
      { offset: MIB - 3000, length: 7000 },
      { offset: 4 * MIB - 40 * 1024, length: 80 * 1024 },
      { offset: 8 * MIB - 1, length: 1 },
    ]);
  });

  it('applyChanges on a disk yields the bytes the changes describe', async () => {
    const disk = new VirtualDisk({ sizeBytes: 3 * MIB });
    disk.write(0, new Uint8Array(3 * MIB).fill(1));
    const changes = seededChanges({ seed: 5, sizeBytes: 3 * MIB });
    const model = new Uint8Array(3 * MIB).fill(1);
    for (const c of changes as DiskChange[]) {
      if (c.kind === 'data') model.set(c.data, c.offset);
      else model.fill(0, c.offset, c.offset + c.length);
    }
    await applyChanges(disk, changes);
    expect(sha(disk.read(0, disk.sizeBytes))).toBe(sha(model));
  });

  it('writeImageFile writes a sparse raw image with the exact content', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'testkit-fixture-'));
    dirs.push(dir);
    const disk = createSeededDisk({ seed: 11, sizeBytes: 64 * MIB, density: 0.01 });
    const path = join(dir, 'disk.img');
    await writeImageFile(disk, path);
    const info = await stat(path);
    expect(info.size).toBe(64 * MIB);
    expect(info.blocks * 512).toBeLessThanOrEqual(disk.allocatedBytes + MIB);
    expect(sha(await readFile(path))).toBe(sha(disk.read(0, disk.sizeBytes)));
  });
});

function sha(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
