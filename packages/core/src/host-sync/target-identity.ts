import { stat } from 'node:fs/promises';
import { toSyncproxyError } from '../errors/to-syncproxy-error.js';

/**
 * What an image file was when a sync left it: device and inode (the same
 * file, not a copy or a swap), size and modification time (nobody wrote to it
 * since). Device and inode as decimal strings: they may overflow a double.
 */
export interface TargetIdentity {
  dev: string;
  ino: string;
  size: number;
  /** Whole milliseconds: what every file system and `utimes` keep alike. */
  mtimeMs: number;
}

/** The identity of the file at `path`, or undefined when there is none. */
export async function targetIdentity(path: string): Promise<TargetIdentity | undefined> {
  try {
    const s = await stat(path, { bigint: true });
    return {
      dev: String(s.dev),
      ino: String(s.ino),
      size: Number(s.size),
      mtimeMs: Number(s.mtimeNs / 1_000_000n),
    };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw toSyncproxyError(error, { operation: `stat ${path}` });
  }
}

/** Why `actual` is not the file `expected` describes, or undefined when it is. */
export function identityMismatch(
  expected: TargetIdentity,
  actual: TargetIdentity | undefined,
  what: { sameFileOnly?: boolean } = {},
): string | undefined {
  if (actual === undefined) return 'the image no longer exists';
  if (actual.dev !== expected.dev || actual.ino !== expected.ino)
    return 'the image was replaced by another file';
  if (what.sameFileOnly) return undefined;
  if (actual.size !== expected.size)
    return `the image is ${actual.size} bytes, not the ${expected.size} the sync left`;
  if (actual.mtimeMs !== expected.mtimeMs) return 'the image was modified since the sync that left it';
  return undefined;
}
