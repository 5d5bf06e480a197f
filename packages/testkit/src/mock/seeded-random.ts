/**
 * A small, fast, seeded generator (mulberry32): fixtures must be the same
 * bytes on every machine and every run, so nothing here touches Math.random.
 */
export class SeededRandom {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** A uniformly distributed 32-bit unsigned integer. */
  nextUint32(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** An integer in `[min, max)`. */
  int(min: number, max: number): number {
    if (!(max > min)) throw new RangeError(`int(${min}, ${max}): max must be above min`);
    const span = max - min;
    // Two draws give 53 bits, enough for offsets on multi-TiB disks.
    const r = (this.nextUint32() * 2 ** 21 + (this.nextUint32() >>> 11)) / 2 ** 53;
    return min + Math.floor(r * span);
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.nextUint32() / 2 ** 32 < p;
  }

  /** Fills `target` with pseudo-random bytes and returns it. */
  fill(target: Uint8Array): Uint8Array {
    const whole = target.length - (target.length % 4);
    const view = new DataView(target.buffer, target.byteOffset, target.byteLength);
    for (let i = 0; i < whole; i += 4) view.setUint32(i, this.nextUint32(), true);
    if (whole < target.length) {
      const last = this.nextUint32();
      for (let i = whole; i < target.length; i++) target[i] = (last >>> ((i - whole) * 8)) & 0xff;
    }
    return target;
  }
}

/** `length` pseudo-random bytes, the same for the same seed everywhere. */
export function seededBytes(seed: number, length: number): Uint8Array {
  return new SeededRandom(seed).fill(new Uint8Array(length));
}
