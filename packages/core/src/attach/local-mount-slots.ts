import { type Clock, setClockTimer, systemClock } from '../clock.js';
import type { MountSlot, MountSlotProvider, MountSlotRequest } from '../contracts/connector.js';
import { SyncproxyError } from '../errors/syncproxy-error.js';
import { abortError } from '../errors/to-syncproxy-error.js';
import { DEFAULT_PROXY_SETTINGS } from '../scheduler/settings.js';

export interface LocalMountSlotsOptions {
  /** Disks this process may have attached at once (default 50, the proxy default). */
  maxMountedDisks?: number;
  /** Wait up to this long (clock ms) for a free slot; default 0: refuse at once with `no-capacity`. */
  waitMs?: number;
  clock?: Clock;
}

/** An in-process {@link MountSlotProvider}; `inUse` and `waiting` let a product show its load. */
export interface LocalMountSlots extends MountSlotProvider {
  readonly maxMountedDisks: number;
  /** Slots held now. */
  readonly inUse: number;
  /** Acquires waiting for a slot. */
  readonly waiting: number;
}

interface Waiter {
  grant(): void;
}

/**
 * Mount slots counted in this process, for a proxy that runs without a
 * scheduler (the CLI, a product's single-node mode). A scheduler-backed
 * provider ({@link mountSlotsFromScheduler}) counts them across processes.
 */
export function createLocalMountSlots(options: LocalMountSlotsOptions = {}): LocalMountSlots {
  const max = options.maxMountedDisks ?? DEFAULT_PROXY_SETTINGS.maxMountedDisks;
  if (!Number.isSafeInteger(max) || max < 1) {
    throw new SyncproxyError(`mount slots: maxMountedDisks must be an integer >= 1 (got ${max})`, {
      code: 'config',
      retryable: false,
    });
  }
  const waitMs = options.waitMs ?? 0;
  if (!Number.isFinite(waitMs) || waitMs < 0) {
    throw new SyncproxyError(`mount slots: waitMs must be a number >= 0 (got ${waitMs})`, {
      code: 'config',
      retryable: false,
    });
  }
  const clock = options.clock ?? systemClock;
  let inUse = 0;
  const queue: Waiter[] = [];

  const slot = (): MountSlot => {
    let released = false;
    return {
      async release() {
        if (released) return;
        released = true;
        // Hand the slot straight to the first waiter, so a new acquire cannot overtake it.
        const next = queue.shift();
        if (next) next.grant();
        else inUse--;
      },
    };
  };

  const refusal = (request: MountSlotRequest, waited: boolean) =>
    new SyncproxyError(
      `no mount slot for disk ${request.diskId} of platform ${request.platform}: all ${max} mount slots of this proxy are in use (maxMountedDisks ${max})${waited ? ` after waiting ${waitMs} ms` : ''}; close readers or raise maxMountedDisks`,
      {
        code: 'no-capacity',
        retryable: true,
        platform: request.platform,
        details: { maxMountedDisks: max, inUse, diskId: request.diskId },
      },
    );

  return {
    maxMountedDisks: max,
    get inUse() {
      return inUse;
    },
    get waiting() {
      return queue.length;
    },
    acquire(request) {
      const { signal } = request;
      if (signal?.aborted) return Promise.reject(abortError(signal, 'mount slot wait'));
      if (inUse < max) {
        inUse++;
        return Promise.resolve(slot());
      }
      if (waitMs <= 0) return Promise.reject(refusal(request, false));
      return new Promise<MountSlot>((resolve, reject) => {
        const settle = () => {
          cancelTimer();
          signal?.removeEventListener('abort', onAbort);
          queue.splice(queue.indexOf(waiter), 1);
        };
        const waiter: Waiter = {
          grant() {
            cancelTimer();
            signal?.removeEventListener('abort', onAbort);
            resolve(slot());
          },
        };
        const onAbort = () => {
          settle();
          reject(abortError(signal, 'mount slot wait'));
        };
        const cancelTimer = setClockTimer(
          clock,
          () => {
            settle();
            reject(refusal(request, true));
          },
          waitMs,
        );
        signal?.addEventListener('abort', onAbort, { once: true });
        queue.push(waiter);
      });
    },
  };
}

let processDefault: LocalMountSlots | undefined;

/**
 * A mount slot from `provider`, or, when the product passed none, from one
 * in-process provider shared by every connector of this process with the
 * product default of 50 (so two connectors cannot attach 50 disks each).
 */
export function acquireMountSlot(
  provider: MountSlotProvider | undefined,
  request: MountSlotRequest,
): Promise<MountSlot> {
  if (provider) return provider.acquire(request);
  processDefault ??= createLocalMountSlots();
  return processDefault.acquire(request);
}
