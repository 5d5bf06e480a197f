import { createHash, randomUUID } from 'node:crypto';
import { constants } from 'node:fs';
import { access, type FileHandle, mkdir, open, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { abortError, DiskManifest, readManifest, SyncproxyError, toSyncproxyError } from '@syncproxy/core';
import type { LocalDiskConfig } from './config.js';

/** A configured disk, as this machine has it. */
export interface LocalDisk {
  id: string;
  name: string;
  path: string;
  sizeBytes: number;
  isBlockDevice: boolean;
}

const SNAPSHOT_ID = /^[A-Za-z0-9_-]{1,80}$/;

/**
 * The "platform API" of a local machine: its disk files and the snapshot
 * store. Every Node error is mapped here, so nothing above sees a raw one.
 */
export class LocalDiskClient {
  constructor(private readonly config: LocalDiskConfig) {}

  async listDisks(): Promise<LocalDisk[]> {
    const disks: LocalDisk[] = [];
    for (const entry of this.config.disks) {
      const file = await this.openDisk(entry.path);
      try {
        const info = await file.stat();
        const isBlockDevice = info.isBlockDevice();
        if (!isBlockDevice && !info.isFile()) {
          throw new SyncproxyError(`${entry.path} is neither a raw image file nor a block device`, {
            code: 'config',
            retryable: false,
          });
        }
        const sizeBytes = isBlockDevice ? await deviceSize(file) : info.size;
        disks.push({
          id: entry.id ?? entry.path,
          name: entry.name ?? entry.path,
          path: entry.path,
          sizeBytes,
          isBlockDevice,
        });
      } finally {
        await file.close();
      }
    }
    return disks;
  }

  async findDisk(diskId: string): Promise<LocalDisk> {
    const disk = (await this.listDisks()).find((d) => d.id === diskId);
    if (disk === undefined) {
      throw new SyncproxyError(`disk ${diskId} is not configured on host ${this.config.hostName}`, {
        code: 'not-found',
        retryable: false,
      });
    }
    return disk;
  }

  async openDisk(path: string): Promise<FileHandle> {
    try {
      return await open(path, constants.O_RDONLY);
    } catch (error) {
      throw toSyncproxyError(error, { operation: `open disk ${path}` });
    }
  }

  /** True when the state directory can be created and written. */
  async canWriteState(): Promise<boolean> {
    try {
      await mkdir(this.snapshotsDir(), { recursive: true });
      await access(this.snapshotsDir(), constants.W_OK);
      return true;
    } catch {
      return false;
    }
  }

  newSnapshotId(): string {
    return `${new Date().toISOString().replace(/[:.]/g, '-')}-${randomUUID().slice(0, 8)}`;
  }

  /**
   * Records the manifest of one disk: the SHA-256 of every chunk, read now.
   * The manifest is the snapshot: reads are later checked against it.
   */
  async recordManifest(
    snapshotId: string,
    disk: LocalDisk,
    index: number,
    signal?: AbortSignal,
  ): Promise<string> {
    const chunkSizeBytes = this.config.chunkSizeBytes;
    const manifest = DiskManifest.create({ diskSize: disk.sizeBytes, chunkSizeBytes, fill: 'zero' });
    const file = await this.openDisk(disk.path);
    try {
      const buffer = new Uint8Array(chunkSizeBytes);
      for (let chunk = 0; chunk < manifest.chunkCount; chunk++) {
        if (signal?.aborted) throw abortError(signal, 'createSnapshot');
        const length = manifest.chunkLength(chunk);
        const bytes = await readExactly(file, disk.path, buffer.subarray(0, length), chunk * chunkSizeBytes);
        manifest.set(chunk, isZero(bytes) ? 'zero' : createHash('sha256').update(bytes).digest());
      }
    } finally {
      await file.close();
    }
    manifest.complete = true;
    const relative = join(snapshotId, `${index}.manifest`);
    await this.io(`record snapshot ${snapshotId}`, async () => {
      await mkdir(join(this.snapshotsDir(), snapshotId), { recursive: true });
      await writeFile(join(this.snapshotsDir(), relative), manifest.encode());
    });
    return relative;
  }

  async loadManifest(snapshotId: string, relative: string): Promise<DiskManifest> {
    const path = join(this.snapshotsDir(), this.checkId(snapshotId), relative.split(/[\\/]/).pop() ?? '');
    try {
      return await readManifest(path);
    } catch (error) {
      if (SyncproxyError.hasCode(error, 'not-found')) {
        throw new SyncproxyError(
          `snapshot ${snapshotId} not found in ${this.snapshotsDir()} (deleted, or taken on another proxy)`,
          {
            code: 'not-found',
            retryable: false,
          },
        );
      }
      throw error;
    }
  }

  async deleteSnapshot(snapshotId: string): Promise<void> {
    await this.io(`delete snapshot ${snapshotId}`, () =>
      rm(join(this.snapshotsDir(), this.checkId(snapshotId)), { recursive: true, force: true }),
    );
  }

  async snapshotIds(): Promise<string[]> {
    try {
      return await readdir(this.snapshotsDir());
    } catch {
      return [];
    }
  }

  private snapshotsDir(): string {
    return join(this.config.stateDir, 'snapshots');
  }

  /** Snapshot ids become directory names: nothing that could climb out of the state directory. */
  private checkId(snapshotId: string): string {
    if (!SNAPSHOT_ID.test(snapshotId)) {
      throw new SyncproxyError(`invalid snapshot id ${JSON.stringify(snapshotId)}`, {
        code: 'config',
        retryable: false,
      });
    }
    return snapshotId;
  }

  private async io<T>(operation: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      throw toSyncproxyError(error, { operation });
    }
  }
}

/** Reads exactly `target.length` bytes at `offset`; a short file is an integrity error, not zeroes. */
export async function readExactly(
  file: FileHandle,
  path: string,
  target: Uint8Array,
  offset: number,
): Promise<Uint8Array> {
  let done = 0;
  while (done < target.length) {
    let bytesRead: number;
    try {
      ({ bytesRead } = await file.read(target, done, target.length - done, offset + done));
    } catch (error) {
      throw toSyncproxyError(error, { operation: `read ${path} at ${offset + done}` });
    }
    if (bytesRead === 0) {
      throw new SyncproxyError(
        `${path} ended at ${offset + done}, before ${offset + target.length}: the disk shrank since the snapshot`,
        {
          code: 'integrity',
          retryable: false,
        },
      );
    }
    done += bytesRead;
  }
  return target;
}

const ZEROES = new Uint8Array(64 * 1024);

export function isZero(bytes: Uint8Array): boolean {
  for (let offset = 0; offset < bytes.length; offset += ZEROES.length) {
    const piece = bytes.subarray(offset, offset + ZEROES.length);
    if (Buffer.compare(piece, ZEROES.subarray(0, piece.length)) !== 0) return false;
  }
  return true;
}

/**
 * Node cannot ask a block device its size (no BLKGETSIZE64), but a read past
 * the end returns 0 bytes: binary search for the end, 512-byte sectors.
 */
async function deviceSize(file: FileHandle): Promise<number> {
  const probe = new Uint8Array(1);
  const readable = async (offset: number) => (await file.read(probe, 0, 1, offset)).bytesRead === 1;
  let low = 0;
  let high = 512;
  while (await readable(high - 1)) {
    low = high;
    high *= 2;
  }
  while (high - low > 1) {
    const middle = Math.floor((low + high) / 2);
    if (await readable(middle - 1)) low = middle;
    else high = middle;
  }
  return low;
}
