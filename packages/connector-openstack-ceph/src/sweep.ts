import { randomUUID } from 'node:crypto';
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

/**
 * RBD snapshots of Nova root disks have no Cinder record and no metadata: the
 * name is the tag. `syncproxy-<creation ms>-<uuid>` and nothing looser, so a
 * sweep never takes a snapshot someone else made, whatever its name starts with.
 */
const NOVA_SNAPSHOT_NAME =
  /^syncproxy-(\d{13})-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The name of a new RBD snapshot of a Nova root disk, carrying its creation time. */
export function novaSnapshotName(nowMs: number): string {
  return `syncproxy-${String(Math.trunc(nowMs)).padStart(13, '0')}-${randomUUID()}`;
}

/** The creation time a name of `novaSnapshotName` carries; undefined for any other name. */
export function novaSnapshotTime(name: string): string | undefined {
  const match = NOVA_SNAPSHOT_NAME.exec(name);
  if (!match) return undefined;
  const ms = Number(match[1]);
  return Number.isSafeInteger(ms) ? new Date(ms).toISOString() : undefined;
}

/** One RBD snapshot of a Nova root disk this SDK made: `id` is `<pool>/<image>@<snapshot>`. */
export interface RbdManagedSnapshot {
  id: string;
  /** The snapshot's name (a `keep` entry may give it alone). */
  name: string;
  remove(): Promise<void>;
}

export interface CinderSweepTarget {
  /** The snapshots carrying `syncproxy:managed=true`. */
  listManaged(): AsyncIterable<CinderSnapshot>;
  /** Deletes one and waits until Cinder no longer has it; gone already counts as deleted. */
  remove(id: string): Promise<void>;
  /** The RBD snapshots of Nova root disks named by `novaSnapshotName`. */
  listRbdManaged?(): AsyncIterable<RbdManagedSnapshot>;
  logger: Logger;
}

/**
 * Lists the Cinder snapshots this SDK made (metadata `syncproxy:managed=true`)
 * and the RBD snapshots it made of Nova root disks (named by
 * `novaSnapshotName`), and, unless it is a dry run, deletes those created
 * before `olderThan` and not kept (a kept SnapshotRef names its snapshots in
 * its disks, so `keep` takes Cinder snapshot ids and RBD snapshot names).
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
  const rbd: RbdManagedSnapshot[] = [];
  if (target.listRbdManaged) {
    for await (const snapshot of target.listRbdManaged()) {
      if (novaSnapshotTime(snapshot.name) !== undefined) rbd.push(snapshot);
    }
  }
  rbd.sort((a, b) => a.id.localeCompare(b.id));
  // An RBD snapshot is kept by its spec `<pool>/<image>@<name>` or by its name alone.
  const ledger = new SweepLedger(
    { ...plan, isKept: (id) => plan.isKept(id) || plan.isKept(id.slice(id.lastIndexOf('@') + 1)) },
    target.logger,
  );
  for (const snapshot of found) {
    const createdAt = cinderTimeToIso(snapshot.created_at);
    await ledger.consider({ kind: 'snapshot', id: snapshot.id, ...(createdAt ? { createdAt } : {}) }, () =>
      target.remove(snapshot.id),
    );
  }
  for (const snapshot of rbd) {
    const createdAt = novaSnapshotTime(snapshot.name);
    await ledger.consider({ kind: 'snapshot', id: snapshot.id, ...(createdAt ? { createdAt } : {}) }, () =>
      snapshot.remove(),
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
