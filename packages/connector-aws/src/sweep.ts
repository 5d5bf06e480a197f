import {
  isOldEnough,
  type Logger,
  planSweep,
  type SweepOptions,
  type SweepReport,
  type SweptResource,
  SyncproxyError,
} from '@syncproxy/core';
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
  const resources: SweptResource[] = [];
  const failures: { id: string; error: unknown }[] = [];
  const sorted = snapshots
    .filter((s) => s.Tags?.some((t) => t.Key === SNAPSHOT_TAGS.managed && t.Value === 'true'))
    .sort((a, b) => (a.SnapshotId ?? '').localeCompare(b.SnapshotId ?? ''));
  for (const snapshot of sorted) {
    const id = snapshot.SnapshotId;
    if (id === undefined) continue;
    const createdAt =
      snapshot.StartTime?.toISOString() ??
      snapshot.Tags?.find((t) => t.Key === SNAPSHOT_TAGS.createdAt)?.Value;
    if (!isOldEnough(plan, createdAt)) continue;
    const resource: SweptResource = {
      kind: 'snapshot',
      id,
      ...(createdAt ? { createdAt } : {}),
      deleted: false,
    };
    resources.push(resource);
    if (plan.dryRun || plan.isKept(id)) continue;
    try {
      await client.deleteSnapshot(id, signal);
      resource.deleted = true;
    } catch (error) {
      logger.warn({ snapshotId: id, error: (error as Error)?.message }, 'sweep could not delete a snapshot');
      failures.push({ id, error });
    }
  }
  if (failures.length > 0) {
    const first = failures[0]!;
    const deleted = resources.filter((r) => r.deleted).map((r) => r.id);
    throw new SyncproxyError(
      `sweep deleted ${deleted.length} of ${deleted.length + failures.length} snapshot(s); ${failures.map((f) => f.id).join(', ')} could not be deleted: ${(first.error as Error)?.message ?? String(first.error)}`,
      {
        code: SyncproxyError.isInstance(first.error) ? first.error.code : 'platform',
        retryable: SyncproxyError.isInstance(first.error) ? first.error.retryable : false,
        cause: first.error,
        details: { deleted, failed: failures.map((f) => f.id) },
      },
    );
  }
  return { resources };
}
