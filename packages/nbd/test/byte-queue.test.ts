import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ByteQueue } from '../src/byte-queue.js';

describe('ByteQueue', () => {
  it('returns exactly the pushed bytes, in order, whatever the chunking of pushes and reads', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 0, maxLength: 64 }), { maxLength: 20 }),
        fc.array(
          fc.tuple(fc.constantFrom('take', 'copy', 'skip', 'ownLast'), fc.integer({ min: 0, max: 80 })),
        ),
        (pushes, reads) => {
          const queue = new ByteQueue();
          const all = Buffer.concat(pushes.map((p) => Buffer.from(p)));
          for (const p of pushes) queue.push(Buffer.from(p));
          let at = 0;
          for (const [how, n] of reads) {
            const count = Math.min(n, queue.length);
            if (how === 'ownLast') {
              queue.ownLast();
              continue;
            }
            if (count >= 4) expect(queue.uint32At(0)).toBe(all.readUInt32BE(at));
            if (how === 'take') {
              expect(queue.take(count).equals(all.subarray(at, at + count))).toBe(true);
            } else if (how === 'copy') {
              const target = Buffer.alloc(count + 2, 0xee);
              expect(queue.copyTo(target, 1, count)).toBe(count);
              expect(target.subarray(1, 1 + count).equals(all.subarray(at, at + count))).toBe(true);
              expect([target[0], target[count + 1]]).toEqual([0xee, 0xee]);
            } else {
              expect(queue.skip(n)).toBe(count);
            }
            at += count;
            expect(queue.length).toBe(all.length - at);
          }
        },
      ),
    );
  });

  it('keeps its bytes after ownLast() when the last source buffer is overwritten', () => {
    const scratch = Buffer.from('abcdefgh');
    const queue = new ByteQueue();
    queue.push(scratch.subarray(2, 6));
    queue.take(1);
    queue.ownLast();
    scratch.fill(0);
    expect(queue.take(3).toString()).toBe('def');
    queue.push(Buffer.from('xy'));
    queue.push(scratch.subarray(0, 3).fill(0x41));
    queue.ownLast();
    scratch.fill(0);
    expect(queue.take(5).toString()).toBe('xyAAA');
  });
});
