import { type Logger, planSweep, SweepLedger, type SweepOptions, type SweepReport } from '@syncproxy/core';
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
  const ledger = new SweepLedger(plan, target.logger);
  for (const snapshot of found) {
    const createdAt = cinderTimeToIso(snapshot.created_at);
    await ledger.consider({ kind: 'snapshot', id: snapshot.id, ...(createdAt ? { createdAt } : {}) }, () =>
      target.remove(snapshot.id),
    );
  }
  return ledger.report();
}

/** Cinder writes UTC without a zone (`2026-03-01T00:00:00.000000`); JavaScript would read that as local time. */
export function cinderTimeToIso(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const zoned = /(Z|[+-]\d{2}:?\d{2})$/.test(value) ? value : `${value}Z`;
  const ms = Date.parse(zoned);
  return Number.isFinite(ms) ? new Date(ms).toISOString() : undefined;
}
