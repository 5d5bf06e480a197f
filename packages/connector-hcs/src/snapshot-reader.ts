import { createHash } from 'node:crypto';
import {
  acquireMountSlot,
  type ChangedBlockReader,
  type Clock,
  createHashDiffReader,
  type DeviceDirectories,
  type Disk,
  DiskManifest,
  diskSnapshotOf,
  isAllZero,
  type Logger,
  locateDevice,
  type MountSlotProvider,
  openDeviceReader,
  type SnapshotRef,
  SyncproxyError,
  type SyncWarning,
  withReaderWarnings,
} from '@syncproxy/core';
import type { HcsConfig } from './config.js';
import { DORADO_TYPE, type DoradoClient } from './dorado-client.js';
import { PLATFORM } from './hcs-client.js';
import { describeAs, type HcsDiskSnapshotData, SDK_PREFIX, shortId } from './session.js';

export interface SnapshotReaderOptions {
  config: HcsConfig;
  storageOf(url: string): DoradoClient;
  logger: Logger;
  clock: Clock;
  disk: Disk;
  snapshot: SnapshotRef;
  base?: SnapshotRef;
  previousManifest?: DiskManifest;
  mountSlots?: MountSlotProvider;
  devices?: DeviceDirectories;
  locateTimeoutMs?: number;
  chunkSizeBytes: number;
  signal?: AbortSignal;
}

/** What a reader put on the Dorado, undone in reverse on close or failure. */
interface Footprint {
  storage: DoradoClient;
  viewId?: string;
  hostGroupId?: string;
  lunGroupId?: string;
  viewHasHostGroup?: boolean;
  viewHasLunGroup?: boolean;
  /** Snapshots added to the LUN group. */
  entries: string[];
}

/** The proxy's host group per storage: made (or found) once, kept for later syncs. */
const hostGroups = new WeakMap<DoradoClient, Promise<string>>();

function proxyHostGroup(storage: DoradoClient, config: HcsConfig): Promise<string> {
  let found = hostGroups.get(storage);
  if (!found) {
    found = (async () => {
      const { hostName, initiators } = config.proxy;
      const host =
        (await storage.findByName('host', hostName)) ??
        (await storage.create('host', { NAME: hostName, OPERATIONSYSTEM: 0 }));
      for (const iqn of initiators) await storage.addInitiator(host.ID, iqn);
      const groupName = `${SDK_PREFIX}hg-${hostName}`.slice(0, 31);
      const group =
        (await storage.findByName('hostgroup', groupName)) ??
        (await storage.create('hostgroup', { NAME: groupName }));
      const members = await storage.hostsOfGroup(group.ID);
      if (!members.some((m) => m.ID === host.ID)) await storage.associateHost(group.ID, host.ID);
      return group.ID;
    })();
    hostGroups.set(storage, found);
    found.catch(() => hostGroups.delete(storage));
  }
  return found;
}

/**
 * Opens a reader of one disk of an HCS snapshot: the Dorado LUN snapshot is
 * put in a LUN group of its own, mapped to the proxy's host group through a
 * mapping view, found on the proxy by its WWN and read. Incremental is a
 * hash diff: against `previousManifest` when the caller has one, else
 * against the base snapshot (mapped alongside and hashed first) while the
 * storage still holds it. The reader holds a mount slot; closing it (or a
 * failure on the way) unmaps and removes the LUN group and mapping view.
 */
export async function openSnapshotReader(options: SnapshotReaderOptions): Promise<ChangedBlockReader> {
  const { disk, snapshot } = options;
  const current = diskSnapshotOf(snapshot, disk.id, { noun: 'volume' }).data as HcsDiskSnapshotData;
  const previous =
    options.base && !options.previousManifest
      ? (diskSnapshotOf(options.base, disk.id, { role: 'base snapshot', noun: 'volume' })
          .data as HcsDiskSnapshotData)
      : undefined;
  const storage = options.storageOf(current.storage);
  const slot = await acquireMountSlot(options.mountSlots, {
    platform: PLATFORM,
    hostId: snapshot.hostId,
    diskId: disk.id,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const footprint: Footprint = { storage, entries: [] };
  const warnings: SyncWarning[] = [];
  const cleanup = () => unmap(footprint);
  try {
    const usableBase = await baseToHash(storage, current, previous, warnings);
    await map(options, footprint, usableBase ? [current, usableBase] : [current]);
    const locate = (wwn: string) =>
      locateDevice({
        wwn,
        ...(options.devices ? { devices: options.devices } : {}),
        ...(options.locateTimeoutMs !== undefined ? { timeoutMs: options.locateTimeoutMs } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
      });
    let previousManifest = options.previousManifest;
    if (usableBase)
      previousManifest = await manifestOf(
        await locate(usableBase.snapshotWwn),
        usableBase.sizeBytes,
        options,
      );
    const path = await locate(current.snapshotWwn);
    // 'allocated': a mapped LUN is a block device, which shows no holes, so it is read whole; an
    // image file (the mock's) is read by its data ranges only.
    const device = await openDeviceReader({
      path,
      diskSize: current.sizeBytes,
      extents: 'allocated',
      mountSlot: slot,
      onClose: cleanup,
    });
    options.logger.debug(
      {
        volumeId: disk.id,
        snapshotId: current.snapshotId,
        mode: previousManifest ? 'hash-diff' : 'full',
      },
      'hcs: reader open',
    );
    if (previousManifest === undefined && options.base === undefined) return device;
    const reader = createHashDiffReader({
      reader: device,
      chunkSizeBytes: options.chunkSizeBytes,
      ...(previousManifest ? { previousManifest } : {}),
    });
    return withReaderWarnings(reader, warnings);
  } catch (error) {
    try {
      await cleanup();
    } catch (cleanupError) {
      options.logger.error(
        {
          storage: storage.url,
          mappingViewId: footprint.viewId,
          lunGroupId: footprint.lunGroupId,
          error: (cleanupError as Error).message,
        },
        'hcs: cleanup after a failed open left resources',
      );
    }
    await slot.release();
    throw error;
  }
}

/**
 * The base snapshot to hash when the caller has no manifest: only one on the
 * same storage, of the same size, and still there (a base a caller deleted
 * means every chunk is sent, with a warning, rather than a failed sync).
 */
async function baseToHash(
  storage: DoradoClient,
  current: HcsDiskSnapshotData,
  previous: HcsDiskSnapshotData | undefined,
  warnings: SyncWarning[],
): Promise<HcsDiskSnapshotData | undefined> {
  if (!previous) return undefined;
  let why: string | undefined;
  if (previous.storage !== current.storage) why = 'it is on another storage';
  else if (previous.sizeBytes !== current.sizeBytes) why = 'the volume was resized since';
  else {
    try {
      await storage.getSnapshot(previous.snapshotId);
    } catch (error) {
      if (!SyncproxyError.hasCode(error, 'not-found')) throw error;
      why = 'the storage no longer holds it';
    }
  }
  if (why === undefined) return previous;
  warnings.push({
    code: 'hcs-base-unavailable',
    message: `the base snapshot ${previous.snapshotId} of volume ${current.volumeId} cannot be compared (${why}) and no previous manifest was given: every chunk is sent`,
  });
  return undefined;
}

/**
 * The SHA-256 per chunk of the base snapshot as mapped: what the previous
 * sync sent. Only chunks its data ranges touch are read (all of them on a
 * block device); the others read as zeroes.
 */
async function manifestOf(
  path: string,
  diskSize: number,
  options: SnapshotReaderOptions,
): Promise<DiskManifest> {
  const reader = await openDeviceReader({ path, diskSize, extents: 'allocated' });
  try {
    const { chunkSizeBytes, signal } = options;
    const manifest = DiskManifest.create({ diskSize, chunkSizeBytes });
    const withData = new Set<number>();
    for await (const extent of reader.extents(signal ? { signal } : undefined)) {
      if (extent.kind !== 'data' || extent.length === 0) continue;
      const last = Math.floor((extent.offset + extent.length - 1) / chunkSizeBytes);
      for (let index = Math.floor(extent.offset / chunkSizeBytes); index <= last; index++)
        withData.add(index);
    }
    for (let index = 0; index < manifest.chunkCount; index++) {
      if (signal?.aborted) throw new SyncproxyError('hash of the base snapshot aborted', { code: 'aborted' });
      if (!withData.has(index)) {
        manifest.set(index, 'zero');
        continue;
      }
      const data = await reader.read(index * chunkSizeBytes, manifest.chunkLength(index));
      manifest.set(index, isAllZero(data) ? 'zero' : createHash('sha256').update(data).digest());
    }
    manifest.complete = true;
    manifest.pendingFrom = manifest.chunkCount;
    return manifest;
  } finally {
    await reader.close();
  }
}

async function map(
  options: SnapshotReaderOptions,
  footprint: Footprint,
  disks: HcsDiskSnapshotData[],
): Promise<void> {
  const { storage } = footprint;
  const description = describeAs(options.clock.now(), disks[0]!.snapshotId);
  footprint.hostGroupId = await proxyHostGroup(storage, options.config);
  const lunGroup = await storage.create('lungroup', {
    NAME: `${SDK_PREFIX}lg-${shortId()}`,
    DESCRIPTION: description,
    APPTYPE: 0,
  });
  footprint.lunGroupId = lunGroup.ID;
  for (const d of disks) {
    await storage.addSnapshotToLunGroup(lunGroup.ID, d.snapshotId);
    footprint.entries.push(d.snapshotId);
  }
  const view = await storage.create('mappingview', {
    NAME: `${SDK_PREFIX}mv-${shortId()}`,
    DESCRIPTION: description,
  });
  footprint.viewId = view.ID;
  await storage.associateMappingView(view.ID, DORADO_TYPE.HOSTGROUP, footprint.hostGroupId);
  footprint.viewHasHostGroup = true;
  await storage.associateMappingView(view.ID, DORADO_TYPE.LUNGROUP, lunGroup.ID);
  footprint.viewHasLunGroup = true;
}

/**
 * Unmaps: the mapping view's associations and the view, the LUN group's
 * entries and the group. Every step is tried even when one before failed
 * (the first failure is thrown at the end); what is gone already is fine.
 */
async function unmap(footprint: Footprint): Promise<void> {
  const { storage } = footprint;
  const failures: unknown[] = [];
  const step = async (run: () => Promise<void>) => {
    try {
      await run();
    } catch (error) {
      if (!SyncproxyError.hasCode(error, 'not-found')) failures.push(error);
    }
  };
  const viewId = footprint.viewId;
  if (viewId) {
    if (footprint.viewHasLunGroup)
      await step(() => storage.dissociateMappingView(viewId, DORADO_TYPE.LUNGROUP, footprint.lunGroupId!));
    footprint.viewHasLunGroup = false;
    if (footprint.viewHasHostGroup)
      await step(() => storage.dissociateMappingView(viewId, DORADO_TYPE.HOSTGROUP, footprint.hostGroupId!));
    footprint.viewHasHostGroup = false;
    await step(() => storage.remove('mappingview', viewId));
    footprint.viewId = undefined;
  }
  const lunGroupId = footprint.lunGroupId;
  if (lunGroupId) {
    for (const snapshotId of footprint.entries.splice(0))
      await step(() => storage.removeSnapshotFromLunGroup(lunGroupId, snapshotId));
    await step(() => storage.remove('lungroup', lunGroupId));
    footprint.lunGroupId = undefined;
  }
  if (failures.length > 0) throw failures[0];
}
