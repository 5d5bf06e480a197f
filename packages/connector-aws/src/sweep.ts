import { type Logger, planSweep, SweepLedger, type SweepOptions, type SweepReport } from '@syncproxy/core';
import type { AwsClient } from './client.js';

/** Tags every snapshot this connector creates carries, so leftovers can be found and swept. */
export const SNAPSHOT_TAGS = {
  managed: 'syncproxy:managed',
  host: 'syncproxy:host',
  createdAt: 'syncproxy:created-at',
  platform: 'syncproxy:platform',
} as const;

/**
 * Lists the EBS snapshots this SDK made (tag `syncproxy:managed=true`, set by
 * `createSnapshot` on every snapshot it makes, of whatever platform
 * registration) and, unless it is a dry run, deletes those created before
 * `olderThan` and not kept. DescribeSnapshots filters by the tag on the server,
 * so a snapshot without it is never even listed.
 */
export async function sweepSnapshots(
  client: AwsClient,
  logger: Logger,
  options: SweepOptions | undefined,
  sessionSignal: AbortSignal | undefined,
): Promise<SweepReport> {
  const plan = planSweep(options);
  const signal = plan.signal ?? sessionSignal;
  const snapshots = await client.describeSnapshots({
    filters: [{ Name: `tag:${SNAPSHOT_TAGS.managed}`, Values: ['true'] }],
    signal,
  });
  const ledger = new SweepLedger(plan, logger);
  const sorted = snapshots
    .filter((s) => s.Tags?.some((t) => t.Key === SNAPSHOT_TAGS.managed && t.Value === 'true'))
    .sort((a, b) => (a.SnapshotId ?? '').localeCompare(b.SnapshotId ?? ''));
  for (const snapshot of sorted) {
    const id = snapshot.SnapshotId;
    if (id === undefined) continue;
    const createdAt =
      snapshot.StartTime?.toISOString() ??
      snapshot.Tags?.find((t) => t.Key === SNAPSHOT_TAGS.createdAt)?.Value;
    await ledger.consider({ kind: 'snapshot', id, ...(createdAt ? { createdAt } : {}) }, () =>
      client.deleteSnapshot(id, signal),
    );
  }
  return ledger.report();
}
