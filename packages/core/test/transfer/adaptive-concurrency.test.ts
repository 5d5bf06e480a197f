import { describe, expect, it } from 'vitest';
import { createManualClock } from '../../src/clock.js';
import { AdaptiveConcurrency } from '../../src/transfer/adaptive-concurrency.js';
import { seededRandom } from './fixtures/readers.js';

const MiB = 1024 * 1024;

/**
 * Drives a controller on a manual clock as a transfer would: reads complete every 2 ms, each with the
 * bytes and the refusals `world(limit)` gives for the limit in force when it completes. Returns the
 * limit after each step of 64 reads.
 */
function drive(
  controller: AdaptiveConcurrency,
  clock: ReturnType<typeof createManualClock>,
  steps: number,
  world: (limit: number) => { bytesPerMs: number; throttleShare?: number },
): number[] {
  const limits: number[] = [];
  const readMs = 2;
  let owed = 0;
  for (let step = 0; step < steps; step++) {
    for (let r = 0; r < 64; r++) {
      const { bytesPerMs, throttleShare = 0 } = world(controller.limit);
      void clock.advance(readMs);
      // Refusals per read at this share: share / (1 - share).
      owed += throttleShare / (1 - throttleShare);
      for (; owed >= 1; owed--) controller.throttled();
      controller.readDone(bytesPerMs * readMs);
    }
    limits.push(controller.limit);
  }
  return limits;
}

describe('AdaptiveConcurrency', () => {
  it('doubles the limit while throughput grows, up to the ceiling', () => {
    const clock = createManualClock();
    const changes: number[] = [];
    const controller = new AdaptiveConcurrency({
      initialLimit: 4,
      maxLimit: 64,
      clock,
      onLimitChange: (limit) => changes.push(limit),
    });
    // Throughput proportional to the reads in flight: every step pays off.
    drive(controller, clock, 12, (limit) => ({ bytesPerMs: limit * MiB }));
    expect(changes).toEqual([8, 16, 32, 64]);
  });

  it('stops growing when throughput stops growing, and undoes a probe that buys nothing', () => {
    const clock = createManualClock();
    const changes: number[] = [];
    const controller = new AdaptiveConcurrency({
      initialLimit: 4,
      maxLimit: 256,
      clock,
      onLimitChange: (limit) => changes.push(limit),
    });
    // The platform serves at most 16 reads at once: more buys nothing.
    drive(controller, clock, 60, (limit) => ({ bytesPerMs: Math.min(limit, 16) * MiB }));
    // The doubling overshoots once (32 bought nothing over 16) and stops there.
    expect(changes.slice(0, 3)).toEqual([8, 16, 32]);
    // Afterwards only probes one step up (32 -> 36), each undone.
    expect(changes.slice(3).length).toBeGreaterThan(1);
    expect(new Set(changes.slice(3))).toEqual(new Set([36, 32]));
    expect(controller.limit === 32 || controller.limit === 36).toBe(true);
  });

  it('cuts the limit multiplicatively when throttling rises with load (AIMD), then grows back additively', () => {
    const clock = createManualClock();
    const changes: number[] = [];
    const controller = new AdaptiveConcurrency({
      initialLimit: 8,
      maxLimit: 128,
      clock,
      onLimitChange: (limit) => changes.push(limit),
    });
    // A rate limit at 20 reads in flight: beyond it, half the requests are throttled and throughput falls.
    const world = (limit: number) =>
      limit <= 20 ? { bytesPerMs: limit * MiB } : { bytesPerMs: 10 * MiB, throttleShare: 0.5 };
    drive(controller, clock, 40, world);
    // Multiplicative: from 32 to 22 (x0.7), not one step down.
    expect(changes.slice(0, 3)).toEqual([16, 32, 22]);
    const afterCut = changes.slice(3);
    // It settles around the knee, never again at 32, growing back by small steps.
    expect(Math.max(...afterCut)).toBeLessThan(32);
    expect(Math.min(...afterCut)).toBeGreaterThanOrEqual(10);
    expect(
      afterCut.some((limit, i) => i > 0 && limit - afterCut[i - 1]! > 0 && limit - afterCut[i - 1]! <= 3),
    ).toBe(true);
  });

  it('does not cut for throttling that does not rise with load (random refusals the retries absorb)', () => {
    const clock = createManualClock();
    const controller = new AdaptiveConcurrency({ initialLimit: 8, maxLimit: 64, clock });
    const limits = drive(controller, clock, 12, (limit) => ({ bytesPerMs: limit * MiB, throttleShare: 0.2 }));
    expect(controller.limit).toBe(64);
    for (let i = 1; i < limits.length; i++) expect(limits[i]).toBeGreaterThanOrEqual(limits[i - 1]!);
  });

  it('does not cut for a steady share of refusals that varies from window to window (10% to 30%)', () => {
    const clock = createManualClock();
    const controller = new AdaptiveConcurrency({ initialLimit: 8, maxLimit: 64, clock });
    const random = seededRandom(5);
    const limits = drive(controller, clock, 40, (limit) => ({
      bytesPerMs: limit * MiB,
      throttleShare: 0.1 + 0.2 * random(),
    }));
    expect(Math.min(...limits.slice(8))).toBe(64);
  });

  it('does not go back down for a window that bought nothing, and grows again when throughput does', () => {
    const clock = createManualClock();
    const changes: number[] = [];
    const controller = new AdaptiveConcurrency({
      initialLimit: 8,
      maxLimit: 64,
      clock,
      onLimitChange: (limit) => changes.push(limit),
    });
    // The first window judged at 16 is unlucky (as slow as 8), later ones are not.
    let readsAtSixteen = 0;
    drive(controller, clock, 30, (limit) => ({
      bytesPerMs: limit >= 16 && readsAtSixteen++ < 48 ? 8 * MiB : limit * MiB,
    }));
    expect(changes[0]).toBe(16);
    expect(Math.min(...changes)).toBe(16);
    expect(controller.limit).toBe(64);
  });

  it('stays within its bounds whatever it observes', () => {
    const clock = createManualClock();
    const controller = new AdaptiveConcurrency({ initialLimit: 3, minLimit: 2, maxLimit: 5, clock });
    const up = drive(controller, clock, 8, (limit) => ({ bytesPerMs: limit * MiB }));
    expect(Math.max(...up)).toBe(5);
    const down = drive(controller, clock, 12, () => ({ bytesPerMs: MiB, throttleShare: 0.9 }));
    expect(Math.min(...down)).toBe(2);
    for (const limit of [...up, ...down]) expect(limit).toBeGreaterThanOrEqual(2);
  });

  it('tells its listener each new limit, once per change', () => {
    const clock = createManualClock();
    const seen: number[] = [];
    const controller = new AdaptiveConcurrency({
      initialLimit: 2,
      maxLimit: 8,
      clock,
      onLimitChange: (limit) => seen.push(limit),
    });
    drive(controller, clock, 10, (limit) => ({ bytesPerMs: limit * MiB }));
    expect(seen).toEqual([4, 8]);
  });

  it('refuses bounds that make no sense', () => {
    const clock = createManualClock();
    expect(() => new AdaptiveConcurrency({ maxLimit: 0, clock })).toThrow(/maxLimit/);
    expect(() => new AdaptiveConcurrency({ minLimit: 4, maxLimit: 2, clock })).toThrow(/minLimit/);
  });
});
