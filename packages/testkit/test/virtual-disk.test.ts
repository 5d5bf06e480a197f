import { createHash } from 'node:crypto';
import { VirtualDisk } from '@syncproxy/testkit/mock';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

const KIB = 1024;

describe('VirtualDisk', () => {
  it('reads unwritten ranges as zeroes and written bytes exactly, across block boundaries', () => {
    const disk = new VirtualDisk({ sizeBytes: 256 * KIB, blockSizeBytes: 64 * KIB });
    disk.write(64 * KIB - 2, Uint8Array.of(1, 2, 3, 4));
    expect(disk.read(64 * KIB - 4, 8)).toEqual(Uint8Array.of(0, 0, 1, 2, 3, 4, 0, 0));
    expect(disk.allocatedExtents()).toEqual([{ offset: 0, length: 128 * KIB, kind: 'data' }]);
  });

  it('holds memory for written blocks only: 1 TiB virtual with 2 blocks written holds 2 blocks', () => {
    const disk = new VirtualDisk({ sizeBytes: 2 ** 40, blockSizeBytes: 64 * KIB });
    disk.write(2 ** 40 - 1, Uint8Array.of(7));
    disk.write(2 ** 39, Uint8Array.of(9));
    expect(disk.allocatedBytes).toBe(128 * KIB);
    expect(disk.read(2 ** 40 - 1, 1)).toEqual(Uint8Array.of(7));
    expect(disk.allocatedExtents()).toEqual([
      { offset: 2 ** 39, length: 64 * KIB, kind: 'data' },
      { offset: 2 ** 40 - 64 * KIB, length: 64 * KIB, kind: 'data' },
    ]);
  });

  it('clips the last block to the disk size when the size is not a multiple of the block size', () => {
    const disk = new VirtualDisk({ sizeBytes: 100 * KIB + 3, blockSizeBytes: 64 * KIB });
    disk.write(100 * KIB + 2, Uint8Array.of(5));
    expect(disk.allocatedExtents()).toEqual([{ offset: 64 * KIB, length: 36 * KIB + 3, kind: 'data' }]);
    expect(() => disk.write(100 * KIB + 3, Uint8Array.of(1))).toThrow(
      'write of [102403, 102404) is beyond the disk size 102403',
    );
  });

  it('snapshots stay frozen while the live disk changes (copy on write)', () => {
    const disk = new VirtualDisk({ sizeBytes: 128 * KIB, blockSizeBytes: 64 * KIB });
    disk.write(10, Uint8Array.of(1, 1));
    const s1 = disk.snapshot('s1');
    disk.write(11, Uint8Array.of(2));
    expect(s1.read(10, 2)).toEqual(Uint8Array.of(1, 1));
    expect(disk.read(10, 2)).toEqual(Uint8Array.of(1, 2));
    expect(disk.snapshots.map((s) => s.id)).toEqual(['s1']);
    expect(disk.deleteSnapshot('s1')).toBe(true);
    expect(disk.snapshots).toEqual([]);
  });

  it('reports exact changed blocks between snapshots: data where written, zero where discarded', () => {
    const disk = new VirtualDisk({ sizeBytes: 512 * KIB, blockSizeBytes: 64 * KIB });
    disk.write(0, new Uint8Array(64 * KIB).fill(1));
    disk.write(128 * KIB, new Uint8Array(64 * KIB).fill(1));
    const s1 = disk.snapshot();
    disk.write(5, Uint8Array.of(9));
    disk.writeZeroes(128 * KIB, 64 * KIB);
    disk.write(256 * KIB + 1, Uint8Array.of(3));
    const s2 = disk.snapshot();
    expect(disk.changedExtents(s1, s2)).toEqual([
      { offset: 0, length: 64 * KIB, kind: 'data' },
      { offset: 128 * KIB, length: 64 * KIB, kind: 'zero' },
      { offset: 256 * KIB, length: 64 * KIB, kind: 'data' },
    ]);
    expect(disk.changedExtents(s2, s2)).toEqual([]);
    expect(disk.changedExtents(s1, s2, { granularityBytes: 256 * KIB })).toEqual([
      { offset: 0, length: 512 * KIB, kind: 'data' },
    ]);
  });

  it('property: reads equal a dense model after any writes and zeroes, and every changed byte is in a changed extent', () => {
    const size = 300 * KIB + 17;
    const op = fc.record({
      zero: fc.boolean(),
      offset: fc.integer({ min: 0, max: size - 1 }),
      length: fc.integer({ min: 1, max: 150 * KIB }),
      byte: fc.integer({ min: 1, max: 255 }),
    });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 12 }), fc.array(op, { maxLength: 12 }), (before, after) => {
        const disk = new VirtualDisk({ sizeBytes: size, blockSizeBytes: 16 * KIB });
        const model = new Uint8Array(size);
        const apply = (ops: typeof before) => {
          for (const o of ops) {
            const length = Math.min(o.length, size - o.offset);
            if (o.zero) {
              disk.writeZeroes(o.offset, length);
              model.fill(0, o.offset, o.offset + length);
            } else {
              disk.write(o.offset, new Uint8Array(length).fill(o.byte));
              model.fill(o.byte, o.offset, o.offset + length);
            }
          }
        };
        apply(before);
        const base = disk.snapshot();
        const modelBase = model.slice();
        apply(after);
        expect(sha(disk.read(0, size))).toBe(sha(model));
        expect(sha(base.read(0, size))).toBe(sha(modelBase));
        const changed = disk.changedExtents(base);
        for (let i = 0; i < size; i++) {
          if (model[i] !== modelBase[i]) {
            const covered = changed.some((e) => e.offset <= i && i < e.offset + e.length);
            if (!covered) throw new Error(`changed byte ${i} is not in a changed extent`);
          }
        }
        for (const e of changed) {
          if (e.kind === 'zero')
            expect(model.subarray(e.offset, e.offset + e.length).every((b) => b === 0)).toBe(true);
        }
      }),
      { numRuns: 60 },
    );
  });
});

function sha(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
