import { type Clock, setClockTimer } from '../clock.js';

/** The steps of a sync that can take long without moving data of their own. */
export type HostSyncPhase = 'snapshot' | 'transfer' | 'verify' | 'cleanup';

/**
 * A step of a sync began, is still running, or ended. While a step runs, a
 * `progress` event comes every tick (`phaseTickMs`), so a wait of minutes
 * (a snapshot, a re-hash, snapshot deletion) is never silent.
 */
export interface HostSyncPhaseEvent {
  type: 'phase';
  phase: HostSyncPhase;
  state: 'start' | 'progress' | 'end';
  /** The disk the step concerns (transfer, verify); absent for the host's snapshot and clean-up. */
  diskId?: string;
  /** Time since the step began, on the sync's clock. */
  elapsedMs: number;
  /** Bytes checked so far, where the step counts bytes (verification). */
  bytesDone?: number;
  /** Bytes the step covers, where it counts bytes. */
  bytesTotal?: number;
}

/** One running step: its ticks, its byte figures, its end. */
export class RunningPhase {
  readonly #emit: (event: HostSyncPhaseEvent) => void;
  readonly #clock: Clock;
  readonly #phase: HostSyncPhase;
  readonly #diskId: string | undefined;
  readonly #startedAt: number;
  readonly #tickMs: number;
  #bytes: { bytesDone: number; bytesTotal: number } | undefined;
  #cancel: (() => void) | undefined;
  #ended = false;

  constructor(
    emit: (event: HostSyncPhaseEvent) => void,
    clock: Clock,
    phase: HostSyncPhase,
    diskId: string | undefined,
    tickMs: number | undefined,
  ) {
    this.#emit = emit;
    this.#clock = clock;
    this.#phase = phase;
    this.#diskId = diskId;
    this.#startedAt = clock.now();
    this.#tickMs = tickMs ?? 0;
    this.#send('start');
    if (tickMs !== undefined) this.#schedule();
  }

  /** The step's byte figures; shown at the next tick and at the end. */
  bytes(bytesDone: number, bytesTotal: number): void {
    this.#bytes = { bytesDone, bytesTotal };
  }

  /** Idempotent: a step ends once. */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#cancel?.();
    this.#send('end');
  }

  #schedule(): void {
    // A background timer: a tick must never keep the process alive after the sync.
    this.#cancel = setClockTimer(
      this.#clock,
      () => {
        if (this.#ended) return;
        this.#send('progress');
        this.#schedule();
      },
      this.#tickMs,
      { background: true },
    );
  }

  #send(state: HostSyncPhaseEvent['state']): void {
    this.#emit({
      type: 'phase',
      phase: this.#phase,
      state,
      ...(this.#diskId !== undefined ? { diskId: this.#diskId } : {}),
      elapsedMs: this.#clock.now() - this.#startedAt,
      ...this.#bytes,
    });
  }
}
