/** A byte range of a disk. */
export interface ByteRange {
  offset: number;
  length: number;
}

/** Ranges closer than 4 KiB joined, for messages: random data has bytes that happen to stay equal. */
export function mergeNear(ranges: readonly ByteRange[]): ByteRange[] {
  const out: ByteRange[] = [];
  for (const r of ranges) {
    const last = out[out.length - 1];
    if (last !== undefined && r.offset - (last.offset + last.length) < 4096)
      last.length = r.offset + r.length - last.offset;
    else out.push({ ...r });
  }
  return out;
}

/** Appends the byte ranges where `a` and `b` differ, offset by `base`. */
export function differingRanges(a: Uint8Array, b: Uint8Array, base: number, out: ByteRange[]): void {
  let start = -1;
  for (let i = 0; i <= a.length; i++) {
    const differs = i < a.length && a[i] !== b[i];
    if (differs && start === -1) start = i;
    if (!differs && start !== -1) {
      out.push({ offset: base + start, length: i - start });
      start = -1;
    }
  }
}

/** How many blocks of `granularity` bytes the ranges touch. */
export function touchedGranules(ranges: readonly ByteRange[], granularity: number): number {
  const touched = new Set<number>();
  for (const r of ranges) {
    for (
      let g = Math.floor(r.offset / granularity);
      g <= Math.floor((r.offset + r.length - 1) / granularity);
      g++
    )
      touched.add(g);
  }
  return touched.size;
}
