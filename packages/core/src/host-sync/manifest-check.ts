import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { toSyncproxyError } from '../errors/to-syncproxy-error.js';
import type { DiskManifest } from '../transfer/manifest.js';
import { isAllZero } from '../transfer/zero-detection.js';

/**
 * Re-hashes the image at `path` chunk by chunk against `manifest` (the
 * `verifyTarget: 'manifest'` check before an incremental). Returns the
 * number of chunks that differ or that the manifest does not know; reads
 * the whole image once, or with `only`, just the chunks it selects (a
 * resume checks the chunks its checkpoint says are done); `onProgress` gets
 * the bytes hashed so far and in all, before the first chunk and after each.
 */
export async function countManifestMismatches(
  path: string,
  manifest: DiskManifest,
  signal?: AbortSignal,
  onProgress?: (bytesDone: number, bytesTotal: number) => void,
  only?: (index: number) => boolean,
): Promise<number> {
  let mismatches = 0;
  const buffer = new Uint8Array(manifest.chunkSizeBytes);
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    throw toSyncproxyError(error, { operation: `open ${path}` });
  }
  try {
    if ((await handle.stat()).size !== manifest.diskSize) return manifest.chunkCount;
    let bytesDone = 0;
    onProgress?.(bytesDone, manifest.diskSize);
    for (let index = 0; index < manifest.chunkCount; index++) {
      signal?.throwIfAborted();
      if (only !== undefined && !only(index)) continue;
      const length = manifest.chunkLength(index);
      if (index > 0) onProgress?.(bytesDone, manifest.diskSize);
      bytesDone += length;
      const view = buffer.subarray(0, length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await handle.read(
          view,
          done,
          length - done,
          index * manifest.chunkSizeBytes + done,
        );
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      if (done < length) view.fill(0, done);
      const expected = manifest.entry(index);
      if (expected.state === 'unknown') {
        mismatches++;
        continue;
      }
      const actual = isAllZero(view) ? 'zero' : createHash('sha256').update(view).digest();
      if (!manifest.matches(index, actual)) mismatches++;
    }
    onProgress?.(bytesDone, manifest.diskSize);
  } finally {
    await handle.close();
  }
  return mismatches;
}
