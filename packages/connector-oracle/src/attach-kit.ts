// A stand-in for core's attach-and-read kit (locateDevice, openDeviceReader,
// acquireMountSlot, createLocalMountSlots), written to its announced API while
// the kit is on its way. When core exports the kit, this file goes and the
// imports point at '@syncproxy/core'.
import { open, readdir, realpath } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type ChangedBlockReader,
  type DeviceDirectories,
  type Extent,
  type MountSlot,
  type MountSlotProvider,
  type MountSlotRequest,
  SyncproxyError,
  sleep,
  systemClock,
} from '@syncproxy/core';

export interface LocateDeviceOptions {
  serial?: string;
  wwn?: string;
  devices?: DeviceDirectories;
  timeoutMs?: number;
  pollMs?: number;
  signal?: AbortSignal;
}

/** Waits until `<byIdDir>/*<serial or wwn>*` exists and returns the device it resolves to. */
export async function locateDevice(options: LocateDeviceOptions): Promise<string> {
  const needle = options.serial ?? options.wwn;
  if (!needle) throw new SyncproxyError('locateDevice needs a serial or a wwn', { code: 'config' });
  const dir = options.devices?.byIdDir ?? '/dev/disk/by-id';
  const deadline = Date.now() + (options.timeoutMs ?? 120_000);
  for (;;) {
    const names = await readdir(dir).catch(() => [] as string[]);
    const hit = names.find((name) => name.includes(needle));
    if (hit !== undefined) return realpath(join(dir, hit));
    if (Date.now() >= deadline) {
      throw new SyncproxyError(`no device named like *${needle}* appeared under ${dir}`, {
        code: 'timeout',
        retryable: false,
        details: { needle, dir },
      });
    }
    await sleep(systemClock, options.pollMs ?? 100, options.signal, 'locate device');
  }
}

export interface OpenDeviceReaderOptions {
  path: string;
  diskSize: number;
  granularity?: number;
  extents?: 'allocated' | 'whole' | Extent[];
  mountSlot?: MountSlot;
  onClose?: () => Promise<void>;
}

/** A reader of a device (or file): aligned reads, `readInto`, close releases the slot and runs `onClose`. */
export async function openDeviceReader(options: OpenDeviceReaderOptions): Promise<ChangedBlockReader> {
  const cleanup = async () => {
    try {
      await options.onClose?.();
    } finally {
      await options.mountSlot?.release();
    }
  };
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(options.path, 'r');
  } catch (error) {
    await cleanup();
    throw new SyncproxyError(`cannot open device ${options.path}: ${(error as Error).message}`, {
      code: 'io',
      cause: error,
    });
  }
  const { diskSize } = options;
  const extents: Extent[] = Array.isArray(options.extents)
    ? options.extents
    : diskSize > 0
      ? [{ offset: 0, length: diskSize, kind: 'data' }]
      : [];
  let closed = false;
  const readInto = async (target: Uint8Array, offset: number) => {
    if (offset < 0 || offset + target.length > diskSize) {
      throw new SyncproxyError(`read of ${target.length} bytes at ${offset} is outside the device`, {
        code: 'io',
      });
    }
    let done = 0;
    while (done < target.length) {
      const { bytesRead } = await handle.read(target, done, target.length - done, offset + done);
      if (bytesRead === 0) {
        target.fill(0, done);
        return;
      }
      done += bytesRead;
    }
  };
  return {
    diskSize,
    granularity: options.granularity ?? 512,
    async *extents() {
      yield* extents.map((e) => ({ ...e }));
    },
    async read(offset, length) {
      const out = new Uint8Array(length);
      await readInto(out, offset);
      return out;
    },
    readInto,
    async close() {
      if (closed) return;
      closed = true;
      try {
        await handle.close();
      } finally {
        await cleanup();
      }
    },
  };
}

/** Takes a slot from the provider (or returns a no-op slot when there is none). */
export async function acquireMountSlot(
  provider: MountSlotProvider | undefined,
  request: MountSlotRequest,
): Promise<MountSlot> {
  if (provider === undefined) return { release: async () => {} };
  return provider.acquire(request);
}

/** An in-process mount-slot provider: at most `maxMountedDisks` held at once; the next waits. */
export function createLocalMountSlots(options: { maxMountedDisks?: number } = {}): MountSlotProvider & {
  readonly inUse: number;
} {
  const max = options.maxMountedDisks ?? 50;
  let inUse = 0;
  const waiting: Array<() => void> = [];
  const slot = (): MountSlot => {
    let released = false;
    return {
      async release() {
        if (released) return;
        released = true;
        inUse--;
        waiting.shift()?.();
      },
    };
  };
  return {
    get inUse() {
      return inUse;
    },
    async acquire(request) {
      while (inUse >= max) {
        request.signal?.throwIfAborted();
        await new Promise<void>((resolve, reject) => {
          const wake = () => {
            request.signal?.removeEventListener('abort', onAbort);
            resolve();
          };
          const onAbort = () => {
            const at = waiting.indexOf(wake);
            if (at >= 0) waiting.splice(at, 1);
            reject(
              new SyncproxyError(`waiting for a mount slot for disk ${request.diskId} was aborted`, {
                code: 'aborted',
              }),
            );
          };
          waiting.push(wake);
          request.signal?.addEventListener('abort', onAbort, { once: true });
        });
      }
      inUse++;
      return slot();
    },
  };
}
