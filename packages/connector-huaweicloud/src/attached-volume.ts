import { randomUUID } from 'node:crypto';
import {
  acquireMountSlot,
  type ChangedBlockReader,
  type DeviceDirectories,
  type Logger,
  locateDevice,
  type MountSlotProvider,
  openDeviceReader,
  SyncproxyError,
} from '@syncproxy/core';
import type { HuaweiCloudApi } from './cloud-api.js';

/** Metadata every volume this connector creates carries, so leftovers can be found and swept. */
export const VOLUME_METADATA = {
  managed: 'syncproxy_managed',
  backup: 'syncproxy_backup',
  /** Unique per reader: finds the volume when the create job failed before naming it. */
  reader: 'syncproxy_reader',
} as const;

export interface AttachedVolumeOptions {
  api: HuaweiCloudApi;
  logger: Logger;
  /** The proxy ECS the volume is attached to. */
  proxyId: string;
  volumeBackupId: string;
  /** The source volume (for names and logs). */
  volumeId: string;
  sizeGb: number;
  diskSize: number;
  availabilityZone: string;
  mountSlots?: MountSlotProvider;
  devices?: DeviceDirectories;
  /** How long to wait for the attached device to appear. Default 120 s. */
  locateTimeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * The fallback data path: a volume made from the volume backup, attached to
 * the proxy ECS, found under /dev/disk/by-id by its serial (KVM ECSs expose
 * the first 20 characters of the volume id as the virtio serial) and read as
 * a device. The reader holds a mount slot; closing it, or any failure on the
 * way, detaches and deletes the volume and gives the slot back.
 */
export async function openAttachedVolumeReader(options: AttachedVolumeOptions): Promise<ChangedBlockReader> {
  const { api, logger, proxyId, signal } = options;
  const slot = await acquireMountSlot(options.mountSlots, {
    platform: 'huaweicloud',
    diskId: options.volumeId,
    ...(signal ? { signal } : {}),
  });
  let volumeId: string | undefined;
  let requested = false;
  let attached = false;
  const marker = randomUUID();
  const cleanup = async (): Promise<void> => {
    if (volumeId === undefined && requested) {
      // The create request went out but its job never named the volume: find it by this reader's marker.
      const found = await api.listVolumes({ metadata: { [VOLUME_METADATA.reader]: marker } });
      volumeId = found[0]?.id;
      requested = false;
    }
    // Cleanup runs after success and after failures, so it takes no signal: an aborted sync still removes its volume.
    if (volumeId !== undefined && attached) {
      const { jobId } = await api.detachVolume(proxyId, volumeId);
      await api.waitJob('ecs', jobId, `detach volume ${volumeId} from proxy ${proxyId}`);
      attached = false;
    }
    if (volumeId !== undefined) {
      const { jobId } = await api.deleteVolume(volumeId);
      await api.waitJob('evs', jobId, `delete volume ${volumeId}`);
      volumeId = undefined;
    }
  };
  try {
    requested = true;
    const created = await api.createVolumeFromBackup(
      {
        backupId: options.volumeBackupId,
        availabilityZone: options.availabilityZone,
        sizeGb: options.sizeGb,
        name: `syncproxy-${options.volumeId.slice(0, 8)}-${options.volumeBackupId.slice(0, 8)}`,
        metadata: {
          [VOLUME_METADATA.managed]: 'true',
          [VOLUME_METADATA.backup]: options.volumeBackupId,
          [VOLUME_METADATA.reader]: marker,
        },
      },
      signal,
    );
    const job = await api.waitJob(
      'evs',
      created.jobId,
      `create a volume from backup ${options.volumeBackupId}`,
      signal,
    );
    volumeId = job.entities?.volume_id;
    if (volumeId === undefined) {
      throw new SyncproxyError(`EVS job ${created.jobId} succeeded without naming the new volume`, {
        code: 'protocol',
        retryable: false,
      });
    }
    const attach = await api.attachVolume(proxyId, volumeId, signal);
    // Counted as attached from the request on: a failed wait still detaches.
    attached = true;
    await api.waitJob('ecs', attach.jobId, `attach volume ${volumeId} to proxy ${proxyId}`, signal);
    const path = await locateDevice({
      serial: volumeId.slice(0, 20),
      ...(options.devices ? { devices: options.devices } : {}),
      timeoutMs: options.locateTimeoutMs ?? 120_000,
      ...(signal ? { signal } : {}),
    });
    logger.debug(
      {
        volumeId,
        path,
        backupId: options.volumeBackupId,
      },
      'attached a volume made from a backup',
    );
    return await openDeviceReader({ path, diskSize: options.diskSize, mountSlot: slot, onClose: cleanup });
  } catch (error) {
    try {
      await cleanup();
    } catch (cleanupError) {
      logger.warn(
        {
          volumeId,
          error: (cleanupError as Error)?.message,
        },
        'could not remove the volume of a failed read (sweep removes it later)',
      );
    }
    await slot.release();
    throw error;
  }
}
