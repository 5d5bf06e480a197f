import type { Clock } from './clock.js';
import { setClockTimer } from './clock.js';
import { abortError } from './errors/to-syncproxy-error.js';

/** Waits `ms` of `clock` time; rejects with an aborted error as soon as `signal` aborts. */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal, what = 'transfer'): Promise<void> {
  if (signal?.aborted) return Promise.reject(abortError(signal, what));
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      cancel();
      reject(abortError(signal, what));
    };
    const cancel = setClockTimer(
      clock,
      () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      },
      ms,
    );
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Settles with `promise`, or rejects with an aborted error as soon as `signal`
 * aborts. The work behind `promise` is not stopped (a read that ignores its
 * signal keeps running); its result is simply no longer waited for.
 */
export function raceAbort<T>(
  promise: Promise<T>,
  signal: AbortSignal | undefined,
  what = 'transfer',
): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) {
    promise.catch(() => {});
    return Promise.reject(abortError(signal, what));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      promise.catch(() => {});
      reject(abortError(signal, what));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}
