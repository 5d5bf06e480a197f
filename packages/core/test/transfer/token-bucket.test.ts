import { TokenBucket } from '@syncproxy/core';
import { describe, expect, it } from 'vitest';
import { createManualClock } from '../../src/clock.js';

const flush = () => new Promise((resolve) => setImmediate(resolve));

describe('TokenBucket', () => {
  it('lets the burst go at once, then spaces reservations at the rate, in arrival order across takers', async () => {
    const clock = createManualClock();
    const bucket = new TokenBucket({ bytesPerSecond: 1000, burstBytes: 1000, clock });
    const order: string[] = [];
    await bucket.take(1000);
    const a = bucket.take(500).then(() => order.push(`a@${clock.now()}`));
    const b = bucket.take(500).then(() => order.push(`b@${clock.now()}`));
    await clock.advance(499);
    await flush();
    expect(order).toEqual([]);
    await clock.advance(1);
    await flush();
    expect(order).toEqual(['a@500']);
    await clock.advance(500);
    await Promise.all([a, b]);
    expect(order).toEqual(['a@500', 'b@1000']);
  });

  it('gives back the bytes of an aborted wait and rejects with an aborted error', async () => {
    const clock = createManualClock();
    const bucket = new TokenBucket({ bytesPerSecond: 100, burstBytes: 100, clock });
    await bucket.take(100);
    const controller = new AbortController();
    const waiting = bucket.take(1000, controller.signal);
    controller.abort();
    await expect(waiting).rejects.toMatchObject({ code: 'aborted' });
    await clock.advance(1000);
    let done = false;
    void bucket.take(100).then(() => {
      done = true;
    });
    await flush();
    expect(done).toBe(true);
  });

  it('refuses a rate that is not positive', () => {
    expect(() => new TokenBucket({ bytesPerSecond: 0 })).toThrow(
      expect.objectContaining({
        code: 'config',
        message: 'bandwidth limit must be a positive number of bytes/s (got 0)',
      }),
    );
  });
});
