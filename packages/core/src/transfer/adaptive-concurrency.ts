import type { Clock } from '../clock.js';
import { SyncproxyError } from '../errors/syncproxy-error.js';

export interface AdaptiveConcurrencyOptions {
  /** The limit to start from (default: `minLimit`... `maxLimit`, 8 where it fits). */
  initialLimit?: number;
  /** Default 1. */
  minLimit?: number;
  /** The most reads in flight the memory budget allows. */
  maxLimit: number;
  clock: Pick<Clock, 'now'>;
  /**
   * A measuring window lasts at least this long and until `limit` reads (or refusals) came back, so
   * it spans about one round trip of every read in flight (default 50 ms).
   */
  minWindowMs?: number;
  /** ...and until this many reads and refusals, so its throttled share means something (default 32). */
  minWindowEvents?: number;
  /** Called with each new limit. */
  onLimitChange?: (limit: number) => void;
}

/** A window's throughput must beat the best one by this share to count as growth (noise is below it). */
const GROWTH = 0.05;
/** The multiplicative decrease of AIMD. */
const DECREASE = 0.7;
/** Windows held at a plateau before one step up is tried again (conditions change over a transfer). */
const PROBE_AFTER_WINDOWS = 8;

/**
 * How many reads a transfer keeps in flight, tuned from what it observes instead of set by hand:
 * the throughput of each measuring window, and the platform's `throttled` refusals.
 *
 * - The limit doubles while throughput grows (a slow start), then grows additively.
 * - When throughput stops growing, so does the limit; now and then it probes one step up, and
 *   undoes a probe that bought nothing in two windows.
 * - When the share of throttled requests rises clearly above its calm level, or half the requests
 *   are refused, the platform is refusing load: the limit is cut multiplicatively (AIMD).
 *   Refusals whose share does not rise with load (a platform that throttles a fixed share whatever
 *   the rate) are left to the retries: cutting for them would only lose throughput.
 *
 * The first window after each change is not judged, and lasts one round of reads: it mixes reads
 * started under both limits.
 * The controller only counts; it never retries anything (the retry owner reports to it).
 */
export class AdaptiveConcurrency {
  readonly #minLimit: number;
  readonly #maxLimit: number;
  readonly #minWindowMs: number;
  readonly #minWindowEvents: number;
  readonly #clock: Pick<Clock, 'now'>;
  readonly #onLimitChange: ((limit: number) => void) | undefined;
  #limit: number;
  #windowStartMs: number;
  #bytes = 0;
  #reads = 0;
  #throttles = 0;
  #settling = true;
  #slowStart = true;
  /** The best throughput seen, bytes/ms. */
  #bestRate = 0;
  /** The limit a probe started from, while the probe is judged. */
  #probedFrom: number | undefined;
  /** The throttled share of the windows not cut (averaged): the platform's calm level. */
  #calmShare: number | undefined;
  #heldWindows = 0;
  /** Windows in a row of a probe that bought no throughput. */
  #misses = 0;

  constructor(options: AdaptiveConcurrencyOptions) {
    const minLimit = options.minLimit ?? 1;
    const { maxLimit } = options;
    if (!Number.isInteger(maxLimit) || maxLimit < 1) {
      throw new SyncproxyError(`adaptive concurrency: maxLimit must be an integer >= 1 (got ${maxLimit})`, {
        code: 'config',
        retryable: false,
      });
    }
    if (!Number.isInteger(minLimit) || minLimit < 1 || minLimit > maxLimit) {
      throw new SyncproxyError(
        `adaptive concurrency: minLimit must be an integer in [1, maxLimit ${maxLimit}] (got ${minLimit})`,
        { code: 'config', retryable: false },
      );
    }
    this.#minLimit = minLimit;
    this.#maxLimit = maxLimit;
    this.#minWindowMs = options.minWindowMs ?? 50;
    this.#minWindowEvents = options.minWindowEvents ?? 32;
    this.#clock = options.clock;
    this.#onLimitChange = options.onLimitChange;
    this.#limit = Math.min(maxLimit, Math.max(minLimit, Math.floor(options.initialLimit ?? 8)));
    this.#windowStartMs = this.#clock.now();
  }

  /** Reads the transfer may keep in flight now. */
  get limit(): number {
    return this.#limit;
  }

  /** A read of `bytes` completed. */
  readDone(bytes: number): void {
    this.#bytes += bytes;
    this.#reads++;
    this.#closeWindowIfDue();
  }

  /** The platform refused a request for its rate (a retry follows elsewhere). */
  throttled(): void {
    this.#throttles++;
    this.#closeWindowIfDue();
  }

  #closeWindowIfDue(): void {
    const now = this.#clock.now();
    const elapsedMs = now - this.#windowStartMs;
    const events = this.#reads + this.#throttles;
    // The window after a change only lets the reads started under the old limit drain: one round.
    // While the limit doubles, half the events decide (growth is judged on throughput; only half
    // the requests refused cuts then, which 16 events at a steady 20% reach about once in 400).
    const minEvents = this.#slowStart ? this.#minWindowEvents / 2 : this.#minWindowEvents;
    if (
      this.#settling
        ? events < this.#limit
        : elapsedMs < this.#minWindowMs || events < Math.max(this.#limit, minEvents)
    )
      return;
    const rate = this.#bytes / elapsedMs;
    const throttledShare = this.#throttles / events;
    this.#windowStartMs = now;
    this.#bytes = 0;
    this.#reads = 0;
    this.#throttles = 0;
    if (this.#settling) {
      this.#settling = false;
      return;
    }
    this.#judge(rate, throttledShare, events);
  }

  #judge(rate: number, throttledShare: number, events: number): void {
    const calm = this.#calmShare;
    // More refused than served is overload whatever the calm level was. Otherwise the share must
    // rise clearly above the calm level: by 15 points and three standard deviations of a window
    // this size, so that a platform refusing a steady share does not cut the limit by chance.
    const rising =
      calm !== undefined && throttledShare > calm + 0.15 + 3 * Math.sqrt((calm * (1 - calm)) / events);
    if (throttledShare >= 0.5 || rising) {
      this.#slowStart = false;
      // Throughput is learnt again at the lower limit: the platform's capacity just changed.
      this.#bestRate = 0;
      this.#misses = 0;
      this.#probedFrom = undefined;
      this.#set(Math.min(this.#limit - 1, Math.floor(this.#limit * DECREASE)));
      return;
    }
    // Averaged over every window that was not cut: one window's share is noisy.
    this.#calmShare = calm === undefined ? throttledShare : 0.8 * calm + 0.2 * throttledShare;
    if (rate > this.#bestRate * (1 + GROWTH)) {
      this.#bestRate = rate;
      this.#heldWindows = 0;
      this.#misses = 0;
      this.#probedFrom = undefined;
      const step = this.#slowStart ? this.#limit : Math.max(1, Math.ceil(this.#limit / 8));
      this.#set(this.#limit + step);
      return;
    }
    // Throughput stopped growing: so does the limit (what is in flight stays within the memory
    // budget). A probe that bought nothing twice running is undone (one window alone may just
    // have been unlucky).
    this.#slowStart = false;
    if (this.#probedFrom !== undefined) {
      if (++this.#misses < 2) return;
      const back = this.#probedFrom;
      this.#probedFrom = undefined;
      this.#misses = 0;
      this.#set(back);
      return;
    }
    if (++this.#heldWindows >= PROBE_AFTER_WINDOWS && this.#limit < this.#maxLimit) {
      // The probe is judged against what this limit gives now, not against an old best.
      this.#heldWindows = 0;
      this.#bestRate = rate;
      this.#probedFrom = this.#limit;
      this.#set(this.#limit + Math.max(1, Math.ceil(this.#limit / 8)));
    }
  }

  #set(limit: number): void {
    const bounded = Math.min(this.#maxLimit, Math.max(this.#minLimit, limit));
    if (bounded === this.#limit) return;
    this.#limit = bounded;
    this.#settling = true;
    this.#onLimitChange?.(bounded);
  }
}
