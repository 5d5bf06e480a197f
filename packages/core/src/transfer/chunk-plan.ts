import type { Extent, ExtentKind } from '../contracts/reader.js';
import { SyncproxyError } from '../errors/syncproxy-error.js';

/** A byte range inside one chunk, to copy (`data`) or to make read as zeroes (`zero`). */
export interface ChunkPiece {
  offset: number;
  length: number;
  kind: ExtentKind;
}

/**
 * The unit of work of a transfer: one cell of the chunk grid (`index *
 * chunkSizeBytes`, cut at the disk's end) and the pieces of it the reader
 * named. Reads, hashes, retries, checkpoints and the manifest all count in
 * these cells, so a resumed transfer meets exactly the same cells again.
 */
export interface ChunkJob {
  index: number;
  offset: number;
  length: number;
  /** Sorted, non-overlapping, within the cell. */
  pieces: ChunkPiece[];
  /** Bytes the job reads from the source (the sum of its data pieces). */
  dataBytes: number;
  /** The pieces cover the whole cell, so the cell's hash follows from them alone. */
  covered: boolean;
}

export interface ChunkPlanOptions {
  diskSize: number;
  chunkSizeBytes: number;
  /** Ranges no extent names are planned as zero pieces (a full sync onto a target that may hold old data). */
  fillGaps?: boolean;
  /** Data pieces of one cell separated by at most this many unnamed bytes are read as one (default 0). */
  coalesceGapBytes?: number;
}

function protocolError(message: string): SyncproxyError {
  return new SyncproxyError(`reader extents: ${message}`, { code: 'protocol', retryable: false });
}

/**
 * Checks the reader's extents and makes them strictly sorted and disjoint:
 * touching extents of one kind merge; overlapping ones merge too, as `data`
 * when their kinds differ (reading a range that reads as zeroes is always
 * correct, skipping data never is). With `fillGaps`, the gaps become zero
 * extents. Streams: holds one extent at a time.
 */
export async function* normalizeExtents(
  source: AsyncIterable<Extent>,
  diskSize: number,
  fillGaps = false,
): AsyncGenerator<Extent> {
  let pending: Extent | undefined;
  let cursor = 0;

  function* emit(extent: Extent): Generator<Extent> {
    if (fillGaps && extent.offset > cursor)
      yield { offset: cursor, length: extent.offset - cursor, kind: 'zero' };
    cursor = extent.offset + extent.length;
    yield extent;
  }

  for await (const extent of source) {
    const { offset, length, kind } = extent;
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      throw protocolError(`invalid extent {offset: ${offset}, length: ${length}}`);
    }
    if (kind !== 'data' && kind !== 'zero')
      throw protocolError(`invalid extent kind ${JSON.stringify(kind)}`);
    if (offset + length > diskSize) {
      throw protocolError(`extent [${offset}, ${offset + length}) ends beyond the disk size ${diskSize}`);
    }
    if (length === 0) continue;
    if (pending === undefined) {
      pending = { offset, length, kind };
      continue;
    }
    if (offset < pending.offset) {
      throw protocolError(`extents are not sorted: ${offset} comes after ${pending.offset}`);
    }
    const pendingEnd = pending.offset + pending.length;
    if (offset > pendingEnd || (offset === pendingEnd && kind !== pending.kind)) {
      yield* emit(pending);
      pending = { offset, length, kind };
      continue;
    }
    const end = Math.max(pendingEnd, offset + length);
    const merged: ExtentKind = offset < pendingEnd && kind !== pending.kind ? 'data' : pending.kind;
    pending = { offset: pending.offset, length: end - pending.offset, kind: merged };
  }
  if (pending !== undefined) yield* emit(pending);
  if (fillGaps && cursor < diskSize) yield { offset: cursor, length: diskSize - cursor, kind: 'zero' };
}

/**
 * Cuts the reader's extents along the chunk grid into {@link ChunkJob}s, in
 * increasing cell order, each cell once. Streams: memory holds one cell.
 */
export async function* planChunks(
  extents: AsyncIterable<Extent>,
  options: ChunkPlanOptions,
): AsyncGenerator<ChunkJob> {
  const { diskSize, chunkSizeBytes } = options;
  const gap = options.coalesceGapBytes ?? 0;
  let cell: { index: number; pieces: ChunkPiece[] } | undefined;

  const finish = (done: { index: number; pieces: ChunkPiece[] }): ChunkJob => {
    const offset = done.index * chunkSizeBytes;
    const length = Math.min(chunkSizeBytes, diskSize - offset);
    let covered = 0;
    let dataBytes = 0;
    for (const piece of done.pieces) {
      covered += piece.length;
      if (piece.kind === 'data') dataBytes += piece.length;
    }
    return { index: done.index, offset, length, pieces: done.pieces, dataBytes, covered: covered === length };
  };

  for await (const extent of normalizeExtents(extents, diskSize, options.fillGaps)) {
    let at = extent.offset;
    const end = extent.offset + extent.length;
    while (at < end) {
      const index = Math.floor(at / chunkSizeBytes);
      if (cell !== undefined && cell.index !== index) {
        yield finish(cell);
        cell = undefined;
      }
      cell ??= { index, pieces: [] };
      const pieceEnd = Math.min(end, (index + 1) * chunkSizeBytes, diskSize);
      const last = cell.pieces[cell.pieces.length - 1];
      const lastEnd = last === undefined ? -1 : last.offset + last.length;
      if (
        last !== undefined &&
        last.kind === extent.kind &&
        (lastEnd === at || (extent.kind === 'data' && at - lastEnd <= gap))
      ) {
        last.length = pieceEnd - last.offset;
      } else {
        cell.pieces.push({ offset: at, length: pieceEnd - at, kind: extent.kind });
      }
      at = pieceEnd;
    }
  }
  if (cell !== undefined) yield finish(cell);
}
