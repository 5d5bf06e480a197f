import type { BigIntStats } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { toSyncproxyError } from './errors/to-syncproxy-error.js';

let sequence = 0;

export interface WriteFileAtomicOptions {
  /** File mode of the new file (default 0o666 less the umask); state with secrets uses 0o600. */
  mode?: number;
}

/**
 * Replaces `path` with `data` so that a crash at any moment leaves either the
 * old file or the new one, never a torn mix: write a temporary file
 * (`<path>.tmp-<pid>-<n>`, so a later process can sweep those of dead
 * writers), fsync it, rename it over the old one, fsync the directory so the
 * rename lasts. Resolves with the new file's stat (rename keeps inode and
 * mtime), which callers may use as a stamp of what they wrote.
 */
export async function writeFileAtomic(
  path: string,
  data: Uint8Array | string,
  options: WriteFileAtomicOptions = {},
): Promise<BigIntStats> {
  const temporary = `${path}.tmp-${process.pid}-${sequence++}`;
  let stat: BigIntStats;
  try {
    const handle = await open(temporary, 'w', options.mode);
    try {
      await handle.writeFile(data);
      await handle.sync();
      stat = await handle.stat({ bigint: true });
    } finally {
      await handle.close();
    }
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true }).catch(() => {});
    throw toSyncproxyError(error, { operation: `write ${path}` });
  }
  await syncDirectory(dirname(path));
  return stat;
}

/** Makes a rename durable. Some platforms (Windows) cannot fsync a directory; the rename is then as durable as they allow. */
export async function syncDirectory(directory: string): Promise<void> {
  try {
    const handle = await open(directory, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // EISDIR/EPERM/EINVAL where directories cannot be synced.
  }
}
