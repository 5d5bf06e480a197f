import { open } from 'node:fs/promises';
import type { BlockSink } from '@syncproxy/core';
import type { NbdClient, NbdExtent } from '../src/index.js';
import { NBD_STATE_ZERO } from '../src/index.js';

const CHUNK_BYTES = 4 * 1024 * 1024;
/** Buffers in flight, reused: the way nbdcopy works (its default is 64 x 256 KiB). */
const IN_FLIGHT = 16;

/** The export's data extents (what a copy must read). */
export async function dataExtents(client: NbdClient): Promise<NbdExtent[]> {
  const out: NbdExtent[] = [];
  for await (const e of client.allocationMap()) if ((e.flags & NBD_STATE_ZERO) === 0) out.push(e);
  return out;
}

/**
 * Copies the data extents with the client alone, into reused buffers: to a
 * new sparse file (holes need no writes) or, without a path, nowhere.
 */
export async function clientCopy(
  client: NbdClient,
  extents: NbdExtent[],
  path: string | undefined,
): Promise<void> {
  const file = path === undefined ? undefined : await open(path, 'w');
  try {
    await file?.truncate(client.size);
    const pieces: Array<[number, number]> = [];
    for (const e of extents) {
      for (let at = e.offset; at < e.offset + e.length; at += CHUNK_BYTES) {
        pieces.push([at, Math.min(CHUNK_BYTES, e.offset + e.length - at)]);
      }
    }
    let next = 0;
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        const buffer = Buffer.allocUnsafe(CHUNK_BYTES);
        while (next < pieces.length) {
          const [offset, length] = pieces[next++]!;
          const view = buffer.subarray(0, length);
          await client.readInto(view, offset);
          if (file) await file.write(view, 0, length, offset);
        }
      }),
    );
  } finally {
    await file?.close();
  }
}

/** A sink that keeps nothing: measures the source side of the engine. */
export class NullSink implements BlockSink {
  async write(): Promise<void> {}
  async writeZeroes(): Promise<void> {}
  async flush(): Promise<void> {}
  async close(): Promise<void> {}
}
