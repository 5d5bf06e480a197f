import type { Extent } from '@syncproxy/core';

/** What a virtual disk and each of its snapshots can be asked. */
export interface DiskView {
  readonly sizeBytes: number;
  readonly blockSizeBytes: number;
  /** Bytes of `[offset, offset + length)`; unwritten ranges read as zeroes. */
  read(offset: number, length: number): Uint8Array;
  /** The written blocks as sorted, coalesced `data` extents (clipped to the disk size). */
  allocatedExtents(): Extent[];
  /** Bytes held in memory for written blocks. */
  readonly allocatedBytes: number;
}

export interface VirtualDiskOptions {
  sizeBytes: number;
  /** The unit in which writes are tracked and changed-block sets are reported. Default 64 KiB. */
  blockSizeBytes?: number;
}

export interface ChangedExtentsOptions {
  /**
   * Report changes at this granularity instead of the disk's block size (a
   * multiple of it): a platform with 512 KiB blocks names a whole 512 KiB block
   * when one byte of it changed.
   */
  granularityBytes?: number;
}

/**
 * One stored block of a virtual disk, shared copy-on-write between snapshots.
 * A block is never mutated once a snapshot can see it: the epoch says which
 * generation owns it, and a write to an older block copies it first. That
 * keeps snapshots O(blocks) to take and makes "changed" an identity test.
 */
export interface Block {
  data: Uint8Array;
  epoch: number;
}

const DEFAULT_BLOCK_SIZE = 64 * 1024;

/**
 * A sparse, mutable disk for mock platforms: memory follows the written
 * blocks, never the virtual size (a 1 TiB disk with 2 GiB written holds
 * 2 GiB), and snapshots give exact changed-block sets, as CBT does: a block
 * counts as changed when it was written after the base snapshot, even with
 * the same bytes.
 */
export class VirtualDisk implements DiskView {
  readonly sizeBytes: number;
  readonly blockSizeBytes: number;
  readonly #blocks = new Map<number, Block>();
  readonly #snapshots = new Map<string, DiskSnapshot>();
  #epoch = 0;
  #nextSnapshot = 1;

  constructor(options: VirtualDiskOptions) {
    const blockSize = options.blockSizeBytes ?? DEFAULT_BLOCK_SIZE;
    assertCount(options.sizeBytes, 'sizeBytes');
    if (!Number.isSafeInteger(blockSize) || blockSize < 1) {
      throw new RangeError(`blockSizeBytes must be a positive integer (got ${blockSize})`);
    }
    this.sizeBytes = options.sizeBytes;
    this.blockSizeBytes = blockSize;
  }

  write(offset: number, data: Uint8Array): void {
    this.#checkRange(offset, data.length, 'write');
    let done = 0;
    while (done < data.length) {
      const position = offset + done;
      const index = Math.floor(position / this.blockSizeBytes);
      const within = position - index * this.blockSizeBytes;
      const n = Math.min(data.length - done, this.blockSizeBytes - within);
      this.#writableBlock(index).set(data.subarray(done, done + n), within);
      done += n;
    }
  }

  /** Zeroes a range; blocks zeroed whole are freed, as a discard would. */
  writeZeroes(offset: number, length: number): void {
    this.#checkRange(offset, length, 'writeZeroes');
    const end = offset + length;
    let position = offset;
    while (position < end) {
      const index = Math.floor(position / this.blockSizeBytes);
      const blockStart = index * this.blockSizeBytes;
      const blockEnd = Math.min(blockStart + this.blockSizeBytes, this.sizeBytes);
      const n = Math.min(end, blockEnd) - position;
      if (position === blockStart && n === blockEnd - blockStart) {
        this.#blocks.delete(index);
      } else if (this.#blocks.has(index)) {
        this.#writableBlock(index).fill(0, position - blockStart, position - blockStart + n);
      }
      position += n;
    }
  }

  read(offset: number, length: number): Uint8Array {
    this.#checkRange(offset, length, 'read');
    return readBlocks(this.#blocks, this.blockSizeBytes, offset, length);
  }

  allocatedExtents(): Extent[] {
    return allocated(this.#blocks, this.blockSizeBytes, this.sizeBytes);
  }

  get allocatedBytes(): number {
    return this.#blocks.size * this.blockSizeBytes;
  }

  /** Freezes the current content. The snapshot stays readable until deleted. */
  snapshot(id = `snap-${this.#nextSnapshot++}`): DiskSnapshot {
    if (this.#snapshots.has(id)) throw new Error(`snapshot ${id} already exists`);
    const snapshot = new DiskSnapshot(id, this.sizeBytes, this.blockSizeBytes, new Map(this.#blocks));
    this.#epoch++;
    this.#snapshots.set(id, snapshot);
    return snapshot;
  }

  getSnapshot(id: string): DiskSnapshot | undefined {
    return this.#snapshots.get(id);
  }

  get snapshots(): DiskSnapshot[] {
    return [...this.#snapshots.values()];
  }

  /** Forgets a snapshot, releasing the blocks only it held. False when it did not exist. */
  deleteSnapshot(id: string): boolean {
    return this.#snapshots.delete(id);
  }

  /**
   * The exact set of blocks written between `base` and `target` (the live disk
   * when omitted), sorted and coalesced: `data` where the target holds data,
   * `zero` where it was discarded. Without a base: every allocated block.
   */
  changedExtents(
    base: DiskSnapshot | undefined,
    target?: DiskSnapshot,
    options: ChangedExtentsOptions = {},
  ): Extent[] {
    const to = target === undefined ? this.#blocks : target.blocks;
    const granularity = options.granularityBytes ?? this.blockSizeBytes;
    if (!Number.isSafeInteger(granularity) || granularity < 1 || granularity % this.blockSizeBytes !== 0) {
      throw new RangeError(
        `granularityBytes must be a multiple of the block size ${this.blockSizeBytes} (got ${granularity})`,
      );
    }
    const changed = new Set<number>();
    if (base === undefined) {
      for (const index of to.keys()) changed.add(index);
    } else {
      for (const [index, block] of to) if (base.blocks.get(index) !== block) changed.add(index);
      for (const index of base.blocks.keys()) if (!to.has(index)) changed.add(index);
    }
    const perGranule = granularity / this.blockSizeBytes;
    const granules = new Map<number, boolean>();
    for (const index of changed) {
      const granule = Math.floor(index / perGranule);
      granules.set(granule, (granules.get(granule) ?? false) || to.has(index));
    }
    const extents: Extent[] = [];
    for (const granule of [...granules.keys()].sort((a, b) => a - b)) {
      // A granule is data when the target holds data anywhere in it: a reader
      // must send its bytes, zero or not.
      let hasData = granules.get(granule)!;
      if (!hasData && perGranule > 1) {
        for (let i = granule * perGranule; i < (granule + 1) * perGranule && !hasData; i++)
          hasData = to.has(i);
      }
      pushExtent(extents, granule * granularity, granularity, hasData ? 'data' : 'zero', this.sizeBytes);
    }
    return extents;
  }

  #writableBlock(index: number): Uint8Array {
    const block = this.#blocks.get(index);
    if (block !== undefined && block.epoch === this.#epoch) return block.data;
    const start = index * this.blockSizeBytes;
    const data = new Uint8Array(Math.min(this.blockSizeBytes, this.sizeBytes - start));
    if (block !== undefined) data.set(block.data);
    this.#blocks.set(index, { data, epoch: this.#epoch });
    return data;
  }

  #checkRange(offset: number, length: number, what: string): void {
    assertCount(offset, `${what} offset`);
    assertCount(length, `${what} length`);
    if (offset + length > this.sizeBytes) {
      throw new RangeError(
        `${what} of [${offset}, ${offset + length}) is beyond the disk size ${this.sizeBytes}`,
      );
    }
  }
}

/** A frozen view of a {@link VirtualDisk}. */
export class DiskSnapshot implements DiskView {
  /** @internal the disk's blocks at snapshot time; shared, never mutated. */
  readonly blocks: ReadonlyMap<number, Block>;

  constructor(
    readonly id: string,
    readonly sizeBytes: number,
    readonly blockSizeBytes: number,
    blocks: Map<number, Block>,
  ) {
    this.blocks = blocks;
  }

  read(offset: number, length: number): Uint8Array {
    assertCount(offset, 'read offset');
    assertCount(length, 'read length');
    if (offset + length > this.sizeBytes) {
      throw new RangeError(
        `read of [${offset}, ${offset + length}) is beyond the disk size ${this.sizeBytes}`,
      );
    }
    return readBlocks(this.blocks, this.blockSizeBytes, offset, length);
  }

  allocatedExtents(): Extent[] {
    return allocated(this.blocks, this.blockSizeBytes, this.sizeBytes);
  }

  get allocatedBytes(): number {
    return this.blocks.size * this.blockSizeBytes;
  }
}

function readBlocks(
  blocks: ReadonlyMap<number, Block>,
  blockSize: number,
  offset: number,
  length: number,
): Uint8Array {
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const position = offset + done;
    const index = Math.floor(position / blockSize);
    const within = position - index * blockSize;
    const n = Math.min(length - done, blockSize - within);
    const block = blocks.get(index);
    if (block !== undefined) out.set(block.data.subarray(within, within + n), done);
    done += n;
  }
  return out;
}

function allocated(blocks: ReadonlyMap<number, Block>, blockSize: number, sizeBytes: number): Extent[] {
  const extents: Extent[] = [];
  for (const index of [...blocks.keys()].sort((a, b) => a - b)) {
    pushExtent(extents, index * blockSize, blockSize, 'data', sizeBytes);
  }
  return extents;
}

function pushExtent(
  extents: Extent[],
  offset: number,
  length: number,
  kind: Extent['kind'],
  sizeBytes: number,
): void {
  const clipped = Math.min(length, sizeBytes - offset);
  if (clipped <= 0) return;
  const last = extents[extents.length - 1];
  if (last !== undefined && last.kind === kind && last.offset + last.length === offset)
    last.length += clipped;
  else extents.push({ offset, length: clipped, kind });
}

function assertCount(value: number, what: string): void {
  if (!Number.isSafeInteger(value) || value < 0)
    throw new RangeError(`${what} must be a non-negative integer (got ${value})`);
}
