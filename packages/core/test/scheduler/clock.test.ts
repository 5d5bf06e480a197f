import { createManualClock } from '@syncproxy/core';
import { describe, expect, it } from 'vitest';

describe('manual clock', () => {
  it('fires due timers in time order at their own time, and waits for the work they return', async () => {
    const clock = createManualClock(100);
    const fired: [string, number][] = [];
    clock.setTimer(() => fired.push(['b', clock.now()]), 50);
    clock.setTimer(async () => {
      await Promise.resolve();
      fired.push(['a', clock.now()]);
    }, 20);
    const cancel = clock.setTimer(() => fired.push(['never', clock.now()]), 30);
    clock.setTimer(() => fired.push(['late', clock.now()]), 500);
    cancel();
    await clock.advance(60);
    expect(fired).toEqual([
      ['a', 120],
      ['b', 150],
    ]);
    expect(clock.now()).toBe(160);
    expect(clock.pendingTimers()).toBe(1);
  });

  it('fires timers set by timers when they fall due within the same advance', async () => {
    const clock = createManualClock(0);
    const fired: number[] = [];
    clock.setTimer(() => {
      fired.push(clock.now());
      clock.setTimer(() => fired.push(clock.now()), 10);
    }, 10);
    await clock.advance(25);
    expect(fired).toEqual([10, 20]);
  });

  it('refuses to go backwards', async () => {
    await expect(createManualClock(0).advance(-1)).rejects.toThrow(
      'advance(-1): ms must be a finite number >= 0',
    );
  });
});
