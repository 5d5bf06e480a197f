import { SyncproxyError } from '@syncproxy/core';
import type { ContractContext } from '../contract-context.js';
import { ContractViolation, describeError } from '../contract-violation.js';

/**
 * After the incremental, `syncHost` has deleted the full sync's snapshot
 * (deleteSnapshot) and kept the incremental's as the next base; deleting that
 * one too leaves the platform as it was.
 */
export async function deleteSnapshotStep(ctx: ContractContext): Promise<void> {
  const p = ctx.need(ctx.platform, 'platform');
  const h = ctx.need(ctx.host, 'the mock host');
  const base = ctx.need(ctx.snapshots[1], 'the incremental snapshot');
  const units = ctx.need(ctx.snapshotUnits, "the full sync's snapshot count");
  const held = await p.snapshotCount(h.id);
  if (held !== ctx.snapshotsBefore + units) {
    throw new ContractViolation(
      `the platform holds ${held - ctx.snapshotsBefore} snapshot(s) of host ${h.id} after two syncs; expected ${units} (one host snapshot, the next base): deleteSnapshot() of the first sync's snapshot did not remove it`,
    );
  }
  await ctx.call('deleteSnapshot()', () => ctx.need(ctx.session, 'session').deleteSnapshot(base));
  const left = await p.snapshotCount(h.id);
  if (left !== ctx.snapshotsBefore) {
    throw new ContractViolation(
      `deleteSnapshot() left ${left - ctx.snapshotsBefore} snapshot(s) of host ${h.id} on the platform`,
    );
  }
}

/** Reading a deleted snapshot rejects with `not-found`, not retryable. */
export async function notFoundStep(ctx: ContractContext): Promise<void> {
  const s = ctx.need(ctx.session, 'session');
  const snapshot = ctx.need(ctx.snapshots[0], 'the deleted snapshot');
  const disk = ctx.need(ctx.listedHost, 'the listed host').disks[0]!;
  const error = await ctx.rejection(
    'opening and reading a deleted snapshot',
    async () => {
      const reader = await s.openReader(disk, { snapshot });
      try {
        for await (const extent of reader.extents()) {
          await reader.read(extent.offset, Math.min(extent.length, reader.granularity));
          break;
        }
      } finally {
        await reader.close();
      }
    },
    'a snapshot that was deleted must reject with code not-found',
  );
  if (!SyncproxyError.hasCode(error, 'not-found')) {
    throw new ContractViolation(
      `a deleted snapshot rejected with ${describeError(error)}; expected code not-found`,
    );
  }
  if (error.retryable) throw new ContractViolation('a not-found error must not be retryable');
}
