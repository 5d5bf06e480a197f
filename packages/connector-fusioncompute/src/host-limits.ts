import { abortError } from '@syncproxy/core';

/** FusionCompute's product limits per compute node (CNA). */
export const MAX_BACKUP_CONNECTIONS_PER_HOST = 8;
export const MAX_VOLUMES_IN_BACKUP_PER_HOST = 8;

/** A held volume slot: given back with `release()`; asked to give it back when another reader waits. */
export interface VolumeSlot {
  release(): void;
}

interface Holder {
  /** Reads in flight on the holder's backup resource. */
  busy: () => boolean;
  /** Gives the slot back (deleting the backup resource first). */
  yieldSlot: () => void;
  released: boolean;
}

interface Waiter {
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * The two per-host limits of FusionCompute, kept for one compute node by the
 * readers of one connector: at most 8 backup connections (ranged reads in
 * flight) and at most 8 volumes in backup (backup resources alive) at once.
 *
 * A reader keeps its backup resource from its first read to its close, and a
 * host sync may hold more readers open than the host has volume slots. So an
 * idle holder (no read in flight) gives its slot to a waiting reader and asks
 * for a new resource when it reads again: no deadlock, and never a 9th volume.
 */
export class CnaLimiter {
  readonly host: string;
  readonly #maxConnections: number;
  readonly #maxVolumes: number;
  #connections = 0;
  readonly #connectionWaiters: Waiter[] = [];
  readonly #holders = new Set<Holder>();
  readonly #volumeWaiters: Waiter[] = [];
  /** Highest number of connections seen at once: for tests and logs. */
  peakConnections = 0;
  peakVolumes = 0;

  constructor(
    host: string,
    maxConnections = MAX_BACKUP_CONNECTIONS_PER_HOST,
    maxVolumes = MAX_VOLUMES_IN_BACKUP_PER_HOST,
  ) {
    this.host = host;
    this.#maxConnections = maxConnections;
    this.#maxVolumes = maxVolumes;
  }

  get connections(): number {
    return this.#connections;
  }

  get volumes(): number {
    return this.#holders.size;
  }

  /** Runs `work` holding one of the host's backup connections. */
  async withConnection<T>(work: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    // A freed connection is handed to the first waiter, never left for a newcomer to race it for.
    if (this.#connections >= this.#maxConnections || this.#connectionWaiters.length > 0)
      await this.#wait(this.#connectionWaiters, signal);
    else this.#connections++;
    this.peakConnections = Math.max(this.peakConnections, this.#connections);
    try {
      return await work();
    } finally {
      const next = this.#connectionWaiters.shift();
      if (next !== undefined) next.resolve();
      else this.#connections--;
    }
  }

  /**
   * Waits for a volume slot. `busy` says whether the caller has reads in
   * flight; `yieldSlot` is called when an idle caller should give its slot to
   * a waiting one (it must release the slot, after deleting its resource).
   */
  async acquireVolume(
    options: { busy: () => boolean; yieldSlot: () => void },
    signal?: AbortSignal,
  ): Promise<VolumeSlot> {
    while (this.#holders.size >= this.#maxVolumes) {
      const waiting = this.#wait(this.#volumeWaiters, signal);
      this.#askIdleToYield();
      await waiting;
    }
    const holder: Holder = { busy: options.busy, yieldSlot: options.yieldSlot, released: false };
    this.#holders.add(holder);
    this.peakVolumes = Math.max(this.peakVolumes, this.#holders.size);
    return {
      release: () => {
        if (holder.released) return;
        holder.released = true;
        this.#holders.delete(holder);
        this.#volumeWaiters.shift()?.resolve();
      },
    };
  }

  /** A holder calls this when its last read in flight ended: a waiter may take its slot. */
  idle(): void {
    if (this.#volumeWaiters.length > 0) this.#askIdleToYield();
  }

  #askIdleToYield(): void {
    for (const holder of this.#holders) {
      if (!holder.busy() && !holder.released) {
        holder.yieldSlot();
        return;
      }
    }
  }

  #wait(queue: Waiter[], signal: AbortSignal | undefined): Promise<void> {
    if (signal?.aborted) return Promise.reject(abortError(signal, `waiting for host ${this.host}`));
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        reject,
      };
      const onAbort = (): void => {
        const i = queue.indexOf(waiter);
        if (i !== -1) queue.splice(i, 1);
        reject(abortError(signal, `waiting for host ${this.host}`));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      queue.push(waiter);
    });
  }
}

/** One {@link CnaLimiter} per compute node, shared by every session of a connector. */
export class HostLimits {
  readonly #byHost = new Map<string, CnaLimiter>();
  readonly #maxConnections: number;
  readonly #maxVolumes: number;

  constructor(options: { maxConnections?: number; maxVolumes?: number } = {}) {
    this.#maxConnections = options.maxConnections ?? MAX_BACKUP_CONNECTIONS_PER_HOST;
    this.#maxVolumes = options.maxVolumes ?? MAX_VOLUMES_IN_BACKUP_PER_HOST;
  }

  /** The limiter of a compute node, by its URN or address. */
  of(host: string): CnaLimiter {
    let limiter = this.#byHost.get(host);
    if (limiter === undefined) {
      limiter = new CnaLimiter(host, this.#maxConnections, this.#maxVolumes);
      this.#byHost.set(host, limiter);
    }
    return limiter;
  }
}
