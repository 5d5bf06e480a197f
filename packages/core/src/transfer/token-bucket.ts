import { type Clock, setClockTimer, systemClock } from '../clock.js';
import { SyncproxyError } from '../errors/syncproxy-error.js';
import { abortError } from '../errors/to-syncproxy-error.js';

export interface TokenBucketOptions {
  /** Sustained rate, bytes per second. */
  bytesPerSecond: number;
  /** Bytes that may go at once after an idle period (default: one second's worth). */
  burstBytes?: number;
  clock?: Clock;
}

/**
 * A bandwidth limit in bytes per second. One bucket is meant to be shared by
 * every transfer of a proxy: each `take` reserves its bytes in arrival order,
 * so concurrent transfers split the rate instead of each getting all of it.
 *
 * Reservations may drive the balance negative (a 4 MiB chunk under a 1 MiB/s
 * limit waits four seconds rather than never going), which keeps the long-run
 * rate exact whatever the chunk size.
 */
export class TokenBucket {
  private rate: number;
  private readonly burst: number;
  private readonly clock: Clock;
  private tokens: number;
  private updatedAt: number;

  constructor(options: TokenBucketOptions) {
    if (!(options.bytesPerSecond > 0) || !Number.isFinite(options.bytesPerSecond)) {
      throw new SyncproxyError(
        `bandwidth limit must be a positive number of bytes/s (got ${options.bytesPerSecond})`,
        {
          code: 'config',
        },
      );
    }
    this.rate = options.bytesPerSecond;
    this.burst = options.burstBytes ?? options.bytesPerSecond;
    this.clock = options.clock ?? systemClock;
    this.tokens = this.burst;
    this.updatedAt = this.clock.now();
  }

  get bytesPerSecond(): number {
    return this.rate;
  }

  /** Changes the rate; reservations already waiting keep their times. */
  setRate(bytesPerSecond: number): void {
    if (!(bytesPerSecond > 0))
      throw new SyncproxyError('bandwidth limit must be > 0 bytes/s', { code: 'config' });
    this.refill();
    this.rate = bytesPerSecond;
  }

  /** Resolves once `bytes` may be sent; rejects with an aborted error if `signal` aborts first. */
  take(bytes: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(abortError(signal, 'transfer'));
    this.refill();
    this.tokens -= bytes;
    if (this.tokens >= 0) return Promise.resolve();
    const waitMs = Math.ceil((-this.tokens / this.rate) * 1000);
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        cancel();
        // The bytes were never sent: give them back to whoever comes next.
        this.tokens += bytes;
        reject(abortError(signal, 'transfer'));
      };
      const cancel = setClockTimer(
        this.clock,
        () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        waitMs,
      );
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  private refill(): void {
    const now = this.clock.now();
    const elapsed = Math.max(0, now - this.updatedAt);
    this.updatedAt = now;
    this.tokens = Math.min(this.burst, this.tokens + (elapsed / 1000) * this.rate);
  }
}
