// Entries per block: small enough that a splice inside one is a short memmove,
// large enough that the list of blocks stays short (40 blocks at 10,000 entries).
const BLOCK = 256;

/**
 * Values kept in order by `compare` (which must tell every two values apart),
 * in sorted blocks of at most 2 x 256 entries, as Python's sortedcontainers
 * does: finding a place is two binary searches, and an insert or remove moves
 * at most one block's entries, so the cost does not grow with the size of
 * the list the way one big sorted array's would.
 */
export class SortedList<T> {
  readonly #compare: (a: T, b: T) => number;
  #blocks: T[][] = [];
  /** The last value of each block, for the binary search over blocks. */
  #lasts: T[] = [];
  #size = 0;

  constructor(compare: (a: T, b: T) => number) {
    this.#compare = compare;
  }

  get size(): number {
    return this.#size;
  }

  first(): T | undefined {
    return this.#blocks[0]?.[0];
  }

  insert(value: T): void {
    this.#size += 1;
    if (this.#blocks.length === 0) {
      this.#blocks.push([value]);
      this.#lasts.push(value);
      return;
    }
    const b = Math.min(this.#blockFor(value), this.#blocks.length - 1);
    const block = this.#blocks[b] as T[];
    block.splice(lowerBound(block, value, this.#compare), 0, value);
    this.#lasts[b] = block[block.length - 1] as T;
    if (block.length > 2 * BLOCK) {
      const tail = block.splice(BLOCK);
      this.#blocks.splice(b + 1, 0, tail);
      this.#lasts.splice(b, 1, block[block.length - 1] as T, tail[tail.length - 1] as T);
    }
  }

  /** Removes the entry that compares equal to `value`; false when there is none. */
  remove(value: T): boolean {
    const b = this.#blockFor(value);
    const block = this.#blocks[b];
    if (!block) return false;
    const at = lowerBound(block, value, this.#compare);
    const found = block[at];
    if (found === undefined || this.#compare(found, value) !== 0) return false;
    block.splice(at, 1);
    this.#size -= 1;
    if (block.length === 0) {
      this.#blocks.splice(b, 1);
      this.#lasts.splice(b, 1);
    } else {
      this.#lasts[b] = block[block.length - 1] as T;
    }
    return true;
  }

  /** In order; the list must not change while iterating. */
  *[Symbol.iterator](): Iterator<T> {
    for (const block of this.#blocks) yield* block;
  }

  /** The first block whose last value is not below `value` (the block count when none). */
  #blockFor(value: T): number {
    return lowerBound(this.#lasts, value, this.#compare);
  }
}

function lowerBound<T>(items: T[], value: T, compare: (a: T, b: T) => number): number {
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compare(items[mid] as T, value) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
