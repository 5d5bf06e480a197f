import type { Extent } from '@syncproxy/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type ChunkJob, planChunks } from '../../src/transfer/chunk-plan.js';

async function plan(
  extents: Extent[],
  diskSize: number,
  chunkSizeBytes: number,
  extra = {},
): Promise<ChunkJob[]> {
  const jobs: ChunkJob[] = [];
  async function* source() {
    yield* extents;
  }
  for await (const job of planChunks(source(), { diskSize, chunkSizeBytes, ...extra })) jobs.push(job);
  return jobs;
}

describe('planChunks', () => {
  it('cuts extents along the chunk grid, merges touching ones, and cuts the last chunk at the disk end', async () => {
    const jobs = await plan(
      [
        { offset: 100, length: 50, kind: 'data' },
        { offset: 150, length: 4000, kind: 'data' },
        { offset: 4150, length: 10, kind: 'zero' },
        { offset: 9000, length: 1001, kind: 'data' },
      ],
      10_001,
      4096,
    );
    expect(jobs).toEqual([
      {
        index: 0,
        offset: 0,
        length: 4096,
        pieces: [{ offset: 100, length: 3996, kind: 'data' }],
        dataBytes: 3996,
        covered: false,
      },
      {
        index: 1,
        offset: 4096,
        length: 4096,
        pieces: [
          { offset: 4096, length: 54, kind: 'data' },
          { offset: 4150, length: 10, kind: 'zero' },
        ],
        dataBytes: 54,
        covered: false,
      },
      {
        index: 2,
        offset: 8192,
        length: 1809,
        pieces: [{ offset: 9000, length: 1001, kind: 'data' }],
        dataBytes: 1001,
        covered: false,
      },
    ]);
  });

  it('merges overlapping extents, as data when their kinds differ', async () => {
    const jobs = await plan(
      [
        { offset: 0, length: 100, kind: 'zero' },
        { offset: 50, length: 100, kind: 'data' },
        { offset: 120, length: 10, kind: 'data' },
      ],
      1000,
      1000,
    );
    expect(jobs.map((j) => j.pieces)).toEqual([[{ offset: 0, length: 150, kind: 'data' }]]);
  });

  it('fills gaps with zero pieces when asked, and reads small gaps between data as one piece', async () => {
    const full = await plan([{ offset: 10, length: 10, kind: 'data' }], 30, 16, { fillGaps: true });
    expect(full.map((j) => j.pieces)).toEqual([
      [
        { offset: 0, length: 10, kind: 'zero' },
        { offset: 10, length: 6, kind: 'data' },
      ],
      [
        { offset: 16, length: 4, kind: 'data' },
        { offset: 20, length: 10, kind: 'zero' },
      ],
    ]);
    expect(full.map((j) => j.covered)).toEqual([true, true]);
    const coalesced = await plan(
      [
        { offset: 0, length: 10, kind: 'data' },
        { offset: 15, length: 10, kind: 'data' },
        { offset: 40, length: 10, kind: 'data' },
      ],
      64,
      64,
      { coalesceGapBytes: 5 },
    );
    expect(coalesced[0]!.pieces).toEqual([
      { offset: 0, length: 25, kind: 'data' },
      { offset: 40, length: 10, kind: 'data' },
    ]);
  });

  it('rejects an extent beyond the disk with a protocol error', async () => {
    await expect(plan([{ offset: 90, length: 20, kind: 'data' }], 100, 10)).rejects.toMatchObject({
      code: 'protocol',
      message: 'reader extents: extent [90, 110) ends beyond the disk size 100',
    });
  });

  it('property: pieces tile exactly the union of the extents, each chunk once and in order', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 5000 }),
        fc.integer({ min: 1, max: 700 }),
        fc.array(
          fc.tuple(
            fc.nat(),
            fc.integer({ min: 0, max: 900 }),
            fc.constantFrom('data' as const, 'zero' as const),
          ),
          {
            maxLength: 20,
          },
        ),
        async (diskSize, chunkSizeBytes, raw) => {
          const extents = raw
            .map(([at, length, kind]) => ({ offset: at % diskSize, length, kind }))
            .map((e) => ({ ...e, length: Math.min(e.length, diskSize - e.offset) }))
            .sort((a, b) => a.offset - b.offset);
          const jobs = await plan(extents, diskSize, chunkSizeBytes);
          const expected = new Uint8Array(diskSize);
          for (const e of extents) expected.fill(1, e.offset, e.offset + e.length);
          const actual = new Uint8Array(diskSize);
          let previous = -1;
          for (const job of jobs) {
            expect(job.index).toBeGreaterThan(previous);
            previous = job.index;
            for (const p of job.pieces) {
              expect(p.offset).toBeGreaterThanOrEqual(job.offset);
              expect(p.offset + p.length).toBeLessThanOrEqual(job.offset + job.length);
              for (let i = p.offset; i < p.offset + p.length; i++) actual[i] = actual[i]! + 1;
            }
          }
          expect(Buffer.compare(actual, expected)).toBe(0);
        },
      ),
      { numRuns: 200 },
    );
  });
});
