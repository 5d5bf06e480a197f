import { open } from 'node:fs/promises';
import type { BlockSink } from '@syncproxy/core';
import type { NbdClient, NbdExtent } from '../src/index.js';
import { NBD_STATE_ZERO } from '../src/index.js';

/**
 * Buffers in flight, reused, as nbdcopy does. 8 x 1 MiB, measured: with the
 * same reads spread over 16 x 4 MiB buffers the client ran at 0.77x nbdcopy
 * instead of 1.03x (bench/run.ts, 2 cores, 32 MiB L3). Past the cache, every
 * byte the kernel copies into a buffer, and every byte nbdkit generates while
 * it waits to send, goes through DRAM; nbdkit itself then burned ~40% more CPU.
 */
const CHUNK_BYTES = 1024 * 1024;
const IN_FLIGHT = 8;

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
    // Durable at the end, as nbdcopy --flush and the engine's FileSink make their images.
    await file?.datasync();
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
