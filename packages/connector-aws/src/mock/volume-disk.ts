import type { DiskSnapshot, VirtualDisk } from '@syncproxy/testkit/mock';

/** EBS direct block size. */
export const BLOCK_SIZE = 524_288;

/** A frozen volume, as the EBS direct APIs see it: 512 KiB blocks. */
export interface VolumeSnapshotView {
  readonly id: string;
  /** Indexes of the blocks that hold data, ascending. */
  writtenBlocks(): readonly number[];
  /**
   * Blocks written between `base` and this snapshot, ascending; `inTarget`
   * false for a block this snapshot no longer holds (discarded since).
   */
  changedBlocks(base: VolumeSnapshotView): ReadonlyArray<{ index: number; inTarget: boolean }>;
  /** Bytes of the volume at snapshot time; beyond the volume's end reads as zeroes. */
  read(offset: number, length: number): Uint8Array;
}

/**
 * What the mock keeps for each EBS volume: the testkit's {@link VirtualDisk}
 * (adapted by {@link volumeOfVirtualDisk}), or a test's own source for
 * volumes too big to hold in memory.
 */
export interface VolumeDisk {
  readonly sizeBytes: number;
  snapshot(id: string): VolumeSnapshotView;
  deleteSnapshot(id: string): void;
  /** The live volume (for `MockPlatform.writeDisk`/`readDisk`); absent for read-only sources. */
  write?(offset: number, data: Uint8Array): void;
  writeZeroes?(offset: number, length: number): void;
  read?(offset: number, length: number): Uint8Array;
}

/** A VirtualDisk seen as an EBS volume: its snapshots, blocks and changed-block sets at 512 KiB. */
export function volumeOfVirtualDisk(disk: VirtualDisk): VolumeDisk {
  if (BLOCK_SIZE % disk.blockSizeBytes !== 0) {
    throw new RangeError(`the disk's block size ${disk.blockSizeBytes} must divide 512 KiB`);
  }
  const views = new Map<string, DiskSnapshot>();
  const make = (snapshot: DiskSnapshot): VolumeSnapshotView => {
    let written: number[] | undefined;
    const changed = new Map<string, Array<{ index: number; inTarget: boolean }>>();
    return {
      id: snapshot.id,
      writtenBlocks() {
        written ??= blocksOf(snapshot.allocatedExtents());
        return written;
      },
      changedBlocks(base) {
        let list = changed.get(base.id);
        if (list === undefined) {
          const baseSnapshot = views.get(base.id);
          if (baseSnapshot === undefined) throw new Error(`snapshot ${base.id} is not of this volume`);
          list = [];
          for (const extent of disk.changedExtents(baseSnapshot, snapshot, {
            granularityBytes: BLOCK_SIZE,
          })) {
            for (const index of blocksOf([extent])) list.push({ index, inTarget: extent.kind === 'data' });
          }
          changed.set(base.id, list);
        }
        return list;
      },
      read: (offset, length) => readPadded(snapshot, offset, length),
    };
  };
  return {
    sizeBytes: disk.sizeBytes,
    snapshot(id) {
      const snapshot = disk.snapshot(id);
      views.set(id, snapshot);
      return make(snapshot);
    },
    deleteSnapshot(id) {
      views.delete(id);
      disk.deleteSnapshot(id);
    },
    write: (offset, data) => disk.write(offset, data),
    writeZeroes: (offset, length) => disk.writeZeroes(offset, length),
    read: (offset, length) => disk.read(offset, length),
  };
}

function blocksOf(extents: ReadonlyArray<{ offset: number; length: number }>): number[] {
  const out: number[] = [];
  for (const extent of extents) {
    const first = Math.floor(extent.offset / BLOCK_SIZE);
    const last = Math.floor((extent.offset + extent.length - 1) / BLOCK_SIZE);
    for (
      let index = Math.max(first, out.length > 0 ? (out[out.length - 1] as number) + 1 : 0);
      index <= last;
      index++
    ) {
      out.push(index);
    }
  }
  return out;
}

function readPadded(
  view: { sizeBytes: number; read(o: number, l: number): Uint8Array },
  offset: number,
  length: number,
): Uint8Array {
  if (offset + length <= view.sizeBytes) return view.read(offset, length);
  const out = new Uint8Array(length);
  if (offset < view.sizeBytes) out.set(view.read(offset, view.sizeBytes - offset));
  return out;
}
