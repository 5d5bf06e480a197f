import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type SnapshotRef, SyncproxyError, writeFileAtomic } from '@syncproxy/core';

/** The file in a target directory that records what its images hold. */
export const SYNC_STATE_FILE = 'syncproxy-state.json';

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
}

export type SyncMode = 'full' | 'incremental';

/** A sync that started and did not finish: the next run resumes it from the images' checkpoints. */
export interface PendingSync {
  snapshotId: string;
  mode: SyncMode;
  diskIds: string[];
  /** Disks of it already complete. */
  doneDiskIds: string[];
  startedAt: string;
}

/**
 * `<target>/syncproxy-state.json`: which snapshot each image equals (kept on
 * the platform as the next base) and the sync in progress, if any.
 */
export interface SyncState {
  version: 1;
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
  return { version: 1, platform, hostId, disks: {}, snapshots: {} };
}

/** The state of a target directory, or undefined for a directory no sync has used. */
export async function loadSyncState(target: string): Promise<SyncState | undefined> {
  const path = syncStatePath(target);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ENOENT') return undefined;
    throw new SyncproxyError(`cannot read ${path}`, { code: 'io', retryable: false, cause: error });
  }
  let value: Partial<SyncState>;
  try {
    value = JSON.parse(text) as Partial<SyncState>;
  } catch {
    throw invalid(path, 'not JSON');
  }
  if (value?.version !== 1) throw invalid(path, `unsupported version ${JSON.stringify(value?.version)}`);
  if (typeof value.platform !== 'string' || typeof value.hostId !== 'string') {
    throw invalid(path, 'platform and hostId must be strings');
  }
  if (typeof value.disks !== 'object' || value.disks === null) throw invalid(path, 'bad disks');
  if (typeof value.snapshots !== 'object' || value.snapshots === null) throw invalid(path, 'bad snapshots');
  return value as SyncState;
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
    await writeFileAtomic(path, `${JSON.stringify(state, null, 2)}\n`);
  } catch (error) {
    throw new SyncproxyError(`cannot write ${path}`, { code: 'io', retryable: false, cause: error });
  }
}

/** Ids of recorded snapshots that neither an image nor the pending sync needs any more. */
export function unreferencedSnapshots(state: SyncState): string[] {
  const needed = new Set(Object.values(state.disks).map((d) => d.snapshotId));
  if (state.pending) needed.add(state.pending.snapshotId);
  return Object.keys(state.snapshots).filter((id) => !needed.has(id));
}
