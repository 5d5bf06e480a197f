import type { ChangedBlockReader, Extent } from '@syncproxy/core';

/** Every extent of a reader, in order. */
export async function collectExtents(reader: ChangedBlockReader): Promise<Extent[]> {
  const out: Extent[] = [];
  for await (const extent of reader.extents()) out.push({ ...extent });
  return out;
}

/** Applies a reader to a copy of `base` (a full image when empty) the way a sink would: data written, zero extents zeroed. */
export async function applyReader(
  reader: ChangedBlockReader,
  base?: Uint8Array,
  concurrency = 8,
): Promise<Uint8Array> {
  const image = new Uint8Array(reader.diskSize);
  if (base) image.set(base);
  const extents = await collectExtents(reader);
  const pieces: Array<{ offset: number; length: number }> = [];
  for (const e of extents) {
    if (e.kind === 'zero') {
      image.fill(0, e.offset, e.offset + e.length);
      continue;
    }
    for (let o = e.offset; o < e.offset + e.length; o += 4 * 1024 * 1024) {
      pieces.push({ offset: o, length: Math.min(4 * 1024 * 1024, e.offset + e.length - o) });
    }
  }
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < pieces.length) {
        const piece = pieces[next++]!;
        image.set(await reader.read(piece.offset, piece.length), piece.offset);
      }
    }),
  );
  return image;
}

/** Merges adjacent extents of one kind, so extent lists compare by content, not by how they were cut. */
export function coalesce(extents: Extent[]): Extent[] {
  const out: Extent[] = [];
  for (const e of extents) {
    const last = out[out.length - 1];
    if (last && last.kind === e.kind && last.offset + last.length === e.offset) last.length += e.length;
    else out.push({ ...e });
  }
  return out;
}
