import type { BigIntStats } from 'node:fs';
import { open, readdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
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
  await removeStaleTemporaries(path);
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

/** Paths whose leftovers this process has already swept: once per path is enough. */
const swept = new Set<string>();

/**
 * Deletes the `<path>.tmp-<pid>-<n>` files that writers killed mid-write
 * (SIGKILL, power loss) left beside `path`: those whose pid no longer runs.
 * A live pid's file is never touched, it may be mid-write. Runs once per path
 * and process, on its first atomic write.
 */
export async function removeStaleTemporaries(path: string): Promise<void> {
  if (swept.has(path)) return;
  swept.add(path);
  const prefix = `${basename(path)}.tmp-`;
  let names: string[];
  try {
    names = await readdir(dirname(path));
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const match = /^(\d+)-\d+$/.exec(name.slice(prefix.length));
    if (match === null) continue;
    const pid = Number(match[1]);
    if (pid === process.pid || isRunning(pid)) continue;
    await rm(join(dirname(path), name), { force: true }).catch(() => {});
  }
}

/** True when a process with this pid exists (EPERM: it exists, owned by someone else). */
function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
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
