import { open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { toSyncproxyError } from '../errors/to-syncproxy-error.js';

let sequence = 0;

/**
 * Replaces `path` with `data` so that a crash at any moment leaves either the
 * old file or the new one, never a torn mix: write a temporary file, fsync
 * it, rename it over the old one, fsync the directory so the rename lasts.
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const temporary = `${path}.${process.pid}.${sequence++}.tmp`;
  try {
    const handle = await open(temporary, 'w');
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true }).catch(() => {});
    throw toSyncproxyError(error, { operation: `write ${path}` });
  }
  await syncDirectory(dirname(path));
}

async function syncDirectory(directory: string): Promise<void> {
  try {
    const handle = await open(directory, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // Some platforms (Windows) cannot fsync a directory; the rename is still atomic there.
  }
}
