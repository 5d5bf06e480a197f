import { type Clock, type Logger, SyncproxyError, setClockTimer } from '@syncproxy/core';
import type { FcBackupResource, FusionComputeClient } from './client.js';
import type { CnaLimiter, VolumeSlot } from './host-limits.js';

/** The most a backup resource may live, all extensions included (eSDK `delay`: 60..7200 s). */
export const MAX_BACKUP_LIFETIME_SEC = 7200;

export interface BackupLeaseOptions {
  client: FusionComputeClient;
  volumeUri: string;
  /** The snapshot read (`snapUrn2`), and the base of an incremental (`snapUrn1`). */
  snapUrn2: string;
  snapUrn1?: string;
  /** The proxy's address, as the CNA sees it. */
  proxyIp: string;
  delaySec: number;
  /** The tag `sweep` finds. */
  description: string;
  limiter: CnaLimiter;
  clock: Clock;
  logger?: Logger;
}

interface Active {
  id: string;
  resource: FcBackupResource;
  slot: VolumeSlot;
  createdAt: number;
  /** Seconds since creation the resource may live, extensions included. */
  lifetimeSec: number;
  cancelTimer: () => void;
}

/**
 * The backup resource of one reader: asked for at the first read (taking one
 * of the host's 8 volume slots), extended before it runs out, asked for again
 * when its token expired mid-read, handed back when the host needs the slot
 * for another volume while this one is idle, and deleted on close - also
 * after a failure.
 */
export class BackupLease {
  readonly #options: BackupLeaseOptions;
  #active: Promise<Active> | undefined;
  #inFlight = 0;
  #closed = false;
  /** Resources asked for so far: 1, plus one per expiry or yield. */
  requests = 0;

  constructor(options: BackupLeaseOptions) {
    this.#options = options;
  }

  /** Runs `read` with the current resource (asking for one first when needed). */
  async use<T>(read: (resource: FcBackupResource) => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (this.#closed)
      throw new SyncproxyError('the reader is closed', { code: 'internal', retryable: false });
    this.#inFlight++;
    try {
      this.#active ??= this.#create(signal);
      const active = await this.#active;
      return await read(active.resource);
    } finally {
      this.#inFlight--;
      if (this.#inFlight === 0) this.#options.limiter.idle();
    }
  }

  /** The token of `resource` expired: the next `use` asks for a new resource (once for all readers in flight). */
  async renew(resource: FcBackupResource): Promise<void> {
    const current = this.#active;
    if (current === undefined) return;
    const active = await current.catch(() => undefined);
    if (active === undefined || active.resource.token !== resource.token) return;
    if (this.#active === current) this.#active = undefined;
    this.#options.logger?.info(
      {
        volume: this.#options.volumeUri,
      },
      'backup resource token expired; asking for a new one',
    );
    await this.#delete(active);
  }

  /** Deletes the resource and gives its slot back. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    const current = this.#active;
    this.#active = undefined;
    if (current === undefined) return;
    const active = await current.catch(() => undefined);
    if (active !== undefined) await this.#delete(active);
  }

  async #create(signal?: AbortSignal): Promise<Active> {
    const o = this.#options;
    let slot: VolumeSlot | undefined;
    try {
      slot = await o.limiter.acquireVolume(
        { busy: () => this.#inFlight > 0, yieldSlot: () => void this.#yield() },
        signal,
      );
      const { id, resource } = await o.client.createBackupResource(
        o.volumeUri,
        {
          ip: o.proxyIp,
          snapUrn2: o.snapUrn2,
          ...(o.snapUrn1 ? { snapUrn1: o.snapUrn1 } : {}),
          delaySec: o.delaySec,
          description: o.description,
        },
        signal,
      );
      this.requests++;
      const active: Active = {
        id,
        resource,
        slot,
        createdAt: o.clock.now(),
        lifetimeSec: o.delaySec,
        cancelTimer: () => {},
      };
      this.#scheduleExtension(active);
      return active;
    } catch (error) {
      slot?.release();
      this.#active = undefined;
      throw error;
    }
  }

  /**
   * Extends the resource when two thirds of its lifetime are gone, by another
   * `delay`, up to 7200 s in all; past that, the token expires and the next
   * read asks for a new resource.
   */
  #scheduleExtension(active: Active): void {
    const o = this.#options;
    const elapsedSec = (o.clock.now() - active.createdAt) / 1000;
    if (active.lifetimeSec >= MAX_BACKUP_LIFETIME_SEC) return;
    const dueInMs = Math.max(0, (active.lifetimeSec * (2 / 3) - elapsedSec) * 1000);
    active.cancelTimer = setClockTimer(
      o.clock,
      () => {
        const lifetime = Math.min(MAX_BACKUP_LIFETIME_SEC, active.lifetimeSec + o.delaySec);
        o.client
          .extendBackupResource(o.volumeUri, active.id, lifetime)
          .then(() => {
            active.lifetimeSec = lifetime;
            this.#scheduleExtension(active);
          })
          .catch((error: unknown) =>
            // Not fatal: an expired token is asked for again at the next read.
            o.logger?.warn(
              {
                volume: o.volumeUri,
                error: (error as Error)?.message,
              },
              'extending a backup resource failed',
            ),
          );
      },
      dueInMs,
      { background: true },
    );
  }

  async #yield(): Promise<void> {
    const current = this.#active;
    if (current === undefined || this.#inFlight > 0) return;
    this.#active = undefined;
    const active = await current.catch(() => undefined);
    if (active !== undefined) await this.#delete(active);
  }

  async #delete(active: Active): Promise<void> {
    active.cancelTimer();
    try {
      await this.#options.client.deleteBackupResource(this.#options.volumeUri, active.id);
    } catch (error) {
      this.#options.logger?.warn(
        {
          volume: this.#options.volumeUri,
          resource: active.id,
          error: (error as Error)?.message,
        },
        'deleting a backup resource failed; sweep() removes it later',
      );
    } finally {
      active.slot.release();
    }
  }
}
