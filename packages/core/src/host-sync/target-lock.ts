import { open, readFile, rm, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { SyncproxyError } from '../errors/syncproxy-error.js';
import { toSyncproxyError } from '../errors/to-syncproxy-error.js';
import { isProcessAlive } from '../scheduler/file-lock.js';

/** The lock file of a target directory: one writer of its images and state at a time. */
export const TARGET_LOCK_FILE = 'syncproxy.lock';

// A lock file still without a holder after this long was left by a process killed while writing it.
const EMPTY_LOCK_STALE_MS = 2_000;

/** Who holds a target. */
export interface TargetLockHolder {
  pid: number;
  hostname: string;
  /** ISO-8601. */
  since: string;
}

export interface TargetLock {
  readonly holder: TargetLockHolder;
  release(): Promise<void>;
}

/**
 * Takes `<target>/syncproxy.lock`, created exclusively with our PID, host name
 * and start time. A lock held by a live process (or by any process of another
 * host, whose PIDs mean nothing here) is a `conflict` naming the holder; a
 * lock of this host whose process is gone (killed) is taken over.
 */
export async function acquireTargetLock(target: string): Promise<TargetLock> {
  const path = join(target, TARGET_LOCK_FILE);
  const holder: TargetLockHolder = {
    pid: process.pid,
    hostname: hostname(),
    since: new Date().toISOString(),
  };
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const handle = await open(path, 'wx', 0o600);
      try {
        await handle.writeFile(`${JSON.stringify(holder)}\n`);
        await handle.sync();
      } finally {
        await handle.close();
      }
      let released = false;
      return {
        holder,
        release: async () => {
          if (released) return;
          released = true;
          await rm(path, { force: true });
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw toSyncproxyError(error, { operation: `lock ${path}` });
      }
    }
    const current = await readHolder(path);
    if (current === 'gone') continue;
    if (current === 'unreadable' && (await olderThan(path, EMPTY_LOCK_STALE_MS))) {
      // A holder killed between creating the file and writing it.
      await rm(path, { force: true });
      continue;
    }
    if (current !== 'unreadable' && current.hostname === holder.hostname && !isProcessAlive(current.pid)) {
      // Left by a process of this host that no longer runs (killed): nobody writes the target.
      await rm(path, { force: true });
      continue;
    }
    if (current === 'unreadable') {
      throw new SyncproxyError(
        `target ${target} is locked (${path} exists but names no holder; if no sync runs on it, remove the file)`,
        { code: 'conflict', retryable: false, details: { lockPath: path } },
      );
    }
    throw new SyncproxyError(
      `target ${target} is in use by process ${current.pid} on ${current.hostname} since ${current.since} (one sync per target at a time; wait for it or stop it)`,
      { code: 'conflict', retryable: false, details: { lockPath: path, holder: current } },
    );
  }
  throw new SyncproxyError(`cannot take the lock ${path}: it keeps changing hands`, {
    code: 'conflict',
    retryable: true,
  });
}

async function olderThan(path: string, ms: number): Promise<boolean> {
  try {
    return Date.now() - (await stat(path)).mtimeMs > ms;
  } catch {
    return false;
  }
}

async function readHolder(path: string): Promise<TargetLockHolder | 'gone' | 'unreadable'> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'gone';
    throw toSyncproxyError(error, { operation: `read lock ${path}` });
  }
  try {
    const value = JSON.parse(text) as Partial<TargetLockHolder>;
    if (
      Number.isSafeInteger(value.pid) &&
      (value.pid as number) > 0 &&
      typeof value.hostname === 'string' &&
      typeof value.since === 'string'
    ) {
      return value as TargetLockHolder;
    }
  } catch {
    // Not JSON: being written right now, or left half-written by a killed holder.
  }
  return 'unreadable';
}
