import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../atomic-file.js';
import type { SnapshotRef } from '../contracts/connector.js';
import { SyncproxyError } from '../errors/syncproxy-error.js';
import type { TargetIdentity } from './target-identity.js';

/** The file in a target directory that records what its images hold. */
export const SYNC_STATE_FILE = 'syncproxy-state.json';

/** How one disk is synced: everything, or only what changed since its base snapshot. */
export type SyncMode = 'full' | 'incremental';

/** What one image in the target directory holds. */
export interface DiskSyncRecord {
  /** The snapshot the image equals: the base of the next incremental. */
  snapshotId: string;
  sizeBytes: number;
  /** ISO-8601 time the sync finished. */
  syncedAt: string;
  mode: SyncMode;
  /** The manifest's digest after that sync. */
  manifestDigest: string;
  /** The image file as that sync left it; checked before an incremental is applied to it. */
  target?: TargetIdentity;
}

/** One disk of a sync under way. */
export interface PendingDisk {
  mode: SyncMode;
  /** The snapshot an incremental applies changes since. */
  baseSnapshotId?: string;
  done: boolean;
  /** The image file (device:inode) the transfer writes, once it started: a resume onto another file is refused. */
  image?: string;
}

/** A sync that started and did not finish: the next run resumes it from the images' checkpoints. */
export interface PendingSync {
  snapshotId: string;
  startedAt: string;
  disks: Record<string, PendingDisk>;
}

/**
 * `<target>/syncproxy-state.json`: which snapshot each image equals (kept on
 * the platform as the next base) and the sync in progress, if any.
 */
export interface SyncState {
  version: 2;
  platform: string;
  hostId: string;
  disks: Record<string, DiskSyncRecord>;
  /** Snapshots still needed: a disk's base, or the pending sync's. */
  snapshots: Record<string, SnapshotRef>;
  pending?: PendingSync;
}

export function syncStatePath(target: string): string {
  return join(target, SYNC_STATE_FILE);
}

export function emptySyncState(platform: string, hostId: string): SyncState {
  return { version: 2, platform, hostId, disks: {}, snapshots: {} };
}

interface PendingSyncV1 {
  snapshotId: string;
  mode: SyncMode;
  diskIds: string[];
  doneDiskIds: string[];
  startedAt: string;
}

/** The state of a target directory, or undefined for a directory no sync has used. Version 1 files are upgraded. */
export async function loadSyncState(target: string): Promise<SyncState | undefined> {
  const path = syncStatePath(target);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ENOENT') return undefined;
    throw new SyncproxyError(`cannot read ${path}`, { code: 'io', retryable: false, cause: error });
  }
  let value: Record<string, unknown>;
  try {
    value = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw invalid(path, 'not JSON');
  }
  if (typeof value !== 'object' || value === null) throw invalid(path, 'not an object');
  if (value.version !== 1 && value.version !== 2)
    throw invalid(path, `unsupported version ${JSON.stringify(value.version)}`);
  if (typeof value.platform !== 'string' || typeof value.hostId !== 'string') {
    throw invalid(path, 'platform and hostId must be strings');
  }
  if (typeof value.disks !== 'object' || value.disks === null) throw invalid(path, 'bad disks');
  if (typeof value.snapshots !== 'object' || value.snapshots === null) throw invalid(path, 'bad snapshots');
  for (const [id, record] of Object.entries(value.disks as Record<string, Partial<DiskSyncRecord>>)) {
    if (typeof record?.snapshotId !== 'string' || !Number.isSafeInteger(record.sizeBytes))
      throw invalid(path, `bad record of disk ${JSON.stringify(id)}`);
  }
  if (value.version === 1) {
    const old = value.pending as PendingSyncV1 | undefined;
    const state: SyncState = {
      version: 2,
      platform: value.platform,
      hostId: value.hostId,
      disks: value.disks as Record<string, DiskSyncRecord>,
      snapshots: value.snapshots as Record<string, SnapshotRef>,
    };
    if (old !== undefined) {
      state.pending = {
        snapshotId: old.snapshotId,
        startedAt: old.startedAt,
        disks: Object.fromEntries(
          old.diskIds.map((id) => [
            id,
            {
              mode: old.mode,
              done: old.doneDiskIds.includes(id),
              ...(old.mode === 'incremental' && state.disks[id]
                ? { baseSnapshotId: state.disks[id]!.snapshotId }
                : {}),
            },
          ]),
        ),
      };
    }
    return state;
  }
  const pending = value.pending as Partial<PendingSync> | undefined;
  if (
    pending !== undefined &&
    (typeof pending.snapshotId !== 'string' || typeof pending.disks !== 'object' || pending.disks === null)
  ) {
    throw invalid(path, 'bad pending sync');
  }
  return value as unknown as SyncState;
}

function invalid(path: string, why: string): SyncproxyError {
  return new SyncproxyError(`${path} is not a syncproxy state file: ${why} (move it away to start over)`, {
    code: 'integrity',
    retryable: false,
  });
}

/** Replaces the state file whole: a crash leaves the old state or the new one. */
export async function saveSyncState(target: string, state: SyncState): Promise<void> {
  const path = syncStatePath(target);
  try {
    await writeFileAtomic(path, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  } catch (error) {
    throw new SyncproxyError(`cannot write ${path}`, { code: 'io', retryable: false, cause: error });
  }
}

/** Ids of recorded snapshots that neither an image nor the pending sync needs any more. */
export function unreferencedSnapshots(state: SyncState): string[] {
  const needed = new Set(Object.values(state.disks).map((d) => d.snapshotId));
  if (state.pending) {
    needed.add(state.pending.snapshotId);
    for (const disk of Object.values(state.pending.disks))
      if (disk.baseSnapshotId !== undefined) needed.add(disk.baseSnapshotId);
  }
  return Object.keys(state.snapshots).filter((id) => !needed.has(id));
}
