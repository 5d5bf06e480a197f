/**
 * Values kept in order by `compare`, found by binary search. Insert and remove
 * shift the array behind the position (a memmove: about a microsecond for
 * 10,000 entries), so placement finds its proxy in O(log P) comparisons and
 * never walks every proxy.
 */
export class SortedList<T> {
  readonly #items: T[] = [];
  readonly #compare: (a: T, b: T) => number;

  constructor(compare: (a: T, b: T) => number) {
    this.#compare = compare;
  }

  get size(): number {
    return this.#items.length;
  }

  first(): T | undefined {
    return this.#items[0];
  }

  insert(value: T): void {
    this.#items.splice(this.#lowerBound(value), 0, value);
  }

  /** Removes the entry that compares equal to `value`; false when there is none. */
  remove(value: T): boolean {
    const at = this.#lowerBound(value);
    const found = this.#items[at];
    if (found === undefined || this.#compare(found, value) !== 0) return false;
    this.#items.splice(at, 1);
    return true;
  }

  /** In order; the list must not change while iterating. */
  [Symbol.iterator](): Iterator<T> {
    return this.#items[Symbol.iterator]();
  }

  #lowerBound(value: T): number {
    let lo = 0;
    let hi = this.#items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#compare(this.#items[mid] as T, value) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
