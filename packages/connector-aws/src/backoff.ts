import { abortError, type SyncproxyError } from '@syncproxy/core';

/**
 * A time source: the same shape as the core scheduler's `Clock`, so one
 * manual clock can drive a whole test. Token expiry, snapshot waits and
 * retry backoff all read it.
 */
export interface Clock {
  /** Milliseconds since the epoch (token expiry is compared with AWS's `ExpiryTime`). */
  now(): number;
  /** Calls `fn` after `ms`; returns a cancel function. Process timers when absent. */
  setTimer?(fn: () => unknown, ms: number): () => void;
}

export const systemClock: Clock = { now: () => Date.now() };

/** How AWS calls are retried: throttling, 5xx, network failures, and blocks that failed their checksum. */
export interface RetryOptions {
  /** Tries in all, the first included. Default 6. */
  attempts?: number;
  /** Ceiling of the first backoff, ms; it doubles each retry. Default 200. */
  baseDelayMs?: number;
  /** Cap of any backoff, ms. Default 20 000. */
  maxDelayMs?: number;
}

export interface RetryPolicy {
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export function resolveRetryPolicy(options: RetryOptions = {}): RetryPolicy {
  return {
    attempts: Math.max(1, Math.floor(options.attempts ?? 6)),
    baseDelayMs: Math.max(0, options.baseDelayMs ?? 200),
    maxDelayMs: Math.max(0, options.maxDelayMs ?? 20_000),
  };
}

/** "Full jitter" (AWS Architecture Blog): many readers throttled together do not retry in step. */
export function backoffDelayMs(
  policy: RetryPolicy,
  retry: number,
  random: () => number = Math.random,
): number {
  return Math.floor(random() * Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (retry - 1)));
}

/** Waits `ms` of `clock` time, or rejects with an `aborted` error when `signal` aborts first. */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(abortError(signal));
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      cancel();
      reject(abortError(signal));
    };
    const done = (): void => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    };
    let cancel: () => void;
    if (clock.setTimer) cancel = clock.setTimer(done, ms);
    else {
      const timer = setTimeout(done, ms);
      cancel = () => clearTimeout(timer);
    }
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export interface RetryContext {
  policy: RetryPolicy;
  clock: Clock;
  signal?: AbortSignal;
  /** Maps anything thrown to a SyncproxyError (the client's AWS error mapping). */
  mapError: (error: unknown) => SyncproxyError;
  onRetry?: (error: SyncproxyError, retry: number) => void;
}

/** Runs `operation` until it succeeds, fails with a non-retryable error, or runs out of attempts. */
export async function withRetry<T>(operation: () => Promise<T>, context: RetryContext): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    if (context.signal?.aborted) throw abortError(context.signal);
    try {
      return await operation();
    } catch (thrown) {
      if (context.signal?.aborted) throw abortError(context.signal);
      const error = context.mapError(thrown);
      if (!error.retryable || error.code === 'aborted' || attempt >= context.policy.attempts) throw error;
      context.onRetry?.(error, attempt);
      await sleep(context.clock, backoffDelayMs(context.policy, attempt), context.signal);
    }
  }
}
