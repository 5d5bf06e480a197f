import { SyncproxyError } from '../errors/syncproxy-error.js';
import { abortError, toSyncproxyError } from '../errors/to-syncproxy-error.js';
import type { Clock } from '../scheduler/clock.js';
import { sleep } from './abortable.js';

/** How the transfer engine retries a failed read or write of one chunk. */
export interface RetryOptions {
  /** Tries in all, the first included (default 5). 1 means no retry. */
  attempts?: number;
  /** Upper bound of the first backoff (default 100 ms); it doubles each attempt. */
  baseDelayMs?: number;
  /** Cap of any backoff (default 10 s). */
  maxDelayMs?: number;
}

export interface RetryPolicy {
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export function resolveRetryPolicy(options: RetryOptions = {}): RetryPolicy {
  const policy = {
    attempts: options.attempts ?? 5,
    baseDelayMs: options.baseDelayMs ?? 100,
    maxDelayMs: options.maxDelayMs ?? 10_000,
  };
  if (!Number.isInteger(policy.attempts) || policy.attempts < 1) {
    throw new SyncproxyError(`retry.attempts must be an integer >= 1 (got ${options.attempts})`, {
      code: 'config',
    });
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
  clock: Clock;
  random: () => number;
  signal?: AbortSignal;
  /** Called before each retry; the engine counts them. */
  onRetry?: (error: SyncproxyError, retry: number) => void;
}

/**
 * Runs `operation` until it succeeds, fails with a non-retryable error, or
 * runs out of attempts. Anything thrown becomes a SyncproxyError; an abort
 * is never retried.
 */
export async function withRetry<T>(
  what: string,
  operation: () => Promise<T>,
  context: RetryContext,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    if (context.signal?.aborted) throw abortError(context.signal, 'transfer');
    try {
      return await operation();
    } catch (thrown) {
      if (context.signal?.aborted) throw abortError(context.signal, 'transfer');
      const error = toSyncproxyError(thrown, { operation: what });
      if (!error.retryable || error.code === 'aborted' || attempt >= context.policy.attempts) throw error;
      context.onRetry?.(error, attempt);
      await sleep(context.clock, backoffDelayMs(context.policy, attempt, context.random), context.signal);
    }
  }
}
