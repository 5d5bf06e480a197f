import { type SweepOptions, type SweepReport, type SweptResource, SyncproxyError } from '@syncproxy/core';
import { VOLUME_METADATA } from './attached-volume.js';
import type { ObsBucket } from './bucket.js';
import type { HuaweiCloudApi } from './cloud-api.js';

export interface SweepPlatformOptions extends SweepOptions {
  api: HuaweiCloudApi;
  bucket: ObsBucket;
  /** The description prefix of checkpoints this connector made. */
  checkpointMark: string;
}

/** Where exported objects live in the bucket; nothing else there is touched. */
export const EXPORT_PREFIX = 'syncproxy/';

/**
 * Finds, and unless `dryRun` removes, what this connector left on the
 * platform: attachments of its volumes (detached first), the volumes (by
 * their `syncproxy_managed` metadata), exported objects (under `syncproxy/`
 * in the bucket) and CBR backups (by the checkpoint description mark). Never
 * anything else, never what `keep` names.
 */
export async function sweepPlatform(options: SweepPlatformOptions): Promise<SweepReport> {
  const { api, bucket, signal } = options;
  const olderThan = options.olderThan === undefined ? undefined : new Date(options.olderThan).getTime();
  const keep = new Set(options.keep ?? []);
  const isOld = (createdAt: string | undefined): boolean =>
    olderThan === undefined || createdAt === undefined || Date.parse(createdAt) < olderThan;
  const resources: SweptResource[] = [];
  const act = async (
    resource: Omit<SweptResource, 'deleted'>,
    remove: () => Promise<void>,
  ): Promise<void> => {
    const wanted = !options.dryRun && !keep.has(resource.id) && isOld(resource.createdAt);
    if (wanted) await remove();
    resources.push({ ...resource, deleted: wanted });
  };

  const volumes = await api.listVolumes({
    metadata: { [VOLUME_METADATA.managed]: 'true' },
    ...(signal ? { signal } : {}),
  });
  for (const volume of volumes) {
    if (volume.metadata?.[VOLUME_METADATA.managed] !== 'true') continue;
    let detached = true;
    for (const attachment of volume.attachments ?? []) {
      const id = `${attachment.server_id}/${volume.id}`;
      const resource = {
        kind: 'attachment',
        id,
        ...(volume.created_at ? { createdAt: volume.created_at } : {}),
      };
      await act(resource, async () => {
        const { jobId } = await api.detachVolume(attachment.server_id, volume.id, signal);
        await api.waitJob('ecs', jobId, `detach volume ${volume.id}`, signal);
      });
      detached &&= resources[resources.length - 1]!.deleted;
    }
    const resource = {
      kind: 'volume',
      id: volume.id,
      ...(volume.created_at ? { createdAt: volume.created_at } : {}),
    };
    if (!detached) {
      resources.push({ ...resource, deleted: false });
      continue;
    }
    await act(resource, async () => {
      const { jobId } = await api.deleteVolume(volume.id, signal);
      await api.waitJob('evs', jobId, `delete volume ${volume.id}`, signal);
    });
  }

  let objects: Awaited<ReturnType<ObsBucket['list']>> = [];
  try {
    objects = await bucket.list(EXPORT_PREFIX, signal);
  } catch (error) {
    // No bucket yet: nothing was exported.
    if (!SyncproxyError.hasCode(error, 'not-found')) throw error;
  }
  for (const object of objects) {
    await act(
      { kind: 'object', id: object.key, ...(object.lastModified ? { createdAt: object.lastModified } : {}) },
      () => bucket.delete(object.key, signal),
    );
  }

  const backups = await api.listBackups(signal ? { signal } : {});
  for (const backup of backups) {
    if (!backup.description?.startsWith(options.checkpointMark)) continue;
    if (keep.has(backup.checkpoint_id)) {
      resources.push({ kind: 'snapshot', id: backup.id, deleted: false });
      continue;
    }
    await act(
      { kind: 'snapshot', id: backup.id, ...(backup.created_at ? { createdAt: backup.created_at } : {}) },
      () => api.deleteBackup(backup.id, signal),
    );
  }
  return { resources };
}
