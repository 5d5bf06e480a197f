import { type Logger, planSweep, SweepLedger, type SweepOptions, type SweepReport } from '@syncproxy/core';
import type { FcSite, FusionComputeClient } from './client.js';

/** Snapshots and backup resources this SDK creates carry this description prefix; `sweep` looks for it. */
export const SWEEP_TAG = 'syncproxy:';

/**
 * FusionCompute writes times as `YYYY-MM-DD hh:mm:ss` without a zone; they are
 * read as UTC (UNCONFIRMED: a VRM set to another zone makes `olderThan` off by
 * its offset). ISO-8601 times pass through.
 */
export function fcTimeToIso(time: string | undefined): string | undefined {
  if (time === undefined) return undefined;
  return /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/.test(time) ? `${time.replace(' ', 'T')}Z` : time;
}

/**
 * Lists the backup resources, then the VM snapshots, whose description starts
 * with {@link SWEEP_TAG} (set by `createSnapshot` and by every reader's backup
 * resource) and, unless it is a dry run, deletes those created before
 * `olderThan` and not kept. Anything without the tag is never touched.
 */
export async function sweepFusionCompute(
  client: FusionComputeClient,
  sites: FcSite[],
  logger: Logger,
  options: SweepOptions | undefined,
  sessionSignal: AbortSignal | undefined,
): Promise<SweepReport> {
  const plan = planSweep(options);
  const signal = plan.signal ?? sessionSignal;
  const ledger = new SweepLedger(plan, logger);
  const consider = (
    kind: string,
    id: string,
    createTime: string | undefined,
    remove: () => Promise<void>,
  ) => {
    const createdAt = fcTimeToIso(createTime);
    return ledger.consider({ kind, id, ...(createdAt ? { createdAt } : {}) }, remove);
  };
  for (const site of sites) {
    for (const listed of await client.vms(site.uri, signal)) {
      const vm = listed.vmConfig?.disks ? listed : await client.vm(listed.uri, signal);
      // Backup resources first: they hold the snapshots they read.
      for (const disk of vm.vmConfig?.disks ?? []) {
        for (const r of await client.backupResources(disk.volumeUri, signal)) {
          if (!r.description?.startsWith(SWEEP_TAG)) continue;
          await consider('backup-resource', r.id, r.createTime, () =>
            client.deleteBackupResource(disk.volumeUri, r.id, signal),
          );
        }
      }
      for (const s of await client.snapshots(vm.uri, signal)) {
        if (!s.description?.startsWith(SWEEP_TAG)) continue;
        await consider('snapshot', s.urn, s.createTime, () => client.deleteSnapshot(s.uri, signal));
      }
    }
  }
  return ledger.report();
}
