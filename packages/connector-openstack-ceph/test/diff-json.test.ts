import { parseRbdDiffJson, type RbdDiffEntry } from '@syncproxy/connector-openstack-ceph';
import { SyncproxyError } from '@syncproxy/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { chunked } from './fixtures/export-diff-stream.js';

async function parse(text: string, cuts: number[] = []): Promise<RbdDiffEntry[]> {
  const out: RbdDiffEntry[] = [];
  for await (const e of parseRbdDiffJson(chunked(Buffer.from(text), cuts))) out.push(e);
  return out;
}

const entryArb = fc.record({
  offset: fc.nat({ max: 2 ** 40 }),
  length: fc.integer({ min: 1, max: 2 ** 30 }),
  exists: fc.boolean(),
});

describe('parseRbdDiffJson', () => {
  it('parses the bare array rbd diff --format json prints, exists as a string', async () => {
    const text =
      '[{"offset":12582912,"length":741376,"exists":"true"},{"offset":20971520,"length":4194304,"exists":"false"}]\n';
    expect(await parse(text)).toEqual([
      { offset: 12582912, length: 741376, exists: true },
      { offset: 20971520, length: 4194304, exists: false },
    ]);
  });

  it('parses an empty diff', async () => {
    expect(await parse('[]\n')).toEqual([]);
  });

  it('yields the entries printed, however the output is chunked and spaced (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(entryArb, { maxLength: 30 }),
        fc.array(fc.nat({ max: 3000 })),
        fc.boolean(),
        async (entries, cuts, pretty) => {
          const json = entries.map((e) => ({ ...e, exists: e.exists ? 'true' : 'false' }));
          const text = pretty ? JSON.stringify(json, null, 4) : JSON.stringify(json);
          expect(await parse(text, cuts)).toEqual(entries);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('fails with a protocol error, never a hang or crash, on any truncation or corruption (fuzz)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(entryArb, { minLength: 1, maxLength: 10 }),
        fc.nat(),
        fc.array(
          fc.record({ at: fc.nat(), ch: fc.constantFrom('"', '{', '}', '[', ']', ',', ':', 'x', '1', ' ') }),
        ),
        async (entries, cutAt, flips) => {
          const chars = [...JSON.stringify(entries.map((e) => ({ ...e, exists: String(e.exists) })))];
          for (const f of flips) chars[f.at % chars.length] = f.ch;
          const text = chars.join('').slice(0, flips.length === 0 ? cutAt % chars.length : undefined);
          try {
            await parse(text);
          } catch (error) {
            expect(SyncproxyError.hasCode(error, 'protocol')).toBe(true);
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it.each([
    ['{"extents":[]}', 'rbd diff --format json: expected [ at the start, got {'],
    ['[{"offset":1,"length":2,"exists":"maybe"}]', 'rbd diff --format json: entry at 1 has exists="maybe"'],
    [
      '[{"offset":-1,"length":2,"exists":"true"}]',
      'rbd diff --format json: entry lacks a valid offset/length: {"offset":-1,"length":2}',
    ],
    ['[{"offset":1,"length":2,"exists":"true"}', 'rbd diff --format json: output ended before the closing ]'],
    ['[] x', 'rbd diff --format json: unexpected "x"'],
    ['[]]', 'rbd diff --format json: unexpected ] after the closing ]'],
  ])('rejects %s with a protocol error', async (text, message) => {
    await expect(parse(text)).rejects.toMatchObject({ code: 'protocol', message });
  });
});
