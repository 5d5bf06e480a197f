import { mkdir, open } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Extent } from '@syncproxy/core';
import { SeededRandom, seededBytes } from './seeded-random.js';
import { type DiskView, VirtualDisk } from './virtual-disk.js';

export interface SeededDiskOptions {
  seed: number;
  sizeBytes: number;
  /** Default 64 KiB. */
  blockSizeBytes?: number;
  /** Share of blocks that hold data, 0..1. Default 0.25. */
  density?: number;
}

/**
 * A reproducible sparse disk with known content: the first and last blocks
 * always hold data (boot sector, backup GPT), a run of blocks crosses the
 * middle, one allocated block is all zeroes (a reader must still copy it
 * right), and the rest are picked by `density`. Same seed, same bytes.
 */
export function createSeededDisk(options: SeededDiskOptions): VirtualDisk {
  const disk = new VirtualDisk({ sizeBytes: options.sizeBytes, blockSizeBytes: options.blockSizeBytes });
  const random = new SeededRandom(options.seed);
  const blockSize = disk.blockSizeBytes;
  const blocks = Math.ceil(disk.sizeBytes / blockSize);
  const density = options.density ?? 0.25;
  const lengthOf = (index: number): number => Math.min(blockSize, disk.sizeBytes - index * blockSize);
  const middle = Math.floor(blocks / 2);
  for (let index = 0; index < blocks; index++) {
    const forced = index === 0 || index === blocks - 1 || (index >= middle - 1 && index <= middle + 1);
    if (!forced && !random.chance(density)) continue;
    disk.write(index * blockSize, seededBytes(mix(options.seed, index), lengthOf(index)));
  }
  if (blocks > 4) {
    const zeroBlock = 1 + (random.nextUint32() % (blocks - 2));
    disk.write(zeroBlock * blockSize, new Uint8Array(lengthOf(zeroBlock)));
  }
  return disk;
}

/** One change a test makes to a disk: bytes written, or a range zeroed. */
export type DiskChange =
  | { kind: 'data'; offset: number; data: Uint8Array }
  | { kind: 'zero'; offset: number; length: number };

export interface SeededChangesOptions {
  seed: number;
  sizeBytes: number;
  /** Random writes beyond the fixed cases. Default 6. */
  count?: number;
  /** Longest random write. Default 96 KiB. */
  maxLengthBytes?: number;
}

/**
 * Changes that catch readers which miss things: a zeroed range in the middle
 * (data on a seeded disk), one byte written inside it, a write across a 1 MiB
 * boundary, the very last byte of the disk, and `count` random unaligned
 * writes. Same seed, same changes.
 */
export function seededChanges(options: SeededChangesOptions): DiskChange[] {
  const { sizeBytes, seed } = options;
  const random = new SeededRandom(mix(seed, 0x5eed));
  const maxLength = Math.max(1, Math.min(options.maxLengthBytes ?? 96 * 1024, sizeBytes));
  const data = (offset: number, length: number, salt: number): DiskChange => ({
    kind: 'data',
    offset,
    data: seededBytes(mix(seed, salt), Math.min(length, sizeBytes - offset)),
  });
  // The middle of a seeded disk holds data, so zeroing it really changes bytes.
  const middle = Math.floor(sizeBytes / 2);
  const zeroAt = Math.max(0, middle - 40 * 1024);
  const changes: DiskChange[] = [
    { kind: 'zero', offset: zeroAt, length: Math.min(80 * 1024, sizeBytes - zeroAt) },
    data(middle + 7, 1, 1),
  ];
  const mib = 1024 * 1024;
  if (sizeBytes > 2 * mib) changes.push(data(mib - 3000, 7000, 2));
  changes.push(data(sizeBytes - 1, 1, 3));
  for (let i = 0; i < (options.count ?? 6); i++) {
    const length = random.int(1, maxLength + 1);
    changes.push(data(random.int(0, sizeBytes - length + 1), length, 100 + i));
  }
  return changes;
}

/** Anything changes can be applied to: a {@link VirtualDisk}, a mock platform's disk. */
export interface WritableDisk {
  write(offset: number, data: Uint8Array): void | Promise<void>;
  writeZeroes(offset: number, length: number): void | Promise<void>;
}

export async function applyChanges(target: WritableDisk, changes: readonly DiskChange[]): Promise<void> {
  for (const change of changes) {
    if (change.kind === 'data') await target.write(change.offset, change.data);
    else await target.writeZeroes(change.offset, change.length);
  }
}

/** The byte ranges `changes` touch, sorted and merged. */
export function changedRanges(changes: readonly DiskChange[]): Array<{ offset: number; length: number }> {
  const ranges = changes
    .map((c) => ({ offset: c.offset, length: c.kind === 'data' ? c.data.length : c.length }))
    .filter((r) => r.length > 0)
    .sort((a, b) => a.offset - b.offset);
  const merged: Array<{ offset: number; length: number }> = [];
  for (const r of ranges) {
    const last = merged[merged.length - 1];
    if (last !== undefined && r.offset <= last.offset + last.length) {
      last.length = Math.max(last.length, r.offset + r.length - last.offset);
    } else merged.push({ ...r });
  }
  return merged;
}

/**
 * Writes a disk (or snapshot) as a sparse raw image: only allocated blocks are
 * written, the rest stays a hole. An existing file is replaced.
 */
export async function writeImageFile(source: DiskView, path: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const file = await open(path, 'w');
  try {
    await file.truncate(source.sizeBytes);
    for (const extent of source.allocatedExtents()) await writeExtent(file, source, extent);
  } finally {
    await file.close();
  }
}

async function writeExtent(
  file: import('node:fs/promises').FileHandle,
  source: DiskView,
  extent: Extent,
): Promise<void> {
  const step = 4 * 1024 * 1024;
  for (let offset = extent.offset; offset < extent.offset + extent.length; offset += step) {
    const length = Math.min(step, extent.offset + extent.length - offset);
    const bytes = source.read(offset, length);
    await file.write(bytes, 0, bytes.length, offset);
  }
}

/** A 32-bit mix of a seed and a salt, so neighbouring blocks get unrelated bytes. */
function mix(seed: number, salt: number): number {
  let h = (seed ^ Math.imul(salt + 0x9e3779b9, 0x85ebca6b)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return (h ^ (h >>> 16)) >>> 0;
}
