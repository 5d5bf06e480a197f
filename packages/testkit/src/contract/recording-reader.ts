import type { ChangedBlockReader, Extent } from '@syncproxy/core';
import { extentProblems } from './extent-checks.js';

/**
 * A pass-through reader (an nbdkit-style filter) that keeps a copy of every
 * extent as the engine consumes it, so the suite checks exactly what the
 * engine was given, before the engine merges or splits anything. The engine
 * may list extents more than once (to count totals first): each call is one
 * pass, and every pass must yield the same extents.
 */
export class RecordingReader implements ChangedBlockReader {
  readonly passes: Extent[][] = [];

  constructor(private readonly inner: ChangedBlockReader) {}

  /** The extents of the first pass. */
  get extentsSeen(): Extent[] {
    return this.passes[0] ?? [];
  }

  get diskSize(): number {
    return this.inner.diskSize;
  }

  get granularity(): number {
    return this.inner.granularity;
  }

  get warnings() {
    return this.inner.warnings;
  }

  /** Forwarded: the engine plans with them (chunk grid, whether listing reads the disk). */
  get hints() {
    return this.inner.hints;
  }

  /** Forwarded when the inner reader has it. */
  get readInto(): ChangedBlockReader['readInto'] {
    const inner = this.inner;
    return typeof inner.readInto === 'function' ? inner.readInto.bind(inner) : undefined;
  }

  async *extents(options?: Parameters<ChangedBlockReader['extents']>[0]): AsyncGenerator<Extent> {
    const pass: Extent[] = [];
    this.passes.push(pass);
    for await (const extent of this.inner.extents(options)) {
      pass.push({ offset: extent.offset, length: extent.length, kind: extent.kind });
      yield extent;
    }
  }

  read(
    offset: number,
    length: number,
    options?: Parameters<ChangedBlockReader['read']>[2],
  ): Promise<Uint8Array> {
    return this.inner.read(offset, length, options);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/** Problems of the first pass, and any later pass that yielded something else. */
export function recordedProblems(reader: RecordingReader): string[] {
  if (reader.passes.length === 0) return ['extents() was never listed by the engine'];
  const problems = extentProblems(reader.extentsSeen, reader);
  const first = JSON.stringify(reader.extentsSeen);
  reader.passes.slice(1).forEach((pass, i) => {
    if (JSON.stringify(pass) !== first) {
      problems.push(
        `extents() yielded ${pass.length} extents on call ${i + 2} but ${reader.extentsSeen.length} on call 1: it must list the same extents every time`,
      );
    }
  });
  return problems;
}
