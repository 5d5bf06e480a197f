import { access } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type ConnectorSession,
  type Disk,
  FileSink,
  type Host,
  type SnapshotRef,
  SyncproxyError,
  type SyncWarning,
  type TransferResult,
  toSyncproxyError,
  transferDisk,
} from '@syncproxy/core';
import type { ProgressDisplay } from './progress-display.js';
import {
  emptySyncState,
  loadSyncState,
  type PendingSync,
  type SyncMode,
  type SyncState,
  saveSyncState,
  syncStatePath,
  unreferencedSnapshots,
} from './sync-state.js';

export interface SyncHostOptions {
  session: ConnectorSession;
  /** Connector id, recorded in the state so another platform's images are never mixed in. */
  platform: string;
  hostId: string;
  /** Disks to sync (default: every disk of the host). */
  diskIds?: string[];
  /** Directory of the images (`<disk>.raw`), their checkpoints and manifests, and the sync state. */
  target: string;
  /** Apply only what changed since the snapshot each image equals. */
  incremental: boolean;
  progress: ProgressDisplay;
  signal?: AbortSignal;
  /** A checkpoint after this many chunks (default: the engine's, 64); a resume re-sends at most about that much. */
  checkpointEveryChunks?: number;
  /** Disks transferred at once (default 2). */
  parallelDisks?: number;
  /** Notes for a person (what is resumed, what is deleted). */
  notify?: (line: string) => void;
  /** Label of the snapshots the platform records. */
  snapshotLabel?: string;
}

export type DiskSyncStatus = 'done' | 'already-done' | 'failed' | 'interrupted';

export interface DiskSyncOutcome {
  diskId: string;
  path: string;
  sizeBytes: number;
  status: DiskSyncStatus;
  /** The snapshot the changes were computed against (incremental). */
  baseSnapshotId?: string;
  result?: TransferResult;
  error?: SyncproxyError;
}

export interface SyncReport {
  /** Every disk is complete. */
  ok: boolean;
  /** Ctrl-C stopped it: the checkpoints are kept, the same command resumes. */
  interrupted: boolean;
  platform: string;
  hostId: string;
  hostName: string;
  mode: SyncMode;
  snapshotId: string;
  /** This run continued a sync an earlier run left unfinished. */
  resumed: boolean;
  disks: DiskSyncOutcome[];
  statePath: string;
  /** Snapshots no image needs any more, deleted from the platform. */
  deletedSnapshots: string[];
  warnings: SyncWarning[];
}

/** The file name of a disk's image: the disk id with anything unsafe in a file name replaced. */
export function imageFileName(diskId: string): string {
  return `${diskId.replace(/[^A-Za-z0-9._-]/g, '_')}.raw`;
}

function usage(message: string): SyncproxyError {
  return new SyncproxyError(message, { code: 'config', retryable: false });
}

/**
 * Syncs the disks of a host into `<target>/<disk>.raw`: a snapshot, then each
 * disk through `transferDisk` into a `FileSink` (checkpoint and manifest kept
 * beside the image). The state file records the snapshot each image equals,
 * kept on the platform as the next incremental's base, and the sync under way,
 * so a run stopped by Ctrl-C, a crash or a failure is resumed by the next one
 * from the images' checkpoints.
 *
 * Throws before any transfer (bad selection, no base for an incremental,
 * snapshot failure); once transfers run, failures are in the report.
 */
export async function syncHost(options: SyncHostOptions): Promise<SyncReport> {
  const { session, platform, hostId, target, signal } = options;
  const notify = options.notify ?? (() => {});
  const statePath = syncStatePath(target);
  const state = (await loadSyncState(target)) ?? emptySyncState(platform, hostId);
  if (state.platform !== platform || state.hostId !== hostId) {
    throw usage(
      `${target} holds images of host ${state.hostId} on platform ${state.platform}, not of ${hostId} on ${platform}: use another --target`,
    );
  }

  const host = (await session.listHosts()).find((h) => h.id === hostId);
  if (host === undefined) {
    throw new SyncproxyError(`host ${hostId} not found on the platform (see \`syncproxy hosts\`)`, {
      code: 'not-found',
      retryable: false,
    });
  }
  const disks = selectDisks(host, options.diskIds);
  const warnings: SyncWarning[] = [];

  let mode: SyncMode = options.incremental ? 'incremental' : 'full';
  let snapshot: SnapshotRef;
  let resumed = false;
  const pending = state.pending;
  const resumable =
    pending !== undefined &&
    state.snapshots[pending.snapshotId] !== undefined &&
    disks.every((d) => pending.diskIds.includes(d.id)) &&
    !(pending.mode === 'incremental' && !options.incremental);
  if (pending !== undefined && resumable) {
    snapshot = state.snapshots[pending.snapshotId]!;
    mode = pending.mode;
    resumed = true;
    notify(
      `resuming the interrupted ${pending.mode} sync of snapshot ${snapshot.id}${
        pending.mode !== (options.incremental ? 'incremental' : 'full')
          ? ` (asked: ${options.incremental ? 'incremental' : 'full'})`
          : ''
      }`,
    );
  } else {
    if (pending !== undefined) {
      if (options.incremental) {
        throw usage(
          `an interrupted ${pending.mode} sync of disk(s) ${pending.diskIds.join(', ')} is unfinished in ${target}: run it again (same disks) to resume it, or run a full sync`,
        );
      }
      // A full sync rewrites every image, so the unfinished one is abandoned.
      notify(`abandoning the unfinished ${pending.mode} sync of snapshot ${pending.snapshotId}`);
      state.pending = undefined;
    }
    if (options.incremental) checkIncrementalBases(state, disks, target);
    await requireIncrementalImages(options.incremental, disks, target);
    snapshot = await session.createSnapshot(
      { ...host, disks },
      { ...(options.snapshotLabel ? { label: options.snapshotLabel } : {}), ...(signal ? { signal } : {}) },
    );
    state.snapshots[snapshot.id] = snapshot;
    state.pending = {
      snapshotId: snapshot.id,
      mode,
      diskIds: disks.map((d) => d.id),
      doneDiskIds: [],
      startedAt: new Date().toISOString(),
    };
    await saveSyncState(target, state);
    notify(`snapshot ${snapshot.id} created (${mode} sync of ${disks.length} disk(s))`);
  }
  const current = state.pending!;

  // State saves are serialised: disks finish concurrently.
  let saving: Promise<void> = Promise.resolve();
  const save = () => {
    saving = saving.then(() => saveSyncState(target, state));
    return saving;
  };

  const outcomes: DiskSyncOutcome[] = disks.map((disk) => ({
    diskId: disk.id,
    path: join(target, imageFileName(disk.id)),
    sizeBytes: disk.sizeBytes,
    status: current.doneDiskIds.includes(disk.id) ? 'already-done' : 'interrupted',
  }));
  const queue = outcomes.filter((o) => o.status !== 'already-done');
  let snapshotGone = false;

  const runDisk = async (outcome: DiskSyncOutcome): Promise<void> => {
    const disk = disks.find((d) => d.id === outcome.diskId)!;
    const baseId = mode === 'incremental' ? state.disks[disk.id]?.snapshotId : undefined;
    const base = baseId === undefined ? undefined : state.snapshots[baseId];
    if (baseId !== undefined) outcome.baseSnapshotId = baseId;
    const onProgress = options.progress.track(disk.id);
    try {
      const reader = await session.openReader(disk, {
        snapshot,
        ...(base ? { base } : {}),
        ...(signal ? { signal } : {}),
      });
      try {
        outcome.result = await transferDisk({
          reader,
          sink: new FileSink(outcome.path),
          full: mode === 'full',
          transferId: `${mode}:${baseId ?? '-'}->${snapshot.id}`,
          ...(options.checkpointEveryChunks
            ? { checkpointEvery: { chunks: options.checkpointEveryChunks } }
            : {}),
          onProgress,
          ...(signal ? { signal } : {}),
        });
      } finally {
        await reader.close().catch(() => {});
      }
      outcome.status = 'done';
      options.progress.end(disk.id, 'done');
      for (const w of outcome.result.warnings)
        warnings.push({ code: w.code, message: `${disk.id}: ${w.message}` });
      state.disks[disk.id] = {
        snapshotId: snapshot.id,
        sizeBytes: reader.diskSize,
        syncedAt: new Date().toISOString(),
        mode,
        manifestDigest: outcome.result.manifestDigest,
      };
      current.doneDiskIds.push(disk.id);
      await save();
    } catch (error) {
      const mapped = toSyncproxyError(error, { operation: `sync disk ${disk.id}` });
      const interrupted = signal?.aborted === true && mapped.code === 'aborted';
      outcome.status = interrupted ? 'interrupted' : 'failed';
      if (!interrupted) outcome.error = mapped;
      if (resumed && mapped.code === 'not-found') snapshotGone = true;
      options.progress.end(disk.id, outcome.status === 'failed' ? 'failed' : 'interrupted');
    }
  };

  const parallel = Math.max(1, options.parallelDisks ?? 2);
  let next = 0;
  const worker = async () => {
    while (next < queue.length && signal?.aborted !== true) await runDisk(queue[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(parallel, queue.length) }, worker));
  options.progress.stop();

  const interrupted = signal?.aborted === true && outcomes.some((o) => o.status === 'interrupted');
  const ok = outcomes.every((o) => o.status === 'done' || o.status === 'already-done');
  if (snapshotGone) abandonPending(state, current, warnings);
  const deletedSnapshots: string[] = [];
  if (ok) {
    state.pending = undefined;
    for (const id of unreferencedSnapshots(state)) {
      try {
        await session.deleteSnapshot(state.snapshots[id]!);
        delete state.snapshots[id];
        deletedSnapshots.push(id);
      } catch (error) {
        warnings.push({
          code: 'snapshot-not-deleted',
          message: `snapshot ${id} is no longer needed but could not be deleted (${toSyncproxyError(error).message}); the next sync tries again`,
        });
      }
    }
  }
  await save();

  return {
    ok,
    interrupted,
    platform,
    hostId,
    hostName: host.name,
    mode,
    snapshotId: snapshot.id,
    resumed,
    disks: outcomes,
    statePath,
    deletedSnapshots,
    warnings,
  };
}

function selectDisks(host: Host, diskIds: string[] | undefined): Disk[] {
  if (diskIds === undefined || diskIds.length === 0) {
    if (host.disks.length === 0) throw usage(`host ${host.id} has no disk to sync`);
    return host.disks;
  }
  const unknown = diskIds.filter((id) => !host.disks.some((d) => d.id === id));
  if (unknown.length > 0) {
    throw usage(
      `host ${host.id} has no disk ${unknown.join(', ')} (its disks: ${host.disks.map((d) => d.id).join(', ')})`,
    );
  }
  return host.disks.filter((d) => diskIds.includes(d.id));
}

function checkIncrementalBases(state: SyncState, disks: Disk[], target: string): void {
  const missing = disks.filter((d) => {
    const record = state.disks[d.id];
    return record === undefined || state.snapshots[record.snapshotId] === undefined;
  });
  if (missing.length > 0) {
    throw usage(
      `no base snapshot recorded in ${target} for disk(s) ${missing.map((d) => d.id).join(', ')}: run a full sync (without --incremental) first`,
    );
  }
}

async function requireIncrementalImages(incremental: boolean, disks: Disk[], target: string): Promise<void> {
  if (!incremental) return;
  for (const disk of disks) {
    const path = join(target, imageFileName(disk.id));
    try {
      await access(path);
    } catch {
      throw usage(`image ${path} is missing: an incremental applies to the previous image; run a full sync`);
    }
  }
}

/**
 * The resumed sync's snapshot is gone from the platform: the sync cannot go
 * on. Images it had started are half old, half new, so they lose their base
 * and only a full sync brings them back.
 */
function abandonPending(state: SyncState, pending: PendingSync, warnings: SyncWarning[]): void {
  const unfinished = pending.diskIds.filter((id) => !pending.doneDiskIds.includes(id));
  for (const id of unfinished) delete state.disks[id];
  state.pending = undefined;
  if (!Object.values(state.disks).some((d) => d.snapshotId === pending.snapshotId)) {
    delete state.snapshots[pending.snapshotId];
  }
  warnings.push({
    code: 'pending-snapshot-gone',
    message: `snapshot ${pending.snapshotId} of the interrupted sync no longer exists on the platform; disk(s) ${unfinished.join(', ')} need a full sync (run without --incremental)`,
  });
}
