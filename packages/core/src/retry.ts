import { sleep } from './abortable.js';
import { type Clock, systemClock } from './clock.js';
import { SyncproxyError } from './errors/syncproxy-error.js';
import { abortError, toSyncproxyError } from './errors/to-syncproxy-error.js';

/** How a failed operation is retried (the engine per chunk, clients per API call). */
export interface RetryOptions {
  /** Tries in all, the first included (default 5). 1 means no retry. */
  attempts?: number;
  /** Upper bound of the first backoff (default 100 ms); it doubles each attempt. */
  baseDelayMs?: number;
  /** Cap of any backoff (default 10 s). */
  maxDelayMs?: number;
  /**
   * Tries in all when the failure is a `throttled` refusal, which did no work: a platform that
   * refuses a fixed share of calls would otherwise fail a long transfer on a rare run of refusals.
   * Default: `attempts` when that is given, else the owner's default (the AWS client: 12).
   */
  throttledAttempts?: number;
}

export interface RetryPolicy {
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** Tries in all for `throttled` refusals (never fewer than `attempts`); absent: `attempts`. */
  throttledAttempts?: number;
}

/** Fills defaults (5 attempts, 100 ms, 10 s, or `defaults`) and checks the values. */
export function resolveRetryPolicy(
  options: RetryOptions = {},
  defaults: Partial<RetryPolicy> = {},
): RetryPolicy {
  const attempts = options.attempts ?? defaults.attempts ?? 5;
  const policy = {
    attempts,
    baseDelayMs: options.baseDelayMs ?? defaults.baseDelayMs ?? 100,
    maxDelayMs: options.maxDelayMs ?? defaults.maxDelayMs ?? 10_000,
    throttledAttempts:
      options.throttledAttempts ??
      (options.attempts !== undefined ? attempts : (defaults.throttledAttempts ?? attempts)),
  };
  if (!Number.isInteger(policy.attempts) || policy.attempts < 1) {
    throw new SyncproxyError(`retry.attempts must be an integer >= 1 (got ${options.attempts})`, {
      code: 'config',
    });
  }
  if (!Number.isInteger(policy.throttledAttempts) || policy.throttledAttempts < 1) {
    throw new SyncproxyError(
      `retry.throttledAttempts must be an integer >= 1 (got ${policy.throttledAttempts})`,
      { code: 'config' },
    );
  }
  if (!(policy.baseDelayMs >= 0) || !(policy.maxDelayMs >= 0)) {
    throw new SyncproxyError('retry.baseDelayMs and retry.maxDelayMs must be >= 0', { code: 'config' });
  }
  return policy;
}

/**
 * The wait before retry number `retry` (1-based): "full jitter", a uniform
 * draw in [0, min(max, base * 2^(retry-1))), which spreads the retries of many
 * chunks hitting one throttled endpoint instead of synchronising them.
 */
export function backoffDelayMs(policy: RetryPolicy, retry: number, random: () => number): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (retry - 1));
  return Math.floor(random() * ceiling);
}

export interface RetryContext {
  policy: RetryPolicy;
  /** Default: the system clock. */
  clock?: Clock;
  /** Default: Math.random. */
  random?: () => number;
  signal?: AbortSignal;
  /** Called before each retry (to count retries, or log them). */
  onRetry?: (error: SyncproxyError, retry: number) => void;
  /** Maps anything thrown to a SyncproxyError; default {@link toSyncproxyError}. A client maps its platform's errors here. */
  mapError?: (error: unknown) => SyncproxyError;
}

/**
 * The error a retry loop gives up on leaves it non-retryable: this loop was
 * its retry owner, so no caller retries it again (an AWS block retried 6 times
 * by the client is not retried 5 times more by the engine). Same error object,
 * class and fields (a PlatformApiError keeps its status), with `retryable`
 * false and the attempts in `details`.
 */
function exhausted(error: SyncproxyError, attempts: number): SyncproxyError {
  if (!error.retryable) return error;
  Object.defineProperty(error, 'retryable', {
    value: false,
    enumerable: true,
    writable: false,
    configurable: true,
  });
  Object.defineProperty(error, 'details', {
    value: { ...error.details, attempts },
    enumerable: true,
    writable: false,
    configurable: true,
  });
  return error;
}

/**
 * Runs `operation` until it succeeds, fails with a non-retryable error, or
 * runs out of attempts (then rejects with that error made non-retryable), waiting a full-jitter backoff between tries. Anything
 * thrown becomes a SyncproxyError; an abort is never retried. The one retry
 * loop of the SDK: the engine uses it per chunk, clients per API call.
 */
export async function withRetry<T>(
  what: string,
  operation: () => Promise<T>,
  context: RetryContext,
): Promise<T> {
  const clock = context.clock ?? systemClock;
  const random = context.random ?? Math.random;
  const mapError = context.mapError ?? ((thrown: unknown) => toSyncproxyError(thrown, { operation: what }));
  for (let attempt = 1; ; attempt++) {
    if (context.signal?.aborted) throw abortError(context.signal, what);
    try {
      return await operation();
    } catch (thrown) {
      if (context.signal?.aborted) throw abortError(context.signal, what);
      const error = mapError(thrown);
      if (!error.retryable || error.code === 'aborted') throw error;
      const { attempts, throttledAttempts = attempts } = context.policy;
      if (attempt >= (error.code === 'throttled' ? Math.max(attempts, throttledAttempts) : attempts))
        throw exhausted(error, attempt);
      context.onRetry?.(error, attempt);
      await sleep(clock, backoffDelayMs(context.policy, attempt, random), context.signal, what);
    }
  }
}
