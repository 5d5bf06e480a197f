import { type Clock, SyncproxyError, sleep } from '@syncproxy/core';

/** How the connector polls OCI resources through their lifecycle states. */
export interface LifecycleWaitOptions {
  /** First poll delay; it doubles up to `maxDelayMs`. Default 1000 ms. */
  initialDelayMs?: number;
  /** Default 10 000 ms. */
  maxDelayMs?: number;
  /** Give up after this long. Default 2 hours (a first full backup of a large volume takes a while). */
  timeoutMs?: number;
}

/**
 * Polls `get` until its `lifecycleState` is `target`. A state in `failed`
 * (FAULTY, TERMINATED...) is a `platform` error naming the resource.
 */
export async function waitForState<T extends { lifecycleState?: string }>(options: {
  what: string;
  get: () => Promise<T>;
  target: string;
  failed?: readonly string[];
  wait?: LifecycleWaitOptions;
  clock: Clock;
  signal?: AbortSignal;
}): Promise<T> {
  const initial = options.wait?.initialDelayMs ?? 1000;
  const max = options.wait?.maxDelayMs ?? 10_000;
  const deadline = options.clock.now() + (options.wait?.timeoutMs ?? 2 * 60 * 60 * 1000);
  let delay = initial;
  for (;;) {
    const current = await options.get();
    const state = current.lifecycleState ?? 'UNKNOWN';
    if (state === options.target) return current;
    if (options.failed?.includes(state)) {
      throw new SyncproxyError(`${options.what} is ${state}, not ${options.target}`, {
        code: 'platform',
        platform: 'oracle',
        details: { state },
      });
    }
    if (options.clock.now() >= deadline) {
      throw new SyncproxyError(`${options.what} still ${state} after waiting for ${options.target}`, {
        code: 'timeout',
        retryable: false,
        platform: 'oracle',
      });
    }
    await sleep(options.clock, delay, options.signal, options.what);
    delay = Math.min(max, delay * 2);
  }
}
