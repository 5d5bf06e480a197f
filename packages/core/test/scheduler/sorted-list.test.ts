import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SortedList } from '../../src/scheduler/sorted-list.js';

describe('sorted list', () => {
  it('holds what a sorted array holds after any inserts and removes, across block splits and merges', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 3_000 })), {
          minLength: 1,
          maxLength: 4_000,
        }),
        (ops) => {
          const list = new SortedList<number>((a, b) => a - b);
          const model = new Set<number>();
          for (const [insert, value] of ops) {
            if (insert && !model.has(value)) {
              list.insert(value);
              model.add(value);
            } else if (!insert) {
              expect(list.remove(value)).toBe(model.delete(value));
            }
          }
          const sorted = [...model].sort((a, b) => a - b);
          expect([...list]).toEqual(sorted);
          expect(list.size).toBe(sorted.length);
          expect(list.first()).toBe(sorted[0]);
        },
      ),
      { numRuns: 60 },
    );
  });
});
