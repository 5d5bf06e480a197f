import { mkdir, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { type Clock, systemClock } from '../clock.js';
import type { ConnectorSession, Disk, Host, SnapshotRef } from '../contracts/connector.js';
import type { Logger } from '../contracts/logger.js';
import type { ChangedBlockReader, SyncWarning } from '../contracts/reader.js';
import { SyncproxyError } from '../errors/syncproxy-error.js';
import { toSyncproxyError } from '../errors/to-syncproxy-error.js';
import { ChunkLedger, FileCheckpointStore } from '../transfer/checkpoint.js';
import { intentsPathOf, readChunkIntents } from '../transfer/chunk-intents.js';
import {
  TARGET_DIFFERS_FROM_MANIFEST,
  type TransferOptions,
  type TransferResult,
  transferDisk,
} from '../transfer/engine.js';
import { FileSink } from '../transfer/file-sink.js';
import { type DiskManifest, readManifest } from '../transfer/manifest.js';
import type { TransferProgress } from '../transfer/progress.js';
import { TokenBucket } from '../transfer/token-bucket.js';
import { imageFileName } from './image-name.js';
import { countManifestMismatches } from './manifest-check.js';
import { type HostSyncPhase, type HostSyncPhaseEvent, RunningPhase } from './phase-events.js';
import {
  type DiskSyncRecord,
  emptySyncState,
  loadSyncState,
  type PendingDisk,
  type SyncMode,
  type SyncState,
  saveSyncState,
  syncStatePath,
  unreferencedSnapshots,
} from './sync-state.js';
import { identityMismatch, targetIdentity } from './target-identity.js';
import { acquireTargetLock } from './target-lock.js';

/** `auto`: incremental where a base exists, full elsewhere. */
export type HostSyncMode = 'auto' | SyncMode;

/**
 * How much an incremental trusts the image it applies changes to:
 * - `identity` (default): the image is the same file (device, inode), with the
 *   size and modification time the last sync left. Catches a deleted,
 *   replaced, swapped, truncated or rewritten image; not a change that
 *   restores the modification time.
 * - `manifest`: that, and every chunk of the image is re-hashed against the
 *   manifest the last sync left (reads the whole image). Catches any change
 *   of content, such as a flipped byte written behind the file's mtime.
 */
export type VerifyTargetLevel = 'identity' | 'manifest';

export interface HostSyncOptions {
  session: ConnectorSession;
  /** Connector id, recorded in the state so another platform's images are never mixed in. */
  platform: string;
  hostId: string;
  /** Disks to sync (default: every disk of the host). */
  diskIds?: readonly string[];
  /** Directory of the images (see {@link imageFileName}), their checkpoints and manifests, and the sync state. */
  target: string;
  /** Default `auto`. `incremental` without a recorded base is a `config` error. */
  mode?: HostSyncMode;
  signal?: AbortSignal;
  /** Progress, warnings and steps of the sync as they happen. */
  onEvent?: (event: HostSyncEvent) => void;
  /** Re-read every chunk written and compare it with the source's hash (default false). */
  verify?: boolean;
  /** See {@link VerifyTargetLevel}; default `identity`. */
  verifyTarget?: VerifyTargetLevel;
  /** Reads in flight per disk (the engine's default otherwise). */
  concurrency?: number;
  /** One limit shared by every disk of the sync, bytes read per second. */
  bandwidthLimitBytesPerSec?: number;
  /** Ask guest tools to quiesce file systems for the snapshot. */
  quiesce?: boolean;
  /** A checkpoint after this many chunks (the engine's default otherwise); a resume re-sends at most about that much. */
  checkpointEveryChunks?: number;
  /** Disks transferred at once (default 2). */
  parallelDisks?: number;
  /** Label of the snapshots the platform records. */
  snapshotLabel?: string;
  logger?: Logger;
  /** Time source of the phase events and their ticks (tests). */
  clock?: Clock;
  /** A `phase` `progress` event this often while a step runs, ms of the clock (default 1000). */
  phaseTickMs?: number;
  /** Engine settings for each disk's transfer (chunk grid, memory bound, retries), for tuning and tests. */
  transfer?: Partial<
    Pick<
      TransferOptions,
      'chunkSizeBytes' | 'maxInFlightBytes' | 'retry' | 'coalesceGapBytes' | 'prescan' | 'manifestReadBack'
    >
  >;
}

/** Everything {@link HostSyncOptions} takes but the disk selection, plus the one disk. */
export interface DiskSyncOptions extends Omit<HostSyncOptions, 'diskIds'> {
  diskId: string;
}

export type DiskSyncStatus = 'done' | 'already-done' | 'failed' | 'interrupted';

/** A warning of the sync: a degraded mode (`base-lost`, `cbt-reset`, `target-changed`, `hash-diff`...). */
export interface HostSyncWarning extends SyncWarning {
  /** The disk it concerns, when one. */
  diskId?: string;
}

export type HostSyncEvent =
  | { type: 'snapshot'; snapshotId: string; created: boolean; mode: SyncMode | 'mixed'; diskCount: number }
  | { type: 'disk-start'; diskId: string; mode: SyncMode; baseSnapshotId?: string }
  | { type: 'progress'; diskId: string; progress: TransferProgress }
  | { type: 'disk-end'; diskId: string; status: DiskSyncStatus }
  | { type: 'warning'; warning: HostSyncWarning }
  | { type: 'note'; message: string }
  | HostSyncPhaseEvent;

export interface DiskSyncOutcome {
  diskId: string;
  path: string;
  sizeBytes: number;
  status: DiskSyncStatus;
  /** The mode actually used (a lost base turns an incremental into a full sync). */
  mode: SyncMode;
  /** The snapshot the changes were computed against (incremental). */
  baseSnapshotId?: string;
  result?: TransferResult;
  error?: SyncproxyError;
}

export interface HostSyncReport {
  /** Every disk is complete and exact. */
  ok: boolean;
  /** The signal stopped it: the checkpoints are kept, the same call resumes. */
  interrupted: boolean;
  platform: string;
  hostId: string;
  hostName: string;
  /** The modes actually used: `mixed` when some disks were full and others incremental. */
  mode: SyncMode | 'mixed';
  snapshotId: string;
  /** This run continued a sync an earlier run left unfinished. */
  resumed: boolean;
  disks: DiskSyncOutcome[];
  statePath: string;
  /** Snapshots no image needs any more, deleted from the platform. */
  deletedSnapshots: string[];
  warnings: HostSyncWarning[];
}

const HOST_MODES: readonly string[] = ['auto', 'full', 'incremental'];
const VERIFY_LEVELS: readonly string[] = ['identity', 'manifest'];

function configError(field: string, message: string): SyncproxyError {
  return new SyncproxyError(`syncHost: ${field}: ${message}`, {
    code: 'config',
    retryable: false,
    details: { field },
  });
}

function checkOptions(options: HostSyncOptions): void {
  if (options === null || typeof options !== 'object') throw configError('options', 'must be an object');
  const session = options.session as Partial<ConnectorSession> | undefined;
  if (typeof session?.createSnapshot !== 'function' || typeof session.openReader !== 'function')
    throw configError('session', 'must be a ConnectorSession (from connector.connect())');
  for (const field of ['platform', 'hostId', 'target'] as const) {
    if (typeof options[field] !== 'string' || options[field] === '')
      throw configError(field, 'must be a non-empty string');
  }
  if (options.mode !== undefined && !HOST_MODES.includes(options.mode))
    throw configError('mode', `must be one of ${HOST_MODES.join(', ')}`);
  if (options.verifyTarget !== undefined && !VERIFY_LEVELS.includes(options.verifyTarget))
    throw configError('verifyTarget', `must be one of ${VERIFY_LEVELS.join(', ')}`);
  if (options.phaseTickMs !== undefined && !(Number.isFinite(options.phaseTickMs) && options.phaseTickMs > 0))
    throw configError('phaseTickMs', 'must be a positive number');
  for (const field of ['concurrency', 'checkpointEveryChunks', 'parallelDisks'] as const) {
    const value = options[field];
    if (value !== undefined && (!Number.isSafeInteger(value) || value < 1))
      throw configError(field, 'must be an integer >= 1');
  }
  const limit = options.bandwidthLimitBytesPerSec;
  if (limit !== undefined && !(Number.isFinite(limit) && limit > 0))
    throw configError('bandwidthLimitBytesPerSec', 'must be a positive number');
  if (options.diskIds !== undefined) {
    if (!Array.isArray(options.diskIds) || options.diskIds.some((id) => typeof id !== 'string'))
      throw configError('diskIds', 'must be an array of disk ids');
    const seen = new Set<string>();
    for (const id of options.diskIds) {
      if (seen.has(id)) throw configError('diskIds', `disk ${JSON.stringify(id)} is named twice`);
      seen.add(id);
    }
  }
}

/**
 * Syncs one disk of a host: {@link syncHost} with that disk alone.
 */
export function syncDisk(options: DiskSyncOptions): Promise<HostSyncReport> {
  const { diskId, ...rest } = options;
  if (typeof diskId !== 'string' || diskId === '') throw configError('diskId', 'must be a non-empty string');
  return syncHost({ ...rest, diskIds: [diskId] });
}

/**
 * Syncs the disks of a host into images in `target`, the one way to sync:
 * 1. locks the target (a second writer gets `conflict` naming the holder);
 * 2. resumes the sync an earlier run left unfinished, or snapshots every
 *    selected disk together;
 * 3. opens each disk's reader against the base snapshot its image equals
 *    (incremental) or none (full), with the image's manifest for hash diffs,
 *    and transfers it with checkpoints bound to the disk, the snapshots and
 *    the image file; readers close in every case;
 * 4. after success only, records each image's new base and deletes the
 *    snapshots no image needs any more. A snapshot this run made is deleted
 *    on failure too, unless a resume needs it.
 *
 * A base the platform lost (`not-found`) or a reset change tracking
 * (`cbt-reset`) makes that disk a full sync with a `base-lost`/`cbt-reset`
 * warning; an image that is not what the last sync left makes it a full sync
 * with a `target-changed` warning. Never an incremental onto an unknown image.
 *
 * Throws before any transfer (bad options, unknown host or disk, no base for a
 * forced incremental, target locked, snapshot failure); once transfers run,
 * failures are in the report.
 */
export async function syncHost(options: HostSyncOptions): Promise<HostSyncReport> {
  checkOptions(options);
  try {
    await mkdir(options.target, { recursive: true });
  } catch (error) {
    throw toSyncproxyError(error, { operation: `create target directory ${options.target}` });
  }
  const lock = await acquireTargetLock(options.target);
  try {
    return await new HostSync(options).run();
  } finally {
    await lock.release();
  }
}

interface DiskPlan {
  disk: Disk;
  outcome: DiskSyncOutcome;
  pending: PendingDisk;
}

/** One locked run of {@link syncHost}: its state, snapshot and disks. */
class HostSync {
  readonly #options: HostSyncOptions;
  readonly #warnings: HostSyncWarning[] = [];
  readonly #bandwidth: TokenBucket | undefined;
  #state!: SyncState;
  #saving: Promise<void> = Promise.resolve();
  /** A full read found nothing: the sync's own snapshot is gone from the platform. */
  #snapshotGone = false;

  constructor(options: HostSyncOptions) {
    this.#options = options;
    this.#bandwidth =
      options.bandwidthLimitBytesPerSec === undefined
        ? undefined
        : new TokenBucket({ bytesPerSecond: options.bandwidthLimitBytesPerSec });
  }

  #emit(event: HostSyncEvent): void {
    try {
      this.#options.onEvent?.(event);
    } catch (error) {
      this.#options.logger?.warn({ error: toSyncproxyError(error).message }, 'onEvent threw; ignored');
    }
  }

  #warn(warning: HostSyncWarning): void {
    this.#warnings.push(warning);
    this.#options.logger?.warn({ code: warning.code }, warning.message);
    this.#emit({ type: 'warning', warning });
  }

  /** Starts a step; it ticks unless its own progress events say enough (the transfer). */
  #phase(phase: HostSyncPhase, diskId?: string, ticks = true): RunningPhase {
    return new RunningPhase(
      (event) => this.#emit(event),
      this.#options.clock ?? systemClock,
      phase,
      diskId,
      ticks ? (this.#options.phaseTickMs ?? 1000) : undefined,
    );
  }

  #note(message: string): void {
    this.#options.logger?.info(message);
    this.#emit({ type: 'note', message });
  }

  /** State saves are serialised: disks finish concurrently. */
  #save(): Promise<void> {
    const state = this.#state;
    this.#saving = this.#saving.catch(() => {}).then(() => saveSyncState(this.#options.target, state));
    return this.#saving;
  }

  async run(): Promise<HostSyncReport> {
    const { session, platform, hostId, target, signal } = this.#options;
    const requested: HostSyncMode = this.#options.mode ?? 'auto';
    const state = (await loadSyncState(target)) ?? emptySyncState(platform, hostId);
    this.#state = state;
    if (state.platform !== platform || state.hostId !== hostId) {
      throw configError(
        'target',
        `${target} holds images of host ${state.hostId} on platform ${state.platform}, not of ${hostId} on ${platform}: use another target`,
      );
    }
    const host = (await session.listHosts()).find((h) => h.id === hostId);
    if (host === undefined) {
      throw new SyncproxyError(
        `host ${hostId} not found on the platform (list the hosts with listHosts, or syncproxy hosts)`,
        {
          code: 'not-found',
          retryable: false,
        },
      );
    }
    const disks = selectDisks(host, this.#options.diskIds);
    const paths = new Map(disks.map((d) => [d.id, join(target, imageFileName(d.id))]));

    let snapshot: SnapshotRef;
    let resumed = false;
    let created = false;
    const pending = state.pending;
    const resumable =
      pending !== undefined &&
      state.snapshots[pending.snapshotId] !== undefined &&
      disks.every((d) => pending.disks[d.id] !== undefined) &&
      !(requested === 'full' && disks.some((d) => pending.disks[d.id]!.mode === 'incremental'));
    if (pending !== undefined && resumable) {
      snapshot = state.snapshots[pending.snapshotId]!;
      resumed = true;
      this.#note(`resuming the unfinished sync of snapshot ${snapshot.id}`);
      for (const disk of disks) {
        const entry = pending.disks[disk.id]!;
        if (entry.done) await this.#checkDone(disk, paths.get(disk.id)!, entry);
        else if (entry.mode === 'incremental' && entry.image === undefined)
          await this.#checkUnstarted(disk, paths.get(disk.id)!, entry);
      }
    } else {
      if (pending !== undefined) this.#abandon(`a new sync was asked for`);
      const plans: Record<string, PendingDisk> = {};
      for (const disk of disks) plans[disk.id] = await this.#planDisk(disk, paths.get(disk.id)!, requested);
      const waiting = this.#phase('snapshot');
      try {
        snapshot = await session.createSnapshot(
          { ...host, disks },
          {
            ...(this.#options.snapshotLabel ? { label: this.#options.snapshotLabel } : {}),
            ...(this.#options.quiesce ? { quiesce: true } : {}),
            ...(signal ? { signal } : {}),
          },
        );
      } finally {
        waiting.end();
      }
      created = true;
      state.snapshots[snapshot.id] = snapshot;
      state.pending = { snapshotId: snapshot.id, startedAt: new Date().toISOString(), disks: plans };
      await this.#save();
    }
    const current = state.pending!;
    const planned = new Set(disks.map((d) => current.disks[d.id]!.mode));
    this.#emit({
      type: 'snapshot',
      snapshotId: snapshot.id,
      created,
      mode: planned.size === 1 ? [...planned][0]! : 'mixed',
      diskCount: disks.length,
    });

    const plans: DiskPlan[] = disks.map((disk) => {
      const entry = current.disks[disk.id]!;
      return {
        disk,
        pending: entry,
        outcome: {
          diskId: disk.id,
          path: paths.get(disk.id)!,
          sizeBytes: disk.sizeBytes,
          status: entry.done ? 'already-done' : 'interrupted',
          mode: entry.mode,
          ...(entry.baseSnapshotId !== undefined ? { baseSnapshotId: entry.baseSnapshotId } : {}),
        },
      };
    });
    const queue = plans.filter((p) => p.outcome.status !== 'already-done');
    const parallel = Math.max(1, this.#options.parallelDisks ?? 2);
    let next = 0;
    const worker = async () => {
      while (next < queue.length && signal?.aborted !== true) await this.#runDisk(queue[next++]!, snapshot);
    };
    await Promise.all(Array.from({ length: Math.min(parallel, queue.length) }, worker));

    const outcomes = plans.map((p) => p.outcome);
    const interrupted = signal?.aborted === true && outcomes.some((o) => o.status === 'interrupted');
    const ok = outcomes.every((o) => o.status === 'done' || o.status === 'already-done');
    const deletedSnapshots: string[] = [];
    if (ok) {
      state.pending = undefined;
      await this.#save();
      await this.#deleteUnreferenced(deletedSnapshots);
    } else if (this.#snapshotGone && !interrupted) {
      this.#warn({
        code: 'pending-snapshot-gone',
        message: `snapshot ${snapshot.id} of this sync no longer exists on the platform: the next sync takes a new one`,
      });
      this.#abandon('its snapshot is gone');
      await this.#save();
      await this.#deleteUnreferenced(deletedSnapshots);
    } else if (!interrupted && created && !(await this.#resumeNeeds(plans))) {
      // Nothing of this run can be resumed: its snapshot would only be left behind.
      this.#abandon('it failed before any disk made progress');
      await this.#save();
      await this.#deleteUnreferenced(deletedSnapshots);
    }
    await this.#save();

    const modes = new Set(outcomes.map((o) => o.mode));
    return {
      ok,
      interrupted,
      platform,
      hostId,
      hostName: host.name,
      mode: modes.size === 1 ? [...modes][0]! : 'mixed',
      snapshotId: snapshot.id,
      resumed,
      disks: outcomes,
      statePath: syncStatePath(target),
      deletedSnapshots,
      warnings: this.#warnings,
    };
  }

  /** The mode of a disk in a new sync, and the base it applies changes since. */
  async #planDisk(disk: Disk, path: string, requested: HostSyncMode): Promise<PendingDisk> {
    const state = this.#state;
    const record = state.disks[disk.id];
    const hasBase =
      record !== undefined &&
      state.snapshots[record.snapshotId] !== undefined &&
      record.sizeBytes === disk.sizeBytes;
    if (requested === 'incremental' && !hasBase) {
      throw configError(
        'mode',
        `incremental asked, but no base snapshot is recorded in ${this.#options.target} for disk ${disk.id}${
          record !== undefined && record.sizeBytes !== disk.sizeBytes ? ' of its current size' : ''
        }: run a full (or auto) sync first`,
      );
    }
    if (requested === 'full' || !hasBase) return { mode: 'full', done: false };
    const why = await this.#targetProblem(record!, path, disk.id);
    if (why !== undefined) {
      this.#warn({
        code: 'target-changed',
        diskId: disk.id,
        message: `disk ${disk.id}: ${why} (${path}): a full sync instead of an incremental`,
      });
      delete state.disks[disk.id];
      return { mode: 'full', done: false };
    }
    return { mode: 'incremental', baseSnapshotId: record!.snapshotId, done: false };
  }

  /** Why the image is not what the last sync left, or undefined when it is. */
  async #targetProblem(record: DiskSyncRecord, path: string, diskId: string): Promise<string | undefined> {
    const actual = await targetIdentity(path);
    if (record.target !== undefined) {
      const why = identityMismatch(record.target, actual);
      if (why !== undefined) return why;
    } else if (actual === undefined) {
      return 'the image no longer exists';
    } else if (actual.size !== record.sizeBytes) {
      return `the image is ${actual.size} bytes, not ${record.sizeBytes}`;
    }
    if (this.#options.verifyTarget === 'manifest') {
      let manifest: DiskManifest;
      try {
        manifest = await readManifest(`${path}.manifest`);
      } catch {
        return 'the image has no readable manifest to verify it against';
      }
      if (!manifest.complete || (record.manifestDigest !== '' && manifest.digest() !== record.manifestDigest))
        return 'the manifest is not the one the last sync left';
      const check = this.#phase('verify', diskId);
      let bad: number;
      try {
        bad = await countManifestMismatches(path, manifest, this.#options.signal, (done, total) =>
          check.bytes(done, total),
        );
      } finally {
        check.end();
      }
      if (bad > 0) return `${bad} chunk(s) of the image differ from its manifest`;
    }
    return undefined;
  }

  /** A disk the pending sync marked done is trusted only if its image is still what that sync left. */
  async #checkDone(disk: Disk, path: string, entry: PendingDisk): Promise<void> {
    const record = this.#state.disks[disk.id];
    const why =
      record === undefined || record.snapshotId !== this.#state.pending!.snapshotId
        ? 'no record of the finished image'
        : await this.#targetProblem(record, path, disk.id);
    if (why === undefined) return;
    this.#warn({
      code: 'target-changed',
      diskId: disk.id,
      message: `disk ${disk.id}: ${why} (${path}): synced again in full`,
    });
    delete this.#state.disks[disk.id];
    entry.done = false;
    entry.mode = 'full';
    delete entry.baseSnapshotId;
  }

  /**
   * An incremental the killed run planned but never started was checked against its image then; the
   * image may have changed since, so it is checked again before the changes are applied to it.
   */
  async #checkUnstarted(disk: Disk, path: string, entry: PendingDisk): Promise<void> {
    const record = this.#state.disks[disk.id];
    const why =
      record === undefined || record.snapshotId !== entry.baseSnapshotId
        ? 'no record of the base image'
        : await this.#targetProblem(record, path, disk.id);
    if (why === undefined) return;
    this.#warn({
      code: 'target-changed',
      diskId: disk.id,
      message: `disk ${disk.id}: ${why} (${path}): a full sync instead of an incremental`,
    });
    delete this.#state.disks[disk.id];
    entry.mode = 'full';
    delete entry.baseSnapshotId;
    await this.#save();
  }

  async #runDisk(plan: DiskPlan, snapshot: SnapshotRef): Promise<void> {
    const { disk, outcome, pending } = plan;
    const { signal } = this.#options;
    try {
      // The checkpoint is bound to this disk, these snapshots and this image file: no other resumes it.
      const image = await createImage(outcome.path);
      if (pending.image !== undefined && pending.image !== image && pending.mode === 'incremental') {
        this.#toFull(plan, {
          code: 'target-changed',
          diskId: disk.id,
          message: `disk ${disk.id}: the image of the unfinished incremental was replaced or deleted (${outcome.path}): a full sync instead`,
        });
      }
      if (pending.image !== image) {
        pending.image = image;
        await this.#save();
      } else {
        await this.#checkResume(plan, transferIdOf(plan, snapshot, image));
      }
      let fullInstead: HostSyncWarning | undefined;
      try {
        await this.#transfer(plan, snapshot, image);
        fullInstead = this.#unproven(plan);
      } catch (error) {
        fullInstead = this.#fullInstead(plan, error);
      }
      if (fullInstead !== undefined) {
        this.#toFull(plan, fullInstead);
        await this.#save();
        await this.#transfer(plan, snapshot, image);
      }
      const identity = await targetIdentity(outcome.path);
      this.#state.disks[disk.id] = {
        snapshotId: snapshot.id,
        sizeBytes: disk.sizeBytes,
        syncedAt: new Date().toISOString(),
        mode: outcome.mode,
        manifestDigest: outcome.result!.manifestDigest,
        ...(identity ? { target: identity } : {}),
      };
      pending.done = true;
      outcome.status = 'done';
      await this.#save();
    } catch (error) {
      const mapped = toSyncproxyError(error, { operation: `sync disk ${disk.id}` });
      const interrupted = signal?.aborted === true && mapped.code === 'aborted';
      outcome.status = interrupted ? 'interrupted' : 'failed';
      if (!interrupted) outcome.error = mapped;
      if (pending.mode === 'full' && mapped.code === 'not-found') this.#snapshotGone = true;
    }
    this.#emit({ type: 'disk-end', diskId: disk.id, status: outcome.status });
  }

  /**
   * Why an incremental that failed with `error` is done again in full, or throws the error: a base
   * the platform lost, change tracking reset, or an image that is not the base around the changes
   * (the engine proves the bytes a chunk written in part keeps, and found one that differs).
   */
  #fullInstead(plan: DiskPlan, error: unknown): HostSyncWarning {
    const { disk, outcome, pending } = plan;
    const mapped = toSyncproxyError(error, { operation: `sync disk ${disk.id}` });
    if (pending.mode !== 'incremental' || this.#options.signal?.aborted) throw mapped;
    const base = pending.baseSnapshotId;
    if (mapped.code === 'cbt-reset') {
      const message = `disk ${disk.id}: change tracking was reset since snapshot ${base} (${mapped.message}): a full sync instead`;
      return { code: 'cbt-reset', diskId: disk.id, message };
    }
    if (mapped.code === 'not-found') {
      const message = `disk ${disk.id}: base snapshot ${base} is gone from the platform (${mapped.message}): a full sync instead`;
      return { code: 'base-lost', diskId: disk.id, message };
    }
    if (mapped.code === 'integrity' && mapped.details?.reason === TARGET_DIFFERS_FROM_MANIFEST) {
      const message = `disk ${disk.id}: chunk ${String(mapped.details.chunk)} of the image differs from its manifest around the incremental's changes (${outcome.path}): a full sync instead`;
      return { code: 'target-changed', diskId: disk.id, message };
    }
    throw mapped;
  }

  /**
   * With `verifyTarget: 'manifest'`, an incremental whose manifest does not prove every chunk of the
   * image is done again in full. A resumed one cannot prove the bytes that the chunks it wrote in part
   * kept where the stopped run may have written (the engine leaves their entries unknown); nor can one
   * run with `transfer.manifestReadBack: false`.
   */
  #unproven(plan: DiskPlan): HostSyncWarning | undefined {
    const { disk, outcome, pending } = plan;
    const unknown = outcome.result?.unknownChunks ?? 0;
    if (this.#options.verifyTarget !== 'manifest' || pending.mode !== 'incremental' || unknown === 0)
      return undefined;
    return {
      code: 'target-changed',
      diskId: disk.id,
      message: `disk ${disk.id}: ${unknown} chunk(s) of the image are not proven by its manifest after the incremental (${outcome.path}): synced again in full`,
    };
  }

  /**
   * The resume of a transfer that started: the killed run may have written any chunk of the image, so
   * its mtime says nothing; what is trusted is checked here instead. The image must still be the
   * disk's size (not truncated). With `verifyTarget: 'manifest'`, the chunks a resumable checkpoint
   * says are done must match the manifest saved with it; an incremental never rewrites the chunks
   * outside its changes, so every chunk the manifest knows must match it too (with a checkpoint or
   * without: then it re-applies its changes onto the image). Otherwise the checkpoint
   * goes and the transfer starts over (an incremental as a full sync: the image is no base any more).
   */
  async #checkResume(plan: DiskPlan, transferId: string): Promise<void> {
    const { disk, outcome, pending } = plan;
    const store = new FileCheckpointStore(`${outcome.path}.checkpoint.json`);
    const checkpoint = await store.load().catch(() => undefined);
    const resumable = checkpoint?.transferId === transferId ? checkpoint : undefined;
    let why: string | undefined;
    const size = (await targetIdentity(outcome.path))?.size;
    if (size !== disk.sizeBytes) {
      why = `the image is ${size ?? 0} bytes, not the disk's ${disk.sizeBytes}`;
    } else if (this.#options.verifyTarget === 'manifest' && (resumable || pending.mode === 'incremental')) {
      let manifest: DiskManifest | undefined;
      try {
        manifest = await readManifest(`${outcome.path}.manifest`);
      } catch {
        why = 'the image has no readable manifest to verify it against';
      }
      if (manifest !== undefined) {
        const ledger = resumable ? new ChunkLedger(resumable) : undefined;
        // The chunks an incremental's stopped run began writing hold its base, its new bytes, or a torn
        // mix: the run that follows writes them again and proves what it keeps of them (the engine).
        const touched =
          pending.mode === 'incremental'
            ? await readChunkIntents(
                intentsPathOf(`${outcome.path}.manifest`),
                transferId,
                manifest.hashAlgorithm,
              )
            : new Map<number, readonly Uint8Array[]>();
        // A re-hash of many chunks takes a while: the verify step shows it, as before an incremental.
        const check = this.#phase('verify', disk.id);
        let bad: number;
        try {
          bad = await countManifestMismatches(
            outcome.path,
            manifest,
            this.#options.signal,
            (done, total) => check.bytes(done, total),
            ledger === undefined
              ? touched.size === 0
                ? undefined
                : (i) => !touched.has(i)
              : pending.mode === 'incremental'
                ? // An incremental writes only its changes: every other chunk must be the base still.
                  // Chunks in flight when it stopped are unknown; it writes them again.
                  (i) => ledger.isDone(i) || (manifest.entry(i).state !== 'unknown' && !touched.has(i))
                : (i) => ledger.isDone(i),
          );
        } finally {
          check.end();
        }
        if (bad > 0) why = `${bad} chunk(s) of the image differ from its manifest`;
      }
    }
    if (why === undefined) return;
    await store.clear();
    const warning: HostSyncWarning = {
      code: 'target-changed',
      diskId: disk.id,
      message: `disk ${disk.id}: ${why} (${outcome.path}): the unfinished transfer starts over${pending.mode === 'incremental' ? ' as a full sync' : ''}`,
    };
    if (pending.mode === 'incremental') this.#toFull(plan, warning);
    else this.#warn(warning);
    await this.#save();
  }

  /** Turns a disk's incremental into a full sync: its image may hold part of the incremental now. */
  #toFull(plan: DiskPlan, warning: HostSyncWarning): void {
    this.#warn(warning);
    delete this.#state.disks[plan.disk.id];
    plan.pending.mode = 'full';
    delete plan.pending.baseSnapshotId;
    plan.outcome.mode = 'full';
    delete plan.outcome.baseSnapshotId;
  }

  async #transfer(plan: DiskPlan, snapshot: SnapshotRef, image: string): Promise<void> {
    const { disk, outcome, pending } = plan;
    const options = this.#options;
    const { signal } = options;
    const base =
      pending.mode === 'incremental' && pending.baseSnapshotId !== undefined
        ? this.#state.snapshots[pending.baseSnapshotId]
        : undefined;
    if (pending.mode === 'incremental' && base === undefined) {
      throw new SyncproxyError(`base snapshot ${pending.baseSnapshotId} of disk ${disk.id} is not recorded`, {
        code: 'not-found',
        retryable: false,
      });
    }
    this.#emit({
      type: 'disk-start',
      diskId: disk.id,
      mode: pending.mode,
      ...(pending.baseSnapshotId ? { baseSnapshotId: pending.baseSnapshotId } : {}),
    });
    // Only an incremental gets the image's manifest: a hash-diff reader given one yields changed chunks
    // only, which a full sync (gaps zeroed) would turn into zeroes over every unchanged chunk.
    const previousManifest = pending.mode === 'incremental' ? await manifestOf(outcome.path) : undefined;
    const transferId = transferIdOf(plan, snapshot, image);
    let reader: ChangedBlockReader | undefined;
    // The transfer's own progress events tick; once the engine re-reads what it wrote, that is the verify step.
    let step = this.#phase('transfer', disk.id, false);
    try {
      reader = await options.session.openReader(disk, {
        snapshot,
        ...(base ? { base } : {}),
        ...(previousManifest ? { previousManifest } : {}),
        ...(signal ? { signal } : {}),
      });
      const result = await transferDisk({
        ...options.transfer,
        reader,
        sink: new FileSink(outcome.path),
        full: pending.mode === 'full',
        transferId,
        ...(options.verify ? { verify: true } : {}),
        ...(options.concurrency ? { concurrency: options.concurrency } : {}),
        ...(this.#bandwidth ? { bandwidth: this.#bandwidth } : {}),
        ...(options.checkpointEveryChunks
          ? { checkpointEvery: { chunks: options.checkpointEveryChunks } }
          : {}),
        ...(options.logger ? { logger: options.logger } : {}),
        onProgress: (progress) => this.#emit({ type: 'progress', diskId: disk.id, progress }),
        onVerifyProgress: (done, total) => {
          if (done === 0) {
            step.end();
            step = this.#phase('verify', disk.id);
          }
          step.bytes(done, total);
        },
        ...(signal ? { signal } : {}),
      });
      outcome.result = result;
      for (const w of result.warnings) {
        if (w.code.startsWith('checkpoint') || w.code.startsWith('manifest')) {
          options.logger?.info({ code: w.code }, `${disk.id}: ${w.message}`);
          continue;
        }
        this.#warn({ code: w.code, diskId: disk.id, message: `${disk.id}: ${w.message}` });
      }
    } finally {
      step.end();
      await reader?.close().catch((error: unknown) => {
        options.logger?.warn(
          {
            error: toSyncproxyError(error).message,
          },
          `closing the reader of disk ${disk.id} failed`,
        );
      });
    }
  }

  /**
   * Gives up the pending sync: images it finished keep their new base; the
   * others may be half-written, so they lose theirs and get a full sync next.
   */
  #abandon(why: string): void {
    const pending = this.#state.pending;
    if (pending === undefined) return;
    // A record with the image's identity stays: the next sync checks the image against it, and a
    // half-written one fails the check. A record without one cannot be checked.
    for (const [id, entry] of Object.entries(pending.disks)) {
      if (!entry.done && this.#state.disks[id]?.target === undefined) delete this.#state.disks[id];
    }
    this.#note(`the unfinished sync of snapshot ${pending.snapshotId} is abandoned: ${why}`);
    this.#state.pending = undefined;
  }

  /** True when a disk of this run finished or left a checkpoint a resume would use. */
  async #resumeNeeds(plans: DiskPlan[]): Promise<boolean> {
    for (const plan of plans) {
      if (plan.pending.done) return true;
      if ((await targetIdentity(`${plan.outcome.path}.checkpoint.json`)) !== undefined) return true;
    }
    return false;
  }

  async #deleteUnreferenced(deleted: string[]): Promise<void> {
    const state = this.#state;
    const unreferenced = unreferencedSnapshots(state);
    if (unreferenced.length === 0) return;
    const cleanup = this.#phase('cleanup');
    try {
      await this.#deleteSnapshots(unreferenced, deleted);
    } finally {
      cleanup.end();
    }
  }

  async #deleteSnapshots(ids: readonly string[], deleted: string[]): Promise<void> {
    const state = this.#state;
    for (const id of ids) {
      try {
        await this.#options.session.deleteSnapshot(state.snapshots[id]!);
      } catch (error) {
        const mapped = toSyncproxyError(error);
        if (mapped.code !== 'not-found') {
          this.#warn({
            code: 'snapshot-not-deleted',
            message: `snapshot ${id} is no longer needed but could not be deleted (${mapped.message}); the next sync tries again`,
          });
          continue;
        }
      }
      delete state.snapshots[id];
      deleted.push(id);
      await this.#save();
    }
  }
}

function selectDisks(host: Host, diskIds: readonly string[] | undefined): Disk[] {
  const seen = new Map<string, string>();
  for (const disk of host.disks) {
    if (seen.has(disk.id))
      throw configError('hostId', `host ${host.id} lists disk ${JSON.stringify(disk.id)} twice`);
    const name = imageFileName(disk.id);
    const other = [...seen].find(([, n]) => n === name);
    if (other !== undefined)
      throw configError(
        'hostId',
        `disks ${other[0]} and ${disk.id} of host ${host.id} would share image ${name}`,
      );
    seen.set(disk.id, name);
  }
  if (diskIds === undefined || diskIds.length === 0) {
    if (host.disks.length === 0) throw configError('hostId', `host ${host.id} has no disk to sync`);
    return host.disks;
  }
  const unknown = diskIds.filter((id) => !host.disks.some((d) => d.id === id));
  if (unknown.length > 0) {
    throw configError(
      'diskIds',
      `host ${host.id} has no disk ${unknown.join(', ')} (its disks: ${host.disks.map((d) => d.id).join(', ')})`,
    );
  }
  return host.disks.filter((d) => diskIds.includes(d.id));
}

async function manifestOf(path: string): Promise<DiskManifest | undefined> {
  try {
    return await readManifest(`${path}.manifest`);
  } catch {
    return undefined;
  }
}

/** Names the transfer of one disk's plan: a checkpoint of any other transfer is never resumed. */
function transferIdOf({ disk, pending }: DiskPlan, snapshot: SnapshotRef, image: string): string {
  return [
    'host-sync/2',
    `disk=${encodeURIComponent(disk.id)}`,
    `mode=${pending.mode}`,
    `base=${pending.baseSnapshotId ?? '-'}`,
    `snapshot=${snapshot.id}`,
    `image=${image}`,
  ].join(' ');
}

/** Creates the image file when missing (owner-only) and returns its `device:inode`. */
async function createImage(path: string): Promise<string> {
  try {
    const handle = await open(path, 'a', 0o600);
    await handle.close();
  } catch (error) {
    throw toSyncproxyError(error, { operation: `create image ${path}` });
  }
  const identity = await targetIdentity(path);
  if (identity === undefined) {
    await rm(path, { force: true });
    throw new SyncproxyError(`image ${path} vanished right after it was created`, { code: 'io' });
  }
  return `${identity.dev}:${identity.ino}`;
}
