import {
  isOldEnough,
  type Logger,
  planSweep,
  type SweepOptions,
  type SweepReport,
  type SweptResource,
  SyncproxyError,
} from '@syncproxy/core';
import type { CinderSnapshot } from './openstack/client.js';

/**
 * Metadata every Cinder snapshot this connector creates carries. Cinder's RBD
 * driver makes the RBD snapshot `volume-<volume>@snapshot-<id>` behind it and
 * removes it with the Cinder snapshot, so sweeping Cinder snapshots sweeps the
 * RBD snapshots too, and never an RBD snapshot Cinder does not know.
 */
export const SNAPSHOT_METADATA = {
  managed: 'syncproxy:managed',
  host: 'syncproxy:host',
} as const;

export interface CinderSweepTarget {
  /** The snapshots carrying `syncproxy:managed=true`. */
  listManaged(): AsyncIterable<CinderSnapshot>;
  /** Deletes one and waits until Cinder no longer has it; gone already counts as deleted. */
  remove(id: string): Promise<void>;
  logger: Logger;
}

/**
 * Lists the Cinder snapshots this SDK made (metadata `syncproxy:managed=true`)
 * and, unless it is a dry run, deletes those created before `olderThan` and not
 * kept (a kept SnapshotRef names its Cinder snapshots in its disks, so `keep`
 * takes Cinder snapshot ids).
 */
export async function sweepSnapshots(
  target: CinderSweepTarget,
  options?: SweepOptions,
): Promise<SweepReport> {
  const plan = planSweep(options);
  const found: CinderSnapshot[] = [];
  for await (const snapshot of target.listManaged()) {
    if (snapshot.metadata?.[SNAPSHOT_METADATA.managed] === 'true') found.push(snapshot);
  }
  found.sort((a, b) => a.id.localeCompare(b.id));
  const resources: SweptResource[] = [];
  const failures: { id: string; error: unknown }[] = [];
  for (const snapshot of found) {
    const createdAt = cinderTimeToIso(snapshot.created_at);
    if (!isOldEnough(plan, createdAt)) continue;
    const resource: SweptResource = {
      kind: 'snapshot',
      id: snapshot.id,
      ...(createdAt ? { createdAt } : {}),
      deleted: false,
    };
    resources.push(resource);
    if (plan.dryRun || plan.isKept(snapshot.id)) continue;
    try {
      await target.remove(snapshot.id);
      resource.deleted = true;
    } catch (error) {
      target.logger.warn(
        {
          snapshotId: snapshot.id,
          error: (error as Error)?.message,
        },
        'sweep could not delete a snapshot',
      );
      failures.push({ id: snapshot.id, error });
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

/** Cinder writes UTC without a zone (`2026-03-01T00:00:00.000000`); JavaScript would read that as local time. */
export function cinderTimeToIso(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const zoned = /(Z|[+-]\d{2}:?\d{2})$/.test(value) ? value : `${value}Z`;
  const ms = Date.parse(zoned);
  return Number.isFinite(ms) ? new Date(ms).toISOString() : undefined;
}
