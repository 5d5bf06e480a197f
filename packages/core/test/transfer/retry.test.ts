import { SyncproxyError } from '@syncproxy/core';
import { describe, expect, it } from 'vitest';
import { createManualClock } from '../../src/clock.js';
import { backoffDelayMs, resolveRetryPolicy, withRetry } from '../../src/retry.js';

const flush = () => new Promise((resolve) => setImmediate(resolve));

describe('retry', () => {
  it('draws full-jitter delays below a doubling ceiling capped at maxDelayMs', () => {
    const policy = resolveRetryPolicy({ attempts: 10, baseDelayMs: 100, maxDelayMs: 1000 });
    expect([1, 2, 3, 4, 5].map((n) => backoffDelayMs(policy, n, () => 0.999999))).toEqual([
      99, 199, 399, 799, 999,
    ]);
    expect(backoffDelayMs(policy, 3, () => 0)).toBe(0);
    expect(backoffDelayMs(policy, 3, () => 0.5)).toBe(200);
  });

  it('retries retryable errors after the backoff, on the injected clock', async () => {
    const clock = createManualClock();
    let calls = 0;
    const retries: number[] = [];
    const result = withRetry(
      'read',
      async () => {
        calls++;
        if (calls < 3) throw new SyncproxyError('slow down', { code: 'throttled' });
        return 'ok';
      },
      {
        policy: resolveRetryPolicy({ baseDelayMs: 100 }),
        clock,
        random: () => 0.5,
        onRetry: (_e, n) => retries.push(n),
      },
    );
    await flush();
    expect(calls).toBe(1);
    await clock.advance(49);
    await flush();
    expect(calls).toBe(1);
    await clock.advance(1);
    await flush();
    expect(calls).toBe(2);
    await clock.advance(100);
    expect(await result).toBe('ok');
    expect(calls).toBe(3);
    expect(retries).toEqual([1, 2]);
  });

  it('does not retry a non-retryable error, and maps foreign errors first', async () => {
    const clock = createManualClock();
    let calls = 0;
    const failing = withRetry(
      'write',
      async () => {
        calls++;
        throw Object.assign(new Error('disk full'), { code: 'ENOSPC' });
      },
      { policy: resolveRetryPolicy(), clock, random: Math.random },
    );
    await expect(failing).rejects.toMatchObject({
      code: 'io',
      retryable: false,
      message: 'write failed: no space left (ENOSPC)',
    });
    expect(calls).toBe(1);
  });

  it('gives throttled refusals their own number of tries, and other failures still stop at attempts', async () => {
    const policy = resolveRetryPolicy({ attempts: 3, throttledAttempts: 8, baseDelayMs: 0 });
    let calls = 0;
    const throttled = await withRetry(
      'read',
      async () => {
        calls++;
        throw new SyncproxyError('Rate exceeded', { code: 'throttled' });
      },
      { policy, random: () => 0 },
    ).catch((error: unknown) => error);
    expect(calls).toBe(8);
    expect(SyncproxyError.hasCode(throttled, 'throttled') && throttled.retryable).toBe(false);

    calls = 0;
    await withRetry(
      'read',
      async () => {
        calls++;
        throw new SyncproxyError('HTTP 503', { code: 'platform', retryable: true });
      },
      { policy, random: () => 0 },
    ).catch(() => {});
    expect(calls).toBe(3);
  });

  it('bounds throttled refusals by attempts when the caller set attempts and not throttledAttempts', () => {
    expect(
      resolveRetryPolicy({ attempts: 2 }, { attempts: 6, throttledAttempts: 12 }).throttledAttempts,
    ).toBe(2);
    expect(resolveRetryPolicy({}, { attempts: 6, throttledAttempts: 12 }).throttledAttempts).toBe(12);
    expect(resolveRetryPolicy({}).throttledAttempts).toBe(5);
  });
});
