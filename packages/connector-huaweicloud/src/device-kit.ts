// A thin local stand-in for core's attach-and-read kit (locateDevice,
// openDeviceReader, mount slots), with the kit's announced API, until the
// kit lands in @syncproxy/core; then this file goes and the imports point there.
import { open, readdir, realpath } from 'node:fs/promises';
import { join } from 'node:path';
import {
  abortError,
  type ChangedBlockReader,
  type DeviceDirectories,
  type Extent,
  type MountSlot,
  type MountSlotProvider,
  type MountSlotRequest,
  type ReadOptions,
  SyncproxyError,
} from '@syncproxy/core';

export interface LocateDeviceOptions {
  serial?: string;
  wwn?: string;
  devices?: DeviceDirectories;
  timeoutMs?: number;
  pollMs?: number;
  signal?: AbortSignal;
}

/** Waits until `<byIdDir>/*<serial or wwn>*` exists; the resolved device path. */
export async function locateDevice(options: LocateDeviceOptions): Promise<string> {
  const needle = options.serial ?? options.wwn;
  if (!needle) {
    throw new SyncproxyError('locateDevice needs a serial or a WWN', { code: 'config', retryable: false });
  }
  const dir = options.devices?.byIdDir ?? '/dev/disk/by-id';
  const timeoutMs = options.timeoutMs ?? 120_000;
  const pollMs = options.pollMs ?? 250;
  const started = Date.now();
  while (true) {
    if (options.signal?.aborted) throw abortError(options.signal, 'locateDevice');
    const names = await readdir(dir).catch(() => [] as string[]);
    const name = names.find((n) => n.includes(needle));
    if (name !== undefined) return realpath(join(dir, name));
    if (Date.now() - started >= timeoutMs) {
      throw new SyncproxyError(
        `no device with ${options.serial ? 'serial' : 'WWN'} ${needle} appeared under ${dir} within ${Math.round(timeoutMs / 1000)} s`,
        { code: 'timeout', retryable: true, details: { needle, dir } },
      );
    }
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

export interface OpenDeviceReaderOptions {
  path: string;
  diskSize: number;
  granularity?: number;
  mountSlot?: MountSlot;
  onClose?: () => Promise<void>;
}

/** A whole-device reader: every byte is data (a device says nothing about allocation). */
export async function openDeviceReader(options: OpenDeviceReaderOptions): Promise<ChangedBlockReader> {
  let file: Awaited<ReturnType<typeof open>>;
  try {
    file = await open(options.path, 'r');
  } catch (cause) {
    await options.onClose?.().catch(() => {});
    await options.mountSlot?.release();
    throw new SyncproxyError(`cannot open device ${options.path}`, { code: 'io', retryable: false, cause });
  }
  const diskSize = options.diskSize;
  let closed: Promise<void> | undefined;
  const readInto = async (target: Uint8Array, offset: number, readOptions?: ReadOptions): Promise<void> => {
    if (readOptions?.signal?.aborted) throw abortError(readOptions.signal, 'read');
    if (closed) throw new SyncproxyError('read after close', { code: 'internal', retryable: false });
    let done = 0;
    while (done < target.length) {
      const { bytesRead } = await file.read(target, done, target.length - done, offset + done);
      if (bytesRead === 0) {
        throw new SyncproxyError(
          `device ${options.path} ended at ${offset + done} (disk ${diskSize} bytes)`,
          {
            code: 'io',
            retryable: false,
          },
        );
      }
      done += bytesRead;
    }
  };
  return {
    diskSize,
    granularity: options.granularity ?? 512,
    async *extents(): AsyncGenerator<Extent> {
      if (diskSize > 0) yield { offset: 0, length: diskSize, kind: 'data' };
    },
    async read(offset, length, readOptions) {
      const target = new Uint8Array(length);
      await readInto(target, offset, readOptions);
      return target;
    },
    readInto,
    close() {
      closed ??= (async () => {
        try {
          await file.close();
          await options.onClose?.();
        } finally {
          await options.mountSlot?.release();
        }
      })();
      return closed;
    },
  };
}

/** The default in-process mount slots: `maxMountedDisks` at once, the others wait. */
export function createLocalMountSlots(options: { maxMountedDisks?: number } = {}): MountSlotProvider {
  const max = options.maxMountedDisks ?? 50;
  let used = 0;
  const waiting: Array<() => void> = [];
  return {
    async acquire(request: MountSlotRequest): Promise<MountSlot> {
      while (used >= max) {
        if (request.signal?.aborted) throw abortError(request.signal, 'acquire mount slot');
        await new Promise<void>((resolve) => waiting.push(resolve));
      }
      used++;
      let released = false;
      return {
        async release() {
          if (released) return;
          released = true;
          used--;
          waiting.shift()?.();
        },
      };
    },
  };
}

/** A slot from the product's provider, else from a process-wide local one. */
export function acquireMountSlot(
  provider: MountSlotProvider | undefined,
  request: MountSlotRequest,
): Promise<MountSlot> {
  return (provider ?? defaultSlots).acquire(request);
}

const defaultSlots = createLocalMountSlots();
