/**
 * The time source of a scheduler. Heartbeat ages, assignment times and the
 * waits of `assign({ waitMs })` are all measured with it, so tests and
 * simulations can drive time by hand.
 */
export interface Clock {
  /** Milliseconds; only differences matter. */
  now(): number;
  /**
   * Calls `fn` once `ms` of this clock's time have passed; returns a cancel
   * function. A clock without it gets the process timers.
   */
  setTimer?(fn: () => unknown, ms: number): () => void;
}

/** Wall-clock time; waits use the process timers (see {@link setClockTimer}). */
export const systemClock: Clock = Object.freeze({ now: () => Date.now() });

/**
 * Runs `fn` after `ms` of `clock` time, with the process timers when the clock
 * has none. A process timer keeps the process alive (a retry backoff or a
 * snapshot poll must not let Node exit mid-wait) unless `background` is set,
 * as for a scheduler's health check.
 */
export function setClockTimer(
  clock: Clock,
  fn: () => unknown,
  ms: number,
  options: { background?: boolean } = {},
): () => void {
  if (clock.setTimer) return clock.setTimer(fn, ms);
  const timer = setTimeout(fn, ms);
  if (options.background) timer.unref();
  return () => clearTimeout(timer);
}

/** A clock that moves only when told to: for tests and simulations. */
export interface ManualClock extends Clock {
  setTimer(fn: () => unknown, ms: number): () => void;
  /**
   * Moves time forward by `ms`, firing due timers in time order at their own
   * time. Resolves once every promise those timers returned has settled, so
   * `await clock.advance(ms)` returns after the work the timers started.
   */
  advance(ms: number): Promise<void>;
  /** Timers not yet fired or cancelled. */
  pendingTimers(): number;
}

interface ManualTimer {
  at: number;
  seq: number;
  fn: () => unknown;
}

/** A {@link ManualClock} starting at `startMs`. */
export function createManualClock(startMs = 0): ManualClock {
  let now = startMs;
  let seq = 0;
  const timers = new Set<ManualTimer>();

  const nextDue = (until: number): ManualTimer | undefined => {
    let best: ManualTimer | undefined;
    for (const t of timers) {
      if (t.at > until) continue;
      if (!best || t.at < best.at || (t.at === best.at && t.seq < best.seq)) best = t;
    }
    return best;
  };

  return {
    now: () => now,
    setTimer(fn, ms) {
      const timer: ManualTimer = { at: now + Math.max(0, ms), seq: seq++, fn };
      timers.add(timer);
      return () => {
        timers.delete(timer);
      };
    },
    async advance(ms) {
      if (!Number.isFinite(ms) || ms < 0)
        throw new RangeError(`advance(${ms}): ms must be a finite number >= 0`);
      const until = now + ms;
      for (let timer = nextDue(until); timer; timer = nextDue(until)) {
        timers.delete(timer);
        now = timer.at;
        // Timers run one at a time, each finishing its work before the next, as they would on a real timeline.
        await timer.fn();
      }
      now = until;
    },
    pendingTimers: () => timers.size,
  };
}
