import { applyChanges, changedRanges, seededChanges } from '../../mock/disk-fixture.js';
import { type ByteRange, differingRanges, mergeNear, touchedGranules } from '../byte-ranges.js';
import type { ContractContext } from '../contract-context.js';
import { ContractViolation } from '../contract-violation.js';
import { describeExtent, extentBytes, uncoveredRanges } from '../extent-checks.js';
import { recordedProblems } from '../recording-reader.js';

/**
 * The first disk changes on the platform; an incremental `syncHost` against
 * the full sync's snapshot must cover every changed byte (and not the whole
 * disk), and yield nothing for the disk that did not change.
 */
export async function incrementalExtentsStep(ctx: ContractContext): Promise<void> {
  const h = ctx.need(ctx.listedHost, 'the listed host');
  ctx.need(ctx.snapshots[0], 'the full-sync snapshot');
  const changed = ctx.disks[0]!;
  ctx.changes = seededChanges({ seed: ctx.settings.seed + 1, sizeBytes: changed.sizeBytes });
  const p = ctx.need(ctx.platform, 'platform');
  const touched = changedRanges(ctx.changes);
  const before = await Promise.all(touched.map((r) => p.readDisk(changed.diskId, r.offset, r.length)));
  await applyChanges(
    {
      write: (offset, data) => p.writeDisk(changed.diskId, offset, data),
      writeZeroes: (offset, length) => p.writeZeroes(changed.diskId, offset, length),
    },
    ctx.changes,
  );
  // The bytes whose value changed: rewriting zeroes over a hole changes nothing.
  const ranges: ByteRange[] = [];
  for (const [i, r] of touched.entries()) {
    const after = await p.readDisk(changed.diskId, r.offset, r.length);
    differingRanges(before[i]!, after, r.offset, ranges);
  }
  await ctx.syncHost('incremental');
  ctx.checkSnapshotRef(ctx.need(ctx.snapshots[1], 'the incremental snapshot'), h);
  const problems: string[] = [];
  for (const run of ctx.disks) {
    const reader = ctx.need(run.incremental, `the incremental's reader of disk ${run.diskId}`);
    ctx.checkReaderShape(reader, run);
    const seen = reader.extentsSeen;
    for (const problem of recordedProblems(reader)) problems.push(`disk ${run.diskId}: ${problem}`);
    if (run === changed) {
      const missing = uncoveredRanges(ranges, seen);
      if (missing.length > 0) {
        const shown = mergeNear(missing);
        const bytes = missing.reduce((n, m) => n + m.length, 0);
        problems.push(
          `disk ${run.diskId}: missed ${bytes} changed byte(s) in ${shown
            .map((m) => describeExtent(m))
            .slice(0, 5)
            .join(', ')}${shown.length > 5 ? `, and ${shown.length - 5} more ranges` : ''}`,
        );
      }
      const granules = touchedGranules(ranges, reader.granularity);
      const total = Math.ceil(run.sizeBytes / reader.granularity);
      if (granules < total && extentBytes(seen) >= run.sizeBytes) {
        problems.push(
          `disk ${run.diskId}: the incremental covers the whole disk although the changes touch ${granules} of ${total} blocks of ${reader.granularity} bytes`,
        );
      }
    } else if (seen.length > 0) {
      problems.push(
        `disk ${run.diskId} did not change, yet its incremental yields ${seen
          .map((e) => describeExtent(e))
          .slice(0, 4)
          .join(', ')}${seen.length > 4 ? ', ...' : ''}`,
      );
    }
  }
  if (problems.length > 0) throw new ContractViolation(`incremental extents: ${problems.join('; ')}`);
}

/** Every image, the incremental applied on the full one, equals its platform disk. */
export async function incrementalBytesStep(ctx: ContractContext): Promise<void> {
  for (const run of ctx.disks) await ctx.compareImage(run, 'incremental');
}
