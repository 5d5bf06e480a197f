import { isOldEnough, planSweep } from '@syncproxy/core';
import { describe, expect, it } from 'vitest';

describe('planSweep', () => {
  it('keeps an id given as is or inside a composite SnapshotRef id', () => {
    const plan = planSweep({ keep: ['i-1/snap-a+snap-b', 'vol-9'] });
    expect(['snap-a', 'snap-b', 'vol-9', 'i-1/snap-a+snap-b', 'snap-c'].map(plan.isKept)).toEqual([
      true,
      true,
      true,
      true,
      false,
    ]);
    expect(plan.dryRun).toBe(false);
  });

  it('sweeps only what is strictly older than olderThan, and nothing of unknown age when a limit is set', () => {
    const plan = planSweep({ olderThan: '2026-03-02T00:00:00Z', dryRun: true });
    expect(plan.dryRun).toBe(true);
    expect(isOldEnough(plan, '2026-03-01T23:59:59Z')).toBe(true);
    expect(isOldEnough(plan, '2026-03-02T00:00:00Z')).toBe(false);
    expect(isOldEnough(plan, undefined)).toBe(false);
    expect(isOldEnough(plan, 'yesterday')).toBe(false);
    expect(isOldEnough(planSweep(), undefined)).toBe(true);
  });

  it('refuses a bad olderThan or keep as config errors naming the field', () => {
    expect(() => planSweep({ olderThan: new Date(Number.NaN) })).toThrow(
      'invalid sweep options: olderThan: must be a Date or an ISO-8601 time (got null)',
    );
    expect(() => planSweep({ keep: 'snap-1' as unknown as string[] })).toThrow(
      'invalid sweep options: keep: must be an array of ids',
    );
  });
});
