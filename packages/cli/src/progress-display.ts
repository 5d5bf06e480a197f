import type { HostSyncPhaseEvent, TransferProgress } from '@syncproxy/core';
import cliProgress from 'cli-progress';
import type { CliOutput } from './cli-io.js';
import { formatBytes, formatDuration, formatRate } from './human-units.js';

/** Shows the progress of the disks of a sync, one line or bar each. */
export interface ProgressDisplay {
  /** The `onProgress` callback of one disk's transfer. */
  track(diskId: string): (progress: TransferProgress) => void;
  /** The disk's transfer ended. */
  end(diskId: string, outcome: 'done' | 'failed' | 'interrupted'): void;
  /**
   * A step of the sync (snapshot wait, verification, clean-up) started, ticked or ended: a step
   * that lasts an interval or more shows a line each interval, and one when it ends.
   */
  phase(event: HostSyncPhaseEvent): void;
  /** Releases the terminal (restores the cursor); idempotent. */
  stop(): void;
}

export interface ProgressDisplayOptions {
  output: CliOutput;
  /** Without a TTY: one plain line per disk at most this often (default 2000 ms of transfer time). */
  plainIntervalMs?: number;
  /** Force plain lines even on a TTY. */
  plain?: boolean;
}

/** Live bars on a TTY (rate, ETA); plain periodic lines otherwise (logs, CI, pipes). */
export function createProgressDisplay(options: ProgressDisplayOptions): ProgressDisplay {
  return options.output.isTTY === true && options.plain !== true
    ? new BarDisplay(options.output)
    : new LineDisplay(options.output, options.plainIntervalMs ?? 2000);
}

/** A step shorter than this shows nothing: only the waits someone would wonder about. */
const SILENT_STEP_MS = 2000;

/**
 * Lines for the steps of a sync that move no disk data of their own: from 2 s
 * of the step's time on, one each `intervalMs`, then one at its end when any
 * was shown.
 */
class PhaseLines {
  private readonly printedAt = new Map<string, number>();

  constructor(
    private readonly intervalMs: number,
    private readonly write: (line: string) => void,
  ) {}

  phase(event: HostSyncPhaseEvent): void {
    const key = event.diskId === undefined ? event.phase : `${event.diskId}  ${event.phase}`;
    if (event.state === 'start') {
      this.printedAt.set(key, 0);
      return;
    }
    const printedAt = this.printedAt.get(key);
    if (printedAt === undefined) return;
    if (event.state === 'end') {
      this.printedAt.delete(key);
      if (printedAt > 0) this.write(`${key}  done in ${formatDuration(event.elapsedMs)}\n`);
      return;
    }
    if (event.elapsedMs < SILENT_STEP_MS || event.elapsedMs - printedAt < this.intervalMs) return;
    this.printedAt.set(key, event.elapsedMs);
    const bytes =
      event.bytesDone === undefined || event.bytesTotal === undefined
        ? ''
        : `${String(event.bytesTotal === 0 ? 100 : Math.floor((100 * event.bytesDone) / event.bytesTotal)).padStart(3)}%  ${formatBytes(event.bytesDone)} / ${formatBytes(event.bytesTotal)}  `;
    this.write(`${key}  ${bytes}${formatDuration(event.elapsedMs)}\n`);
  }
}

/** A display that shows nothing (`--quiet`, or `--json` without a TTY). */
export const silentProgress: ProgressDisplay = {
  track: () => () => {},
  end: () => {},
  phase: () => {},
  stop: () => {},
};

interface Figures {
  percent: string;
  done: string;
  total: string;
  /** Logical bytes per second (holes and zeroes included). */
  rate: string;
  /** Data bytes (what was read and written) and their rate, when the engine counts them. */
  data: string;
  eta: string;
}

function figures(p: TransferProgress): Figures {
  const percent =
    p.bytesTotal === undefined || p.bytesTotal === 0
      ? p.bytesTotal === 0
        ? 100
        : undefined
      : Math.floor((100 * p.bytesDone) / p.bytesTotal);
  return {
    percent: percent === undefined ? '  ?%' : `${String(percent).padStart(3)}%`,
    done: formatBytes(p.bytesDone),
    total: p.bytesTotal === undefined ? '?' : formatBytes(p.bytesTotal),
    // Beside the data figures, the logical rate says what it is: holes make it huge on empty disks.
    rate: `${formatRate(p.bytesPerSecond)}${p.dataBytes === undefined ? '' : ' logical'}`,
    data:
      p.dataBytes === undefined
        ? ''
        : `  data ${formatBytes(p.dataBytes)} at ${formatRate(p.dataBytesPerSecond ?? 0)}`,
    eta: p.etaMs === undefined ? '-' : formatDuration(p.etaMs),
  };
}

class LineDisplay implements ProgressDisplay {
  private readonly last = new Map<
    string,
    { printedAt: number; progress?: TransferProgress; printed?: TransferProgress }
  >();
  private readonly phases: PhaseLines;

  constructor(
    private readonly output: CliOutput,
    private readonly intervalMs: number,
  ) {
    this.phases = new PhaseLines(intervalMs, (line) => output.write(line));
  }

  phase(event: HostSyncPhaseEvent): void {
    this.phases.phase(event);
  }

  track(diskId: string): (progress: TransferProgress) => void {
    const entry: { printedAt: number; progress?: TransferProgress; printed?: TransferProgress } = {
      printedAt: Number.NEGATIVE_INFINITY,
    };
    this.last.set(diskId, entry);
    return (progress) => {
      entry.progress = progress;
      if (progress.elapsedMs - entry.printedAt < this.intervalMs) return;
      entry.printedAt = progress.elapsedMs;
      entry.printed = progress;
      this.print(diskId, progress);
    };
  }

  end(diskId: string, outcome: 'done' | 'failed' | 'interrupted'): void {
    const entry = this.last.get(diskId);
    // A finished disk ends on its final figures, printed once.
    if (outcome === 'done' && entry?.progress !== undefined) {
      if (entry.printed !== entry.progress) this.print(diskId, entry.progress);
    } else this.output.write(`${diskId}  ${outcome}\n`);
  }

  stop(): void {}

  private print(diskId: string, progress: TransferProgress): void {
    const f = figures(progress);
    this.output.write(`${diskId}  ${f.percent}  ${f.done} / ${f.total}  ${f.rate}${f.data}  ETA ${f.eta}\n`);
  }
}

class BarDisplay implements ProgressDisplay {
  private readonly bars: cliProgress.MultiBar;
  private readonly byDisk = new Map<string, { bar: cliProgress.SingleBar; figures?: Figures }>();
  private width = 0;
  // Once a second of the step's time: above the bars, or plain before any bar exists (the snapshot
  // wait), as cli-progress shows its log only when it redraws bars.
  private readonly phases = new PhaseLines(1000, (line) =>
    this.byDisk.size === 0 ? this.output.write(line) : this.bars.log(line),
  );

  constructor(private readonly output: CliOutput) {
    this.bars = new cliProgress.MultiBar(
      {
        stream: output as unknown as NodeJS.WritableStream,
        // Not {eta}: cli-progress fills that token itself, in bare seconds ("ETA 3").
        format: '{disk} |{bar}| {pct} {done} / {size}  {rate}{data}  ETA {remaining}  {state}',
        barsize: 30,
        hideCursor: true,
        clearOnComplete: false,
        stopOnComplete: false,
        fps: 10,
      },
      cliProgress.Presets.shades_classic,
    );
  }

  track(diskId: string): (progress: TransferProgress) => void {
    this.width = Math.max(this.width, diskId.length);
    const entry: { bar: cliProgress.SingleBar; figures?: Figures } = {
      bar: this.bars.create(1, 0, this.payload(diskId)),
    };
    this.byDisk.set(diskId, entry);
    return (progress) => {
      entry.figures = figures(progress);
      const total = progress.bytesTotal ?? Math.max(progress.bytesDone, 1);
      entry.bar.setTotal(Math.max(total, 1));
      entry.bar.update(total === 0 ? 1 : progress.bytesDone, this.payload(diskId, entry.figures));
    };
  }

  end(diskId: string, outcome: 'done' | 'failed' | 'interrupted'): void {
    const entry = this.byDisk.get(diskId);
    if (entry === undefined) return;
    entry.bar.update(this.payload(diskId, entry.figures, outcome));
    entry.bar.stop();
  }

  phase(event: HostSyncPhaseEvent): void {
    this.phases.phase(event);
  }

  stop(): void {
    this.bars.stop();
  }

  private payload(diskId: string, f?: Figures, state = ''): Record<string, string> {
    return {
      disk: diskId.padEnd(this.width),
      pct: f?.percent ?? '  0%',
      done: f?.done ?? '0 B',
      size: f?.total ?? '?',
      rate: f?.rate ?? '-',
      data: f?.data ?? '',
      remaining: f?.eta ?? '-',
      state,
    };
  }
}
