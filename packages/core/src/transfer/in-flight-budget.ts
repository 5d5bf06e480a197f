import { listenForAbort } from '../abortable.js';
import { abortError } from '../errors/to-syncproxy-error.js';

/**
 * The bound on what a transfer holds at once: bytes of chunk buffers and
 * chunk jobs. A request larger than the whole budget is granted alone, so a
 * chunk bigger than `maxBytes` still goes (one at a time) instead of hanging.
 */
export class InFlightBudget {
  private bytes = 0;
  private jobs = 0;
  private readonly waiters: Array<{ bytes: number; grant: () => void }> = [];

  constructor(
    private readonly maxBytes: number,
    private maxJobs: number,
  ) {}

  /**
   * Changes the bound on jobs while jobs run (a controller that tunes reads in
   * flight): a higher bound grants waiters at once, a lower one lets the jobs
   * running finish and grants no more until they are under it.
   */
  setMaxJobs(maxJobs: number): void {
    this.maxJobs = Math.max(1, Math.floor(maxJobs));
    this.grantWaiters();
  }

  get bytesInUse(): number {
    return this.bytes;
  }

  get jobsInUse(): number {
    return this.jobs;
  }

  /** Takes `bytes` at once when they fit and nobody waits; false (and nothing taken) otherwise. */
  tryAcquire(bytes: number): boolean {
    if (this.waiters.length > 0 || !this.fits(bytes)) return false;
    this.take(bytes);
    return true;
  }

  acquire(bytes: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(abortError(signal, 'transfer'));
    if (this.waiters.length === 0 && this.fits(bytes)) {
      this.take(bytes);
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const waiter = {
        bytes,
        grant: () => {
          stop?.();
          this.take(bytes);
          resolve();
        },
      };
      const stop =
        signal === undefined
          ? undefined
          : listenForAbort(signal, () => {
              const at = this.waiters.indexOf(waiter);
              if (at !== -1) this.waiters.splice(at, 1);
              reject(abortError(signal, 'transfer'));
            });
      this.waiters.push(waiter);
    });
  }

  release(bytes: number): void {
    this.bytes -= bytes;
    this.jobs--;
    this.grantWaiters();
  }

  private grantWaiters(): void {
    while (this.waiters.length > 0 && this.fits(this.waiters[0]!.bytes)) this.waiters.shift()!.grant();
  }

  private fits(bytes: number): boolean {
    return this.jobs < this.maxJobs && (this.bytes + bytes <= this.maxBytes || this.jobs === 0);
  }

  private take(bytes: number): void {
    this.bytes += bytes;
    this.jobs++;
  }
}
