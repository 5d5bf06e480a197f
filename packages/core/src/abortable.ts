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

/** Callbacks waiting for each signal's abort, behind one 'abort' listener per signal. */
const abortCallbacks = new WeakMap<AbortSignal, Set<() => void>>();

/**
 * Calls `callback` once when `signal` aborts; returns the function that stops
 * listening. A signal gets one 'abort' listener however many callbacks wait on
 * it: EventTarget compares each listener added with every one it holds, and a
 * transfer waits on its signal once per read in flight and per job queued.
 */
export function listenForAbort(signal: AbortSignal, callback: () => void): () => void {
  let callbacks = abortCallbacks.get(signal);
  if (callbacks === undefined) {
    const set = new Set<() => void>();
    callbacks = set;
    abortCallbacks.set(signal, set);
    signal.addEventListener(
      'abort',
      () => {
        abortCallbacks.delete(signal);
        for (const waiting of set) waiting();
      },
      { once: true },
    );
  }
  callbacks.add(callback);
  const registered = callbacks;
  return () => {
    registered.delete(callback);
  };
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
    const stop = listenForAbort(signal, () => {
      promise.catch(() => {});
      reject(abortError(signal, what));
    });
    promise.then(
      (value) => {
        stop();
        resolve(value);
      },
      (error: unknown) => {
        stop();
        reject(error);
      },
    );
  });
}
