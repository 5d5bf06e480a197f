import { constants } from 'node:fs';
import { access, mkdir, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { SyncproxyError } from './errors/syncproxy-error.js';

export interface PrepareTargetDirectoryOptions {
  /** Mode of the directories it creates (default 0o700: images hold whatever the VMs hold). */
  mode?: number;
}

/**
 * Makes sure `path` is a directory images can be written into, creating the
 * missing levels one at a time, and returns its absolute path. Refuses with
 * an `io` error naming the path when an ancestor is not a directory, is not
 * writable, or does not take new directories (`/proc`, `/sys`).
 *
 * Why not `mkdir(path, { recursive: true })`: on a file system that answers
 * ENOENT for a directory that exists (procfs), Node's recursive mkdir
 * retries the parent and the child forever, and the process spins.
 */
export async function prepareTargetDirectory(
  path: string,
  options: PrepareTargetDirectoryOptions = {},
): Promise<string> {
  const target = resolve(path);
  const missing: string[] = [];
  let existing = target;
  while (true) {
    const found = await stat(existing).catch((error: NodeJS.ErrnoException) => {
      // ENOTDIR: a level above is a file; the walk up reports that one.
      if (error.code === 'ENOENT' || error.code === 'ENOTDIR') return undefined;
      throw refuse(target, `cannot inspect ${existing} (${error.code ?? error.message})`, error);
    });
    if (found !== undefined) {
      if (!found.isDirectory()) throw refuse(target, `${existing} is not a directory`);
      break;
    }
    const parent = dirname(existing);
    if (parent === existing) throw refuse(target, 'no ancestor directory exists');
    missing.unshift(existing);
    existing = parent;
  }
  try {
    await access(existing, constants.W_OK | constants.X_OK);
  } catch (error) {
    throw refuse(target, `${existing} is not writable by this user`, error);
  }
  for (const level of missing) {
    try {
      await mkdir(level, { mode: options.mode ?? 0o700 });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const made = code === 'EEXIST' && (await stat(level).catch(() => undefined))?.isDirectory() === true;
      if (!made) {
        throw refuse(
          target,
          `${dirname(level)} does not take a new directory ${level} (${code ?? 'error'})`,
          error,
        );
      }
    }
  }
  return target;
}

function refuse(target: string, why: string, cause?: unknown): SyncproxyError {
  return new SyncproxyError(`cannot use ${target} as the target directory: ${why}`, {
    code: 'io',
    retryable: false,
    ...(cause === undefined ? {} : { cause }),
  });
}
