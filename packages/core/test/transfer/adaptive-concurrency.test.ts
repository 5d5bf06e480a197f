import { describe, expect, it } from 'vitest';
import { createManualClock } from '../../src/clock.js';
import { AdaptiveConcurrency } from '../../src/transfer/adaptive-concurrency.js';

const MiB = 1024 * 1024;

/** A deterministic uniform [0, 1) source. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Drives a controller through windows on a manual clock: each window lasts 100 ms and completes
 * `limit` reads (at least 32), with the throughput and the throttled share `world(limit)` gives.
 */
function drive(
  controller: AdaptiveConcurrency,
  clock: ReturnType<typeof createManualClock>,
  windows: number,
  world: (limit: number) => { bytesPerMs: number; throttleShare?: number },
): number[] {
  const limits: number[] = [];
  for (let w = 0; w < windows; w++) {
    const limit = controller.limit;
    const { bytesPerMs, throttleShare = 0 } = world(limit);
    const reads = Math.max(limit, 32);
    const windowMs = 100;
    const bytesPerRead = (bytesPerMs * windowMs) / reads;
    const throttles = Math.round((reads * throttleShare) / (1 - throttleShare));
    let throttled = 0;
    for (let r = 0; r < reads; r++) {
      // Time passes as reads complete, refusals spread among them; the last read closes the window.
      void clock.advance(windowMs / reads);
      for (; throttled < Math.round((throttles * r) / reads); throttled++) controller.throttled();
      controller.readDone(bytesPerRead);
    }
    for (; throttled < throttles; throttled++) controller.throttled();
    limits.push(controller.limit);
  }
  return limits;
}

describe('AdaptiveConcurrency', () => {
  it('doubles the limit while throughput grows, up to the ceiling', () => {
    const clock = createManualClock();
    const controller = new AdaptiveConcurrency({ initialLimit: 4, maxLimit: 64, clock });
    // Throughput proportional to the reads in flight: every step pays off.
    const limits = drive(controller, clock, 12, (limit) => ({ bytesPerMs: limit * MiB }));
    expect(limits).toContain(8);
    expect(limits).toContain(16);
    expect(controller.limit).toBe(64);
    expect(Math.max(...limits)).toBe(64);
  });

  it('stops growing when throughput stops growing, and returns to the smallest limit that gave it', () => {
    const clock = createManualClock();
    const controller = new AdaptiveConcurrency({ initialLimit: 4, maxLimit: 256, clock });
    // The platform serves at most 16 reads at once: more buys nothing.
    const limits = drive(controller, clock, 16, (limit) => ({ bytesPerMs: Math.min(limit, 16) * MiB }));
    expect(Math.max(...limits)).toBe(32);
    expect(limits.slice(-4)).toEqual([16, 16, 16, 16]);
  });

  it('cuts the limit multiplicatively when throttling rises with load (AIMD), then grows back additively', () => {
    const clock = createManualClock();
    const controller = new AdaptiveConcurrency({ initialLimit: 8, maxLimit: 128, clock });
    // A rate limit at 20 reads in flight: beyond it, half the requests are throttled and throughput falls.
    const world = (limit: number) =>
      limit <= 20 ? { bytesPerMs: limit * MiB } : { bytesPerMs: 10 * MiB, throttleShare: 0.5 };
    const limits = drive(controller, clock, 30, world);
    const firstCut = limits.findIndex((limit, i) => i > 0 && limit < limits[i - 1]!);
    expect(firstCut).toBeGreaterThan(0);
    // Multiplicative: from 32 to 22 (x0.7), not one step down.
    expect(limits[firstCut - 1]).toBe(32);
    expect(limits[firstCut]).toBe(22);
    // It settles around the knee, never again at 32.
    expect(Math.max(...limits.slice(firstCut + 1))).toBeLessThan(32);
    expect(Math.min(...limits.slice(firstCut + 1))).toBeGreaterThanOrEqual(10);
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
    const random = mulberry32(5);
    const limits = drive(controller, clock, 40, (limit) => ({
      bytesPerMs: limit * MiB,
      throttleShare: 0.1 + 0.2 * random(),
    }));
    expect(Math.min(...limits.slice(8))).toBe(64);
  });

  it('does not go back for one window that bought nothing, only for two in a row', () => {
    const clock = createManualClock();
    const controller = new AdaptiveConcurrency({ initialLimit: 8, maxLimit: 64, clock });
    let unlucky = 0;
    // At 16 and above, the first window is unlucky (half the throughput), later ones are not.
    const limits = drive(controller, clock, 10, (limit) => ({
      bytesPerMs: limit >= 16 && unlucky++ === 1 ? 8 * MiB : limit * MiB,
    }));
    expect(limits).toContain(32);
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
