import { type ExportedObject, ExportReader, type ObsBucket } from '@syncproxy/connector-huaweicloud';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

/** A bucket whose objects are slices of `disk`, answering ranged reads like OBS. */
function fakeBucket(disk: Uint8Array, objects: ExportedObject[]) {
  const byKey = new Map(objects.map((o) => [o.key, o]));
  let gets = 0;
  const bucket = {
    async readInto(key: string, offset: number, target: Uint8Array) {
      const object = byKey.get(key)!;
      if (offset < 0 || offset + target.length > object.length) throw new Error(`range outside ${key}`);
      gets++;
      target.set(disk.subarray(object.offset + offset, object.offset + offset + target.length));
    },
  };
  return { bucket: bucket as unknown as ObsBucket, gets: () => gets };
}

describe('ExportReader', () => {
  it('any read equals the disk: object bytes where exported, zeroes in the gaps', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 4096 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 64 }), fc.integer({ min: 1, max: 64 })), {
          maxLength: 12,
        }),
        fc.array(fc.tuple(fc.nat(), fc.nat()), { minLength: 1, maxLength: 8 }),
        async (diskSize, pieces, reads) => {
          // Objects laid out in order with gaps; the disk holds data only inside them.
          const objects: ExportedObject[] = [];
          let at = 0;
          for (const [gap, length] of pieces) {
            const offset = at + gap;
            if (offset + length > diskSize) break;
            objects.push({ key: `o/${offset}`, volumeId: 'v', offset, length });
            at = offset + length;
          }
          const disk = new Uint8Array(diskSize);
          for (const o of objects)
            for (let i = 0; i < o.length; i++) disk[o.offset + i] = ((o.offset + i) % 251) + 1;
          const { bucket } = fakeBucket(disk, objects);
          const reader = new ExportReader({ bucket, diskSize, objects });
          const extents = [];
          for await (const e of reader.extents()) extents.push(e);
          const covered = extents.reduce((n, e) => n + e.length, 0);
          expect(covered).toBe(objects.reduce((n, o) => n + o.length, 0));
          for (const [a, b] of reads) {
            const offset = a % diskSize;
            const length = b % (diskSize - offset + 1);
            const target = new Uint8Array(length).fill(0xee);
            await reader.readInto(target, offset);
            expect(Buffer.compare(target, disk.subarray(offset, offset + length))).toBe(0);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('declares a full read, having no base (hints.incremental)', () => {
    const { bucket } = fakeBucket(new Uint8Array(10), []);
    expect(new ExportReader({ bucket, diskSize: 10, objects: [] }).hints?.incremental).toBe(false);
  });

  it('a read that leaves the disk is refused with a typed error', async () => {
    const { bucket } = fakeBucket(new Uint8Array(10), []);
    const reader = new ExportReader({ bucket, diskSize: 10, objects: [] });
    await expect(reader.read(8, 4)).rejects.toMatchObject({ code: 'internal', retryable: false });
  });

  it('overlapping objects are a protocol error', () => {
    const { bucket } = fakeBucket(new Uint8Array(10), []);
    const objects = [
      { key: 'a', volumeId: 'v', offset: 0, length: 6 },
      { key: 'b', volumeId: 'v', offset: 5, length: 2 },
    ];
    expect(() => new ExportReader({ bucket, diskSize: 10, objects })).toThrow(/overlaps another/);
  });

  it('close runs its cleanup once', async () => {
    const { bucket } = fakeBucket(new Uint8Array(10), []);
    let cleanups = 0;
    const reader = new ExportReader({
      bucket,
      diskSize: 10,
      objects: [],
      onClose: async () => {
        cleanups++;
      },
    });
    await Promise.all([reader.close(), reader.close()]);
    expect(cleanups).toBe(1);
  });
});
