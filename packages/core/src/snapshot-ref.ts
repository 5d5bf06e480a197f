import type { DiskSnapshotRef, SnapshotRef } from './contracts/connector.js';
import { SyncproxyError } from './errors/syncproxy-error.js';

/**
 * The part of `snapshot` that covers disk `diskId`, or a `not-found` error
 * naming both: what every connector's `openReader` does first with the
 * snapshot (and the base) it is handed. `role` names it in the message
 * ("snapshot", "base snapshot"); `noun` is the platform's word for a disk.
 */
export function diskSnapshotOf(
  snapshot: SnapshotRef,
  diskId: string,
  options: { role?: string; noun?: string } = {},
): DiskSnapshotRef {
  const ref = snapshot.disks.find((d) => d.diskId === diskId);
  if (ref === undefined) {
    throw new SyncproxyError(
      `${options.noun ?? 'disk'} ${diskId} is not part of ${options.role ?? 'snapshot'} ${snapshot.id}`,
      { code: 'not-found', retryable: false, platform: snapshot.platform },
    );
  }
  return ref;
}
