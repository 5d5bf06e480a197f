import { readFile } from 'node:fs/promises';
import { SyncproxyError } from '../errors/syncproxy-error.js';

/** The sysfs directory of the block device with device number `rdev` (`/sys/dev/block/<major>:<minor>`). */
export function sysfsDirOf(rdev: number): string {
  // glibc's major()/minor() encoding of a 64-bit dev_t.
  const dev = BigInt(rdev);
  const major = Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn));
  const minor = Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn));
  return `/sys/dev/block/${major}:${minor}`;
}

/**
 * The size in bytes of a block device: what the BLKGETSIZE64 ioctl answers,
 * read from sysfs, which counts 512-byte sectors whatever the device's logical
 * block size (Node has no ioctl).
 */
export async function blockDeviceSize(rdev: number): Promise<number> {
  const path = `${sysfsDirOf(rdev)}/size`;
  try {
    return Number((await readFile(path, 'utf8')).trim()) * 512;
  } catch (error) {
    throw new SyncproxyError(`cannot read the block device size from ${path}`, {
      code: 'unsupported',
      retryable: false,
      cause: error,
    });
  }
}

/** The logical block size of a block device (512 or 4096); 512 when sysfs does not say. */
export async function logicalBlockSize(rdev: number): Promise<number> {
  try {
    const size = Number((await readFile(`${sysfsDirOf(rdev)}/queue/logical_block_size`, 'utf8')).trim());
    return Number.isSafeInteger(size) && size >= 512 ? size : 512;
  } catch {
    return 512;
  }
}
