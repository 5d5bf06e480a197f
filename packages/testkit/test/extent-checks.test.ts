import type { Extent } from '@syncproxy/core';
import { extentProblems, uncoveredRanges } from '@syncproxy/testkit';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

/** Sorted, non-overlapping, aligned extents of a disk of `blocks` blocks of `granularity` (last one short by `tail`). */
const diskWithExtents = fc
  .record({
    granularity: fc.constantFrom(512, 4096, 65536),
    blocks: fc.integer({ min: 1, max: 200 }),
    tail: fc.integer({ min: 0, max: 511 }),
  })
  .chain(({ granularity, blocks, tail }) =>
    fc
      .array(
        fc.record({
          gap: fc.integer({ min: 0, max: 5 }),
          length: fc.integer({ min: 1, max: 6 }),
          zero: fc.boolean(),
        }),
        {
          maxLength: 30,
        },
      )
      .map((runs) => {
        const diskSize = blocks * granularity - tail;
        const extents: Extent[] = [];
        let block = 0;
        for (const run of runs) {
          block += run.gap;
          if (block >= blocks) break;
          const end = Math.min(block + run.length, blocks);
          extents.push({
            offset: block * granularity,
            length: Math.min(end * granularity, diskSize) - block * granularity,
            kind: run.zero ? 'zero' : 'data',
          });
          block = end;
        }
        return { diskSize, granularity, extents: extents.filter((e) => e.length > 0) };
      }),
  );

describe('extentProblems', () => {
  it('property: well-formed extents have no problem', () => {
    fc.assert(
      fc.property(diskWithExtents, ({ diskSize, granularity, extents }) => {
        expect(extentProblems(extents, { diskSize, granularity })).toEqual([]);
      }),
    );
  });

  it('property: moving an extent one block back into its predecessor is reported as an overlap', () => {
    fc.assert(
      fc.property(
        diskWithExtents.filter(({ extents }) => extents.length >= 2),
        ({ diskSize, granularity, extents }) => {
          const broken = extents.map((e) => ({ ...e }));
          const second = broken[1]!;
          const firstEnd = broken[0]!.offset + broken[0]!.length;
          const end = second.offset + second.length;
          second.offset = firstEnd - granularity;
          second.length = end - second.offset;
          expect(extentProblems(broken, { diskSize, granularity })).toContain(
            `extent #1 [${second.offset}, ${end}) ${second.kind} overlaps extent #0 [${broken[0]!.offset}, ${firstEnd}) ${broken[0]!.kind}`,
          );
        },
      ),
    );
  });

  it('names unsorted, out-of-bounds, empty and unaligned extents', () => {
    const problems = extentProblems(
      [
        { offset: 8192, length: 4096, kind: 'data' },
        { offset: 0, length: 4096, kind: 'data' },
        { offset: 12288, length: 0, kind: 'zero' },
        { offset: 16384, length: 100, kind: 'data' },
        { offset: 20480, length: 8192, kind: 'data' },
      ],
      { diskSize: 24576, granularity: 4096 },
    );
    expect(problems).toEqual([
      'extent #1 [0, 4096) data is not sorted: it starts before extent #0 [8192, 12288) data',
      'extent #2 [12288, 12288) zero is empty (length 0)',
      'extent #3 [16384, 16484) data ends at 16484, neither a multiple of the granularity 4096 nor the disk end 24576',
      'extent #4 [20480, 28672) data is out of bounds: the disk is 24576 bytes',
    ]);
  });
});

describe('uncoveredRanges', () => {
  it('property: equals a byte-by-byte model of coverage', () => {
    const range = fc.record({
      offset: fc.integer({ min: 0, max: 2000 }),
      length: fc.integer({ min: 1, max: 300 }),
    });
    fc.assert(
      fc.property(fc.array(range, { maxLength: 8 }), fc.array(range, { maxLength: 8 }), (wanted, given) => {
        const ranges = [...wanted].sort((a, b) => a.offset - b.offset);
        const extents: Extent[] = given.map((g) => ({ ...g, kind: 'data' }));
        const covered = new Set<number>();
        for (const e of extents) for (let i = e.offset; i < e.offset + e.length; i++) covered.add(i);
        const expected = new Set<number>();
        for (const r of ranges)
          for (let i = r.offset; i < r.offset + r.length; i++) if (!covered.has(i)) expected.add(i);
        const got = new Set<number>();
        for (const m of uncoveredRanges(ranges, extents))
          for (let i = m.offset; i < m.offset + m.length; i++) got.add(i);
        expect([...got].sort((a, b) => a - b)).toEqual([...expected].sort((a, b) => a - b));
      }),
    );
  });
});
