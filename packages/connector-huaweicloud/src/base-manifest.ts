import { createHash } from 'node:crypto';
import { type ChangedBlockReader, DiskManifest, isAllZero, SyncproxyError } from '@syncproxy/core';

/**
 * The manifest of a base snapshot, computed by reading it: what a hash diff
 * compares with when the caller has no manifest of the target (a direct
 * `openReader` with a `base`, not through `syncHost`). Chunks outside the
 * reader's extents read as zeroes.
 */
export async function hashManifestOf(
  reader: ChangedBlockReader,
  chunkSizeBytes: number,
  signal?: AbortSignal,
): Promise<DiskManifest> {
  const manifest = DiskManifest.create({ diskSize: reader.diskSize, chunkSizeBytes, fill: 'zero' });
  const touched = new Set<number>();
  for await (const extent of reader.extents(signal ? { signal } : {})) {
    if (extent.kind !== 'data') continue;
    const first = Math.floor(extent.offset / chunkSizeBytes);
    const last = Math.floor((extent.offset + extent.length - 1) / chunkSizeBytes);
    for (let index = first; index <= last; index++) touched.add(index);
  }
  const buffer = new Uint8Array(chunkSizeBytes);
  for (const index of [...touched].sort((a, b) => a - b)) {
    const length = manifest.chunkLength(index);
    const view = buffer.subarray(0, length);
    if (reader.readInto) await reader.readInto(view, index * chunkSizeBytes, signal ? { signal } : {});
    else {
      const bytes = await reader.read(index * chunkSizeBytes, length, signal ? { signal } : {});
      if (bytes.length !== length) {
        throw new SyncproxyError(`base read returned ${bytes.length} of ${length} bytes`, {
          code: 'protocol',
          retryable: false,
        });
      }
      view.set(bytes);
    }
    manifest.set(index, isAllZero(view) ? 'zero' : createHash('sha256').update(view).digest());
  }
  manifest.complete = true;
  manifest.pendingFrom = manifest.chunkCount;
  return manifest;
}
