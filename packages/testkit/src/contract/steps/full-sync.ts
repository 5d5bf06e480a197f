import type { ContractContext } from '../contract-context.js';
import { ContractViolation } from '../contract-violation.js';
import { extentBytes } from '../extent-checks.js';
import { recordedProblems } from '../recording-reader.js';

/**
 * A full `syncHost`: one snapshot of the host, each disk's extents sorted,
 * disjoint, in bounds and aligned, and (with change tracking) skipping what
 * is not allocated.
 */
export async function fullExtentsStep(ctx: ContractContext): Promise<void> {
  const h = ctx.need(ctx.listedHost, 'the listed host');
  await ctx.syncHost('full');
  ctx.checkSnapshotRef(ctx.need(ctx.snapshots[0], 'the full-sync snapshot'), h);
  const held = await ctx.need(ctx.platform, 'platform').snapshotCount(ctx.need(ctx.host, 'the mock host').id);
  if (held <= ctx.snapshotsBefore) {
    throw new ContractViolation(
      `the platform holds no new snapshot of host ${h.id} after createSnapshot() (it held ${ctx.snapshotsBefore} before)`,
    );
  }
  ctx.snapshotUnits = held - ctx.snapshotsBefore;
  const tracking = ctx.connector.capabilities.changeTracking;
  const problems: string[] = [];
  for (const run of ctx.disks) {
    const reader = ctx.need(run.full, `the full sync's reader of disk ${run.diskId}`);
    ctx.checkReaderShape(reader, run);
    for (const p of recordedProblems(reader)) problems.push(`disk ${run.diskId}: ${p}`);
    if (tracking !== 'hash') {
      const truth = await ctx.allocatedOnPlatform(run);
      const data = extentBytes(reader.extentsSeen, 'data');
      if (data >= run.sizeBytes && truth < run.sizeBytes) {
        problems.push(
          `disk ${run.diskId}: the full sync read all ${run.sizeBytes} bytes although only ${truth} are written; with ${tracking} change tracking it must skip what is not allocated`,
        );
      }
    }
  }
  if (problems.length > 0) throw new ContractViolation(`full sync extents: ${problems.join('; ')}`);
}

/** Every image of the full sync equals its platform disk. */
export async function fullBytesStep(ctx: ContractContext): Promise<void> {
  for (const run of ctx.disks) await ctx.compareImage(run, 'full sync');
}
