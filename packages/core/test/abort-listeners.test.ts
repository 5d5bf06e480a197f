import { getEventListeners } from 'node:events';
import { raceAbort } from '@syncproxy/core';
import { describe, expect, it } from 'vitest';

describe('raceAbort', () => {
  it('adds one abort listener to a signal however many races wait on it, and rejects them all on abort', async () => {
    const controller = new AbortController();
    const never = new Promise<never>(() => {});
    const races = Array.from({ length: 100 }, () => raceAbort(never, controller.signal, 'read'));
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
    controller.abort();
    const outcomes = await Promise.allSettled(races);
    expect(outcomes.every((o) => o.status === 'rejected' && o.reason.code === 'aborted')).toBe(true);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('stops listening once the promise settles', async () => {
    const controller = new AbortController();
    await expect(raceAbort(Promise.resolve(7), controller.signal)).resolves.toBe(7);
    controller.abort();
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });
});
