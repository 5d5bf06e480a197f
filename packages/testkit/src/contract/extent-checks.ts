import type { Extent } from '@syncproxy/core';

export interface ExtentBounds {
  diskSize: number;
  granularity: number;
}

/**
 * Everything wrong with a reader's extents, one sentence each, in the order
 * the reader yielded them: not sorted, overlapping, out of bounds, empty, not
 * aligned to the reader's granularity, or of an unknown kind.
 */
export function extentProblems(extents: readonly Extent[], bounds: ExtentBounds): string[] {
  const problems: string[] = [];
  const { diskSize, granularity } = bounds;
  let previous: Extent | undefined;
  extents.forEach((extent, i) => {
    const where = `extent #${i} ${describeExtent(extent)}`;
    const { offset, length } = extent;
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length)) {
      problems.push(`${where} has a non-integer offset or length`);
      return;
    }
    if (extent.kind !== 'data' && extent.kind !== 'zero')
      problems.push(`${where} has kind ${JSON.stringify(extent.kind)} (expected data or zero)`);
    if (length <= 0) problems.push(`${where} is empty (length ${length})`);
    if (offset < 0 || offset + length > diskSize)
      problems.push(`${where} is out of bounds: the disk is ${diskSize} bytes`);
    if (offset % granularity !== 0)
      problems.push(`${where} starts at ${offset}, not a multiple of the granularity ${granularity}`);
    const end = offset + length;
    if (end % granularity !== 0 && end !== diskSize) {
      problems.push(
        `${where} ends at ${end}, neither a multiple of the granularity ${granularity} nor the disk end ${diskSize}`,
      );
    }
    if (previous !== undefined) {
      const previousEnd = previous.offset + previous.length;
      if (offset < previous.offset)
        problems.push(
          `${where} is not sorted: it starts before extent #${i - 1} ${describeExtent(previous)}`,
        );
      else if (offset < previousEnd)
        problems.push(`${where} overlaps extent #${i - 1} ${describeExtent(previous)}`);
    }
    previous = extent;
  });
  return problems;
}

/** The parts of `ranges` that no extent covers (both sorted by offset). */
export function uncoveredRanges(
  ranges: ReadonlyArray<{ offset: number; length: number }>,
  extents: readonly Extent[],
): Array<{ offset: number; length: number }> {
  const sorted = [...extents].sort((a, b) => a.offset - b.offset);
  const missing: Array<{ offset: number; length: number }> = [];
  for (const range of ranges) {
    let position = range.offset;
    const end = range.offset + range.length;
    for (const extent of sorted) {
      if (position >= end) break;
      const extentEnd = extent.offset + extent.length;
      if (extentEnd <= position) continue;
      if (extent.offset > position) {
        missing.push({ offset: position, length: Math.min(extent.offset, end) - position });
      }
      position = Math.max(position, extentEnd);
    }
    if (position < end) missing.push({ offset: position, length: end - position });
  }
  return missing;
}

/** Bytes covered by extents of `kind` (both kinds when omitted). */
export function extentBytes(extents: readonly Extent[], kind?: Extent['kind']): number {
  let total = 0;
  for (const extent of extents) if (kind === undefined || extent.kind === kind) total += extent.length;
  return total;
}

export function describeExtent(extent: Pick<Extent, 'offset' | 'length'> & { kind?: string }): string {
  const kind = extent.kind === undefined ? '' : ` ${extent.kind}`;
  return `[${extent.offset}, ${extent.offset + extent.length})${kind}`;
}
