import { basename } from 'node:path';
import {
  acquireMountSlot,
  type ChangedBlockReader,
  type Clock,
  createHashDiffReader,
  type DeviceDirectories,
  type Disk,
  type DiskManifest,
  diskSnapshotOf,
  type Extent,
  type Logger,
  locateDevice,
  type MountSlotProvider,
  openDeviceReader,
  type SnapshotRef,
  SyncproxyError,
  type SyncWarning,
  withReaderWarnings,
} from '@syncproxy/core';
import type { OciVolumeAttachment, OracleClient } from './client.js';
import type { OracleConfig } from './config.js';
import type { IscsiTarget } from './iscsi-initiator.js';
import { type LifecycleWaitOptions, waitForState } from './lifecycle-wait.js';
import {
  ATTACHMENT_PREFIX,
  HOST_TAG,
  type OracleDiskSnapshotData,
  type ProxyHostTools,
  SDK_TAGS,
  SNAPSHOT_TAG,
} from './session.js';

const MIN_CHANGE_BLOCK = 4096;
const MAX_CHANGE_BLOCK = 1 << 20;

/**
 * The largest `changeBlockSizeInBytes` OCI allows (a power of 2 from 4 KiB to
 * 1 MiB) that divides the engine's chunk size, so every changed block lies in
 * whole chunks; 4 KiB (OCI's default) when none divides it.
 */
export function changeBlockSizeFor(chunkSizeBytes: number): number {
  for (let size = MAX_CHANGE_BLOCK; size >= MIN_CHANGE_BLOCK; size /= 2) {
    if (chunkSizeBytes % size === 0) return size;
  }
  return MIN_CHANGE_BLOCK;
}

export interface VolumeReaderOptions {
  client: OracleClient;
  config: OracleConfig;
  clock: Clock;
  logger: Logger;
  tools: ProxyHostTools;
  attachQueue: AttachQueue;
  /** The product's mount slots; none: the process-wide default of 50. */
  mountSlots?: MountSlotProvider;
  devices?: DeviceDirectories;
  wait?: LifecycleWaitOptions;
  disk: Disk;
  snapshot: SnapshotRef;
  base?: SnapshotRef;
  previousManifest?: DiskManifest;
  chunkSizeBytes: number;
  signal?: AbortSignal;
}

/** What a reader put on the platform and the proxy, undone in reverse on close or failure. */
interface Footprint {
  volumeId?: string;
  boot?: boolean;
  attachmentId?: string;
  iscsi?: IscsiTarget;
}

/**
 * Runs attaches at consistent device paths one at a time: two at once could
 * pick the same free path. One per session.
 */
export class AttachQueue {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const next = this.#tail.then(task, task);
    this.#tail = next.catch(() => {});
    return next;
  }
}

/**
 * Opens a reader of one disk of an OCI snapshot. Incremental: a
 * `volumeBackupDelta` volume between the base's backup and this one, attached
 * over iSCSI, scanned for its mapped ranges, and only those read. Full (no
 * base, or a delta OCI refuses): the backup restored to a volume, attached
 * paravirtualized and read whole, through a hash diff against the previous
 * manifest when there is one. Either way the reader holds a mount slot, and
 * closing it (or any failure on the way) detaches and deletes the volume.
 */
export async function openVolumeReader(options: VolumeReaderOptions): Promise<ChangedBlockReader> {
  const { disk, snapshot } = options;
  const current = diskSnapshotOf(snapshot, disk.id, { noun: 'volume' }).data as OracleDiskSnapshotData;
  const previous = options.base
    ? (diskSnapshotOf(options.base, disk.id, { role: 'base snapshot', noun: 'volume' })
        .data as OracleDiskSnapshotData)
    : undefined;
  const warnings: SyncWarning[] = [];
  const slot = await acquireMountSlot(options.mountSlots, {
    platform: 'oracle',
    hostId: snapshot.hostId,
    diskId: disk.id,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const footprint: Footprint = {};
  const cleanup = () => removeFootprint(options, footprint);
  try {
    let delta = false;
    const changeBlockSizeInBytes = changeBlockSizeFor(options.chunkSizeBytes);
    if (previous) {
      const refusal = deltaRefusal(previous, current);
      if (refusal === undefined) {
        try {
          await createVolume(options, footprint, current, {
            type: current.kind === 'boot' ? 'bootVolumeBackupDelta' : 'volumeBackupDelta',
            firstBackupId: previous.backupId,
            secondBackupId: current.backupId,
            changeBlockSizeInBytes,
          });
          delta = true;
        } catch (error) {
          // OCI answers 400 when the pair cannot be diffed (a resize, a FULL backup in between), and
          // 404 when the base backup is gone; the full restore below then says whether the new one is there.
          const refused =
            (SyncproxyError.hasCode(error, 'platform') && (error as { status?: number }).status === 400) ||
            SyncproxyError.hasCode(error, 'not-found');
          if (!refused) throw error;
          // A delta volume created before the refusal (its wait failed) goes before the full restore.
          await cleanup();
          warnings.push({
            code: 'oracle-delta-refused',
            message: `OCI refused a delta volume between backups ${previous.backupId} and ${current.backupId} of volume ${disk.id} (${error.message}): read in full and compared by hash instead`,
          });
        }
      } else {
        warnings.push({
          code: 'oracle-delta-refused',
          message: `no delta volume for volume ${disk.id}: ${refusal}; read in full and compared by hash instead`,
        });
      }
    }
    if (!delta) {
      await createVolume(options, footprint, current, {
        type: current.kind === 'boot' ? 'bootVolumeBackup' : 'volumeBackup',
        id: current.backupId,
      });
    }
    const devicePath = await attachAndLocate(options, footprint, delta ? 'iscsi' : 'paravirtualized');
    const extents = await mappedExtents(
      options,
      devicePath,
      current.sizeBytes,
      changeBlockSizeInBytes,
      delta,
      warnings,
    );
    const device = await openDeviceReader({
      path: devicePath,
      diskSize: current.sizeBytes,
      granularity: delta ? changeBlockSizeInBytes : 512,
      extents,
      mountSlot: slot,
      onClose: cleanup,
    });
    options.logger.debug(
      {
        volumeId: disk.id,
        mode: delta ? 'delta' : 'full',
        extents: Array.isArray(extents) ? extents.length : 'allocated',
      },
      'oracle: reader open',
    );
    // A fallback after a refused delta still sends only what changed: the hash diff finds it.
    const reader =
      previous && !delta
        ? createHashDiffReader({
            reader: device,
            ...(options.previousManifest ? { previousManifest: options.previousManifest } : {}),
          })
        : device;
    return withReaderWarnings(reader, warnings);
  } catch (error) {
    try {
      await cleanup();
    } catch (cleanupError) {
      options.logger.error(
        {
          volumeId: footprint.volumeId,
          attachmentId: footprint.attachmentId,
          error: (cleanupError as Error).message,
        },
        'oracle: cleanup after a failed open left resources',
      );
    }
    await slot.release();
    throw error;
  }
}

/**
 * The ranges to read. A delta volume's mapped ranges are exactly the changed
 * blocks. A restored volume is thin-provisioned too, so the same scan names
 * what it holds; where the scan is not available (no sg3_utils, a device that
 * does not answer GET LBA STATUS) the whole volume is read, with a warning.
 */
async function mappedExtents(
  options: VolumeReaderOptions,
  devicePath: string,
  diskSize: number,
  changeBlockSizeBytes: number,
  delta: boolean,
  warnings: SyncWarning[],
): Promise<Extent[] | 'allocated'> {
  const scan = () =>
    options.tools.scanner.scan({
      devicePath,
      diskSize,
      changeBlockSizeBytes,
      ...(options.signal ? { signal: options.signal } : {}),
    });
  if (delta) return scan();
  try {
    return await scan();
  } catch (error) {
    if (options.signal?.aborted) throw error;
    warnings.push({
      code: 'oracle-scan-unavailable',
      message: `the mapped ranges of the restored volume could not be scanned (${(error as Error).message}): the whole volume is read`,
    });
    return 'allocated';
  }
}

/** Why OCI would refuse a delta between these backups (its documented constraints), or undefined. */
function deltaRefusal(previous: OracleDiskSnapshotData, current: OracleDiskSnapshotData): string | undefined {
  if (previous.volumeId !== current.volumeId) return 'the base backup is of another volume';
  if (previous.sizeBytes !== current.sizeBytes) return 'the volume was resized since the base backup';
  if (current.backupType !== 'INCREMENTAL') return 'the new backup is not INCREMENTAL';
  return undefined;
}

async function createVolume(
  options: VolumeReaderOptions,
  footprint: Footprint,
  current: OracleDiskSnapshotData,
  sourceDetails: Record<string, unknown>,
): Promise<void> {
  const { client, config, snapshot } = options;
  const freeformTags = { ...SDK_TAGS, [SNAPSHOT_TAG]: snapshot.id, [HOST_TAG]: snapshot.hostId };
  const details = {
    availabilityDomain: config.proxyAvailabilityDomain,
    compartmentId: current.compartmentId,
    displayName: `${ATTACHMENT_PREFIX}${String(sourceDetails.type)}-${current.volumeId.slice(-12)}`,
    freeformTags,
    sourceDetails,
  };
  const boot = current.kind === 'boot';
  const created = boot
    ? await client.createBootVolume(details as never, options.signal)
    : await client.createVolume(details as never, options.signal);
  footprint.volumeId = created.id;
  footprint.boot = boot;
  const ready = await waitForState({
    what: `${String(sourceDetails.type)} volume ${created.id}`,
    get: (): Promise<{ lifecycleState?: string; isHydrated?: boolean }> =>
      boot ? client.getBootVolume(created.id, options.signal) : client.getVolume(created.id, options.signal),
    target: 'AVAILABLE',
    failed: ['FAULTY', 'TERMINATING', 'TERMINATED'],
    clock: options.clock,
    ...(options.wait ? { wait: options.wait } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  // A restored volume is readable at once, but its map of written blocks is only whole once OCI has
  // copied the backup in (isHydrated): the mapped-range scan of a full read waits for that.
  if (!String(sourceDetails.type).endsWith('Delta') && !ready.isHydrated) {
    await waitForState({
      what: `hydration of volume ${created.id}`,
      get: async () => {
        const v = boot
          ? await client.getBootVolume(created.id, options.signal)
          : await client.getVolume(created.id, options.signal);
        return { lifecycleState: v.isHydrated ? 'HYDRATED' : (v.lifecycleState ?? 'UNKNOWN') };
      },
      target: 'HYDRATED',
      failed: ['FAULTY', 'TERMINATING', 'TERMINATED'],
      clock: options.clock,
      ...(options.wait ? { wait: options.wait } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
  }
}

/**
 * Attaches the volume to the proxy and finds its device. Paravirtualized
 * attachments ask for a consistent device path (`/dev/oracleoci/oraclevdX`)
 * and find it under `/dev/oracleoci`; iSCSI attachments log in (unless the
 * Oracle Cloud Agent does it) and find `ip-<ip>:<port>-iscsi-<iqn>-lun-1`
 * under `/dev/disk/by-path`. `ctx.devices.byIdDir` replaces both directories.
 */
async function attachAndLocate(
  options: VolumeReaderOptions,
  footprint: Footprint,
  type: 'paravirtualized' | 'iscsi',
): Promise<string> {
  const { client, config, signal } = options;
  const volumeId = footprint.volumeId!;
  const displayName = `${ATTACHMENT_PREFIX}${volumeId.slice(-12)}`;
  let attachment: OciVolumeAttachment;
  if (type === 'paravirtualized') {
    attachment = await options.attachQueue.run(async () => {
      const [device] = await client.listFreeDevices(config.proxyInstanceId, signal);
      if (device === undefined) {
        throw new SyncproxyError(`the sync proxy ${config.proxyInstanceId} has no free device path left`, {
          code: 'no-capacity',
          platform: 'oracle',
        });
      }
      const created = await client.attachVolume(
        { instanceId: config.proxyInstanceId, volumeId, type, displayName, device },
        signal,
      );
      footprint.attachmentId = created.id;
      return waitAttached(options, created.id);
    });
  } else {
    const created = await client.attachVolume(
      { instanceId: config.proxyInstanceId, volumeId, type, displayName },
      signal,
    );
    footprint.attachmentId = created.id;
    attachment = await waitAttached(options, created.id);
  }
  if (type === 'iscsi') {
    if (!attachment.iqn || !attachment.ipv4 || !attachment.port) {
      throw new SyncproxyError(`iSCSI attachment ${attachment.id} names no target (iqn, ipv4, port)`, {
        code: 'protocol',
        platform: 'oracle',
      });
    }
    const target = { iqn: attachment.iqn, ipv4: attachment.ipv4, port: attachment.port };
    if (!attachment.isAgentAutoIscsiLoginEnabled) {
      footprint.iscsi = target;
      await options.tools.iscsi.login(target, signal);
    }
    return locateDevice({
      serial: `${target.ipv4}:${target.port}-iscsi-${target.iqn}-lun-1`,
      devices: { byIdDir: options.devices?.byIdDir ?? '/dev/disk/by-path' },
      ...(signal ? { signal } : {}),
    });
  }
  if (!attachment.device) {
    throw new SyncproxyError(`paravirtualized attachment ${attachment.id} has no device path`, {
      code: 'protocol',
      platform: 'oracle',
    });
  }
  return locateDevice({
    serial: basename(attachment.device),
    devices: { byIdDir: options.devices?.byIdDir ?? '/dev/oracleoci' },
    ...(signal ? { signal } : {}),
  });
}

function waitAttached(options: VolumeReaderOptions, attachmentId: string): Promise<OciVolumeAttachment> {
  return waitForState({
    what: `attachment ${attachmentId} to the sync proxy`,
    get: () => options.client.getVolumeAttachment(attachmentId, options.signal),
    target: 'ATTACHED',
    failed: ['DETACHING', 'DETACHED'],
    clock: options.clock,
    ...(options.wait ? { wait: options.wait } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
}

/**
 * Logs out, detaches (waiting for DETACHED: OCI refuses to delete an attached
 * volume) and deletes the volume, each step tried even when an earlier one
 * failed; the first failure is thrown at the end. Runs with a signal of its
 * own, so an aborted sync still cleans up.
 */
async function removeFootprint(options: VolumeReaderOptions, footprint: Footprint): Promise<void> {
  const { client } = options;
  const never = new AbortController().signal;
  const failures: unknown[] = [];
  const step = async (run: () => Promise<void>) => {
    try {
      await run();
    } catch (error) {
      if (!SyncproxyError.hasCode(error, 'not-found')) failures.push(error);
    }
  };
  if (footprint.iscsi) {
    const target = footprint.iscsi;
    await step(() => options.tools.iscsi.logout(target));
    footprint.iscsi = undefined;
  }
  if (footprint.attachmentId) {
    const id = footprint.attachmentId;
    await step(async () => {
      try {
        await client.detachVolume(id, never);
      } catch (error) {
        // 409 when someone (a sweep) detached it already: what matters is that it ends DETACHED.
        if (!SyncproxyError.hasCode(error, 'conflict')) throw error;
      }
      await waitForState({
        what: `attachment ${id}`,
        get: () => client.getVolumeAttachment(id, never),
        target: 'DETACHED',
        clock: options.clock,
        ...(options.wait ? { wait: options.wait } : {}),
      });
    });
    footprint.attachmentId = undefined;
  }
  if (footprint.volumeId) {
    const id = footprint.volumeId;
    await step(() => (footprint.boot ? client.deleteBootVolume(id, never) : client.deleteVolume(id, never)));
    footprint.volumeId = undefined;
  }
  if (failures.length > 0) throw failures[0];
}
