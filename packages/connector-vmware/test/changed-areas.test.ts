import type { NbdReader } from '@syncproxy/nbd';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { DiskChangeInfo } from '../src/client.js';
import { changedAreaExtents, SECTOR_BYTES, VmwareDiskReader } from '../src/reader.js';

/** Sorted, non-overlapping sector-aligned areas inside `capacity`, some touching. */
const disk = fc
  .record({
    capacitySectors: fc.integer({ min: 1, max: 4096 }),
    cuts: fc.array(fc.integer({ min: 0, max: 4096 }), { maxLength: 40 }),
    windowSectors: fc.integer({ min: 1, max: 1024 }),
  })
  .map(({ capacitySectors, cuts, windowSectors }) => {
    const points = [...new Set(cuts.map((c) => c % (capacitySectors + 1)))].sort((a, b) => a - b);
    const areas: Array<{ start: number; length: number }> = [];
    for (let i = 0; i + 1 < points.length; i += 2) {
      areas.push({ start: points[i]! * SECTOR_BYTES, length: (points[i + 1]! - points[i]!) * SECTOR_BYTES });
    }
    return {
      capacity: capacitySectors * SECTOR_BYTES,
      areas: areas.filter((a) => a.length > 0),
      window: windowSectors * SECTOR_BYTES,
    };
  });

/** What vSphere answers: the areas of one window, clipped to it (govmomi's QueryChangedDiskAreas). */
function fakeQuery(areas: Array<{ start: number; length: number }>, window: number, calls: number[]) {
  return async (startOffset: number): Promise<DiskChangeInfo> => {
    calls.push(startOffset);
    const end = startOffset + window;
    const clipped = areas
      .map((a) => ({ start: Math.max(a.start, startOffset), end: Math.min(a.start + a.length, end) }))
      .filter((a) => a.start < a.end)
      .map((a) => ({ start: a.start, length: a.end - a.start }));
    return { startOffset, length: window, areas: clipped };
  };
}

function mergeTouching(areas: Array<{ start: number; length: number }>) {
  const out: Array<{ offset: number; length: number; kind: 'data' }> = [];
  for (const a of areas) {
    const last = out.at(-1);
    if (last && last.offset + last.length === a.start) last.length += a.length;
    else out.push({ offset: a.start, length: a.length, kind: 'data' });
  }
  return out;
}

describe('changedAreaExtents', () => {
  it('property: paging through windows of any size yields exactly the changed areas, merged where they touch', async () => {
    await fc.assert(
      fc.asyncProperty(disk, async ({ capacity, areas, window }) => {
        const calls: number[] = [];
        const extents = [];
        for await (const e of changedAreaExtents(fakeQuery(areas, window, calls), capacity)) extents.push(e);
        expect(extents).toEqual(mergeTouching(areas));
        expect(calls).toEqual(Array.from({ length: Math.ceil(capacity / window) }, (_, i) => i * window));
      }),
      { numRuns: 300 },
    );
  });

  it('refuses a reply whose window does not start where asked, with a typed protocol error', async () => {
    const query = async (): Promise<DiskChangeInfo> => ({ startOffset: 512, length: 512, areas: [] });
    const run = async () => {
      for await (const _ of changedAreaExtents(query, 4096)) {
        // drain
      }
    };
    await expect(run()).rejects.toMatchObject({
      code: 'protocol',
      message:
        'QueryChangedDiskAreas at offset 0 answered the window [512, 1024): it must start at 0 and not be empty',
    });
  });

  it('refuses areas out of order or outside their window', async () => {
    const query = async (): Promise<DiskChangeInfo> => ({
      startOffset: 0,
      length: 1024,
      areas: [
        { start: 512, length: 512 },
        { start: 0, length: 512 },
      ],
    });
    const run = async () => {
      for await (const _ of changedAreaExtents(query, 1024)) {
        // drain
      }
    };
    await expect(run()).rejects.toMatchObject({
      code: 'protocol',
      message: 'QueryChangedDiskAreas window [0, 1024) has area [0, 512) out of order or outside it',
    });
  });
});

describe('VmwareDiskReader', () => {
  it('declares a full read without a base and an incremental with one (hints.incremental)', () => {
    // The NBD reader, given CBT's extents, says incremental whatever the changeId; its other hints are kept.
    const nbd = {
      diskSize: 512,
      hints: { readBytesInFlight: 4096, incremental: true },
    } as unknown as NbdReader;
    const endpoint = { uri: 'nbd+unix:///?socket=/none', close: async () => {} };
    const open = (incremental: boolean) =>
      new VmwareDiskReader({ nbd, endpoint, capacityBytes: 512, incremental });
    expect(open(false).hints).toEqual({ readBytesInFlight: 4096, incremental: false });
    expect(open(true).hints?.incremental).toBe(true);
  });
});
