import {
  syncHost as coreSyncHost,
  type DiskSyncOutcome,
  type DiskSyncStatus,
  type HostSyncMode,
  type HostSyncOptions,
  type HostSyncReport,
  imageFileName,
  type VerifyTargetLevel,
} from '@syncproxy/core';
import type { ProgressDisplay } from './progress-display.js';

export type { DiskSyncOutcome, DiskSyncStatus };
export { imageFileName };

/** What `syncproxy sync` and `demo` report: core's {@link HostSyncReport}. */
export type SyncReport = HostSyncReport;

export interface SyncHostOptions extends Omit<HostSyncOptions, 'onEvent' | 'mode' | 'verifyTarget'> {
  /** `auto` (default), `full` or `incremental`. */
  mode?: HostSyncMode;
  verifyTarget?: VerifyTargetLevel;
  progress: ProgressDisplay;
  /** Notes for a person (what is resumed, what is deleted, warnings as they happen). */
  notify?: (line: string) => void;
}

/**
 * The CLI's sync: core's `syncHost`, its events shown on the progress display
 * and as notes. Nothing of the workflow lives here.
 */
export async function syncHost(options: SyncHostOptions): Promise<SyncReport> {
  const { progress, notify = () => {}, ...rest } = options;
  const trackers = new Map<string, ReturnType<ProgressDisplay['track']>>();
  try {
    return await coreSyncHost({
      ...rest,
      onEvent: (event) => {
        switch (event.type) {
          case 'progress': {
            let track = trackers.get(event.diskId);
            if (track === undefined) {
              track = progress.track(event.diskId);
              trackers.set(event.diskId, track);
            }
            track(event.progress);
            break;
          }
          case 'disk-end':
            if (trackers.has(event.diskId))
              progress.end(event.diskId, event.status === 'already-done' ? 'done' : event.status);
            trackers.delete(event.diskId);
            break;
          case 'snapshot':
            if (event.created)
              notify(
                `snapshot ${event.snapshotId} created (${event.mode} sync of ${event.diskCount} disk(s))`,
              );
            break;
          case 'warning':
            notify(`warning (${event.warning.code}): ${event.warning.message}`);
            break;
          case 'note':
            notify(event.message);
            break;
          case 'phase':
            progress.phase(event);
            break;
          default:
            break;
        }
      },
    });
  } finally {
    progress.stop();
  }
}
