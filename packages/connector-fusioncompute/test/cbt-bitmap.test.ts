import {
  appendBitmapExtents,
  type BitmapEncoding,
  decodeBitmap,
  encodeBitmap,
} from '@syncproxy/connector-fusioncompute';
import type { Extent } from '@syncproxy/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

/** The extents of a set of blocks, the obvious way: one block at a time. */
function naiveExtents(blocks: boolean[], blockSize: number, diskSize: number): Extent[] {
  const out: Extent[] = [];
  blocks.forEach((set, i) => {
    if (!set) return;
    const offset = i * blockSize;
    const length = Math.min(blockSize, diskSize - offset);
    const last = out.at(-1);
    if (last && last.offset + last.length === offset) last.length += length;
    else out.push({ offset, length, kind: 'data' });
  });
  return out;
}

/** What getcbt answers for one page: the page's bits, encoded. */
function page(blocks: boolean[], startBlock: number, blockNum: number, encoding: BitmapEncoding) {
  const bitNum = Math.max(0, Math.min(blockNum, blocks.length - startBlock));
  const bits = new Uint8Array(Math.ceil(bitNum / 8));
  for (let b = 0; b < bitNum; b++) if (blocks[startBlock + b]) bits[b >> 3]! |= 1 << (b & 7);
  return { bitNum, bitMap: encodeBitmap(bits, bitNum, encoding) };
}

describe('getcbt bitmaps', () => {
  it('hex: two characters per 8 blocks, low bit first; a 1-4 block tail is one character', () => {
    // Blocks 0, 9 and 10 of 12: bytes 0x01, 0x06 -> "01" + "6" (12 blocks: roundup(12/4) = 3 characters).
    const bits = new Uint8Array([0x01, 0x06]);
    expect(encodeBitmap(bits, 12, 'hex')).toBe('016');
    expect([...decodeBitmap('016', 12, 'hex')]).toEqual([0x01, 0x06]);
    expect([...decodeBitmap('0160', 16, 'hex')]).toEqual([0x01, 0x60]);
  });

  it('a bitmap too short for bitNum, or not hex, is a protocol error', () => {
    expect(() => decodeBitmap('01', 12, 'hex')).toThrow(
      'getcbt answered a bitMap that does not decode: 2 characters for 12 blocks (expected 3 hex characters)',
    );
    expect(() => decodeBitmap('zz', 8, 'hex')).toThrow('does not decode');
  });

  it.each<BitmapEncoding>(['hex', 'base64'])(
    '%s: any bitmap, any page size (a multiple of 8), the same extents',
    (encoding) => {
      fc.assert(
        fc.property(
          fc.array(fc.boolean(), { minLength: 1, maxLength: 700 }),
          fc.integer({ min: 1, max: 40 }).map((n) => n * 8),
          fc.integer({ min: 1, max: 4096 }),
          fc.integer({ min: 0, max: 4095 }),
          (blocks, pageBlocks, blockSize, tailCut) => {
            // The disk may end inside its last block.
            const diskSize = Math.max(1, blocks.length * blockSize - (tailCut % blockSize));
            const out: Extent[] = [];
            for (let start = 0; ; start += pageBlocks) {
              const { bitNum, bitMap } = page(blocks, start, pageBlocks, encoding);
              const bits = decodeBitmap(bitMap, bitNum, encoding);
              appendBitmapExtents(out, bits, {
                startBlock: start,
                bitNum,
                blockSizeBytes: blockSize,
                diskSize,
              });
              if (bitNum < pageBlocks) break;
            }
            expect(out).toEqual(naiveExtents(blocks, blockSize, diskSize));
          },
        ),
        { numRuns: 300 },
      );
    },
  );
});
