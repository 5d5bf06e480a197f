import type { Clock } from '../clock.js';

/** A progress event of {@link transferDisk}; at most one per 100 ms, plus a last one at the end. */
export interface TransferProgress {
  /** Bytes of the disk brought up to date (data written and ranges zeroed), resumed ones included. */
  bytesDone: number;
  /** All bytes the transfer covers; undefined when counting them would cost a second read (hash diff). */
  bytesTotal: number | undefined;
  chunksDone: number;
  chunksTotal: number | undefined;
  /** Average rate of this run, bytes per second: logical bytes, holes and zeroes included. */
  bytesPerSecond: number;
  /**
   * Bytes of the disk written as data (no holes, no zeroes), each once: like {@link bytesDone},
   * resumed ones included, and a chunk re-sent after a crash counted once. Absent from a meter
   * that does not count them.
   */
  dataBytes?: number;
  /**
   * Data bytes this run wrote, per second of this run (resumed ones excluded): the network's
   * rate, not inflated by empty space.
   */
  dataBytesPerSecond?: number;
  /** Estimated time left at that rate; undefined when the total or the rate is unknown. */
  etaMs: number | undefined;
  elapsedMs: number;
  retries: number;
}

const MIN_INTERVAL_MS = 100;

/** Turns counters into throttled {@link TransferProgress} events. */
export class ProgressMeter {
  private lastEmitAt = Number.NEGATIVE_INFINITY;
  private readonly startedAt: number;
  private bytesAtStart: number;
  private dataBytesAtStart = 0;

  constructor(
    private readonly clock: Clock,
    private readonly onProgress: ((progress: TransferProgress) => void) | undefined,
  ) {
    this.startedAt = clock.now();
    this.bytesAtStart = 0;
  }

  /** Bytes (and data bytes) already done when this run began (a resume); excluded from the rates. */
  setBaseline(bytes: number, dataBytes = 0): void {
    this.bytesAtStart = bytes;
    this.dataBytesAtStart = dataBytes;
  }

  report(
    counters: {
      bytesDone: number;
      bytesTotal?: number;
      chunksDone: number;
      chunksTotal?: number;
      retries: number;
      dataBytes?: number;
    },
    final = false,
  ): void {
    if (this.onProgress === undefined) return;
    const now = this.clock.now();
    if (!final && now - this.lastEmitAt < MIN_INTERVAL_MS) return;
    this.lastEmitAt = now;
    const elapsedMs = now - this.startedAt;
    const moved = counters.bytesDone - this.bytesAtStart;
    const bytesPerSecond = elapsedMs > 0 ? (moved / elapsedMs) * 1000 : 0;
    const left =
      counters.bytesTotal === undefined ? undefined : Math.max(0, counters.bytesTotal - counters.bytesDone);
    const etaMs =
      left === undefined
        ? undefined
        : left === 0
          ? 0
          : bytesPerSecond > 0
            ? (left / bytesPerSecond) * 1000
            : undefined;
    try {
      this.onProgress({
        bytesDone: counters.bytesDone,
        bytesTotal: counters.bytesTotal,
        chunksDone: counters.chunksDone,
        chunksTotal: counters.chunksTotal,
        bytesPerSecond,
        etaMs,
        elapsedMs,
        retries: counters.retries,
        ...(counters.dataBytes === undefined
          ? {}
          : {
              dataBytes: counters.dataBytes,
              dataBytesPerSecond:
                elapsedMs > 0 ? ((counters.dataBytes - this.dataBytesAtStart) / elapsedMs) * 1000 : 0,
            }),
      });
    } catch {
      // A failing progress callback must not fail the transfer.
    }
  }
}
