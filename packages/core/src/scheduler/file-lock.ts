import { open, readFile, rm, stat } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { SyncproxyError } from '../errors/syncproxy-error.js';
import { toSyncproxyError } from '../errors/to-syncproxy-error.js';

// A lock file still empty after this long was left by a process killed between creating and writing it.
const EMPTY_LOCK_STALE_MS = 2_000;

/**
 * Takes the lock file `lockPath` (created exclusively, holding our pid) and
 * returns its release function. A lock whose pid no longer runs on this host is
 * taken over, so a killed holder never blocks its successors. Processes on
 * other hosts sharing the file (NFS) are not supported: their pids mean
 * nothing here.
 */
export async function acquireFileLock(
  lockPath: string,
  options: { timeoutMs: number },
): Promise<() => Promise<void>> {
  const deadline = Date.now() + options.timeoutMs;
  let waitMs = 1;
  for (;;) {
    try {
      const handle = await open(lockPath, 'wx', 0o600);
      try {
        await handle.writeFile(`${process.pid}\n`);
      } finally {
        await handle.close();
      }
      return async () => {
        await rm(lockPath, { force: true });
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw toSyncproxyError(error, { operation: `lock ${lockPath}` });
      }
    }
    const holder = await lockHolder(lockPath);
    if (holder === 'gone') continue;
    if (holder === 'stale') {
      await rm(lockPath, { force: true });
      continue;
    }
    if (Date.now() >= deadline) {
      throw new SyncproxyError(
        `lock ${lockPath} is still held by process ${holder} after ${options.timeoutMs} ms (another scheduler is using the state; if that process hangs, stop it)`,
        { code: 'timeout', details: { lockPath, pid: holder } },
      );
    }
    await delay(waitMs);
    waitMs = Math.min(waitMs * 2, 50);
  }
}

/** True when a process with this pid runs on this host. */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function lockHolder(lockPath: string): Promise<number | 'stale' | 'gone'> {
  let text: string;
  let mtimeMs: number;
  try {
    text = await readFile(lockPath, 'utf8');
    mtimeMs = (await stat(lockPath)).mtimeMs;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'gone';
    throw toSyncproxyError(error, { operation: `read lock ${lockPath}` });
  }
  const pid = Number.parseInt(text, 10);
  if (!Number.isInteger(pid) || pid <= 0) return Date.now() - mtimeMs > EMPTY_LOCK_STALE_MS ? 'stale' : 0;
  return isProcessAlive(pid) ? pid : 'stale';
}
