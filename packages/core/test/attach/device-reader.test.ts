import { spawnSync } from 'node:child_process';
import { randomFillSync, randomUUID } from 'node:crypto';
import { mkdir, open, readFile, symlink, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSeekOutput } from '../../src/attach/allocated-ranges.js';
import {
  type ChangedBlockReader,
  createLocalMountSlots,
  type Extent,
  FileSink,
  locateDevice,
  openDeviceReader,
  SyncproxyError,
  transferDisk,
} from '../../src/index.js';
import { tempDir } from '../transfer/fixtures/temp-dir.js';
import { type AttachedImage, attachLoop, detachLoop } from './fixtures/loop-device.js';

const MiB = 1024 * 1024;
const DISK_SIZE = 8 * MiB;
const SERIAL = 'vol-0attach1kit2test';

let dir: { path: string; remove: () => Promise<void> };
let source: Uint8Array;
let image: AttachedImage;

beforeAll(async () => {
  dir = await tempDir('syncproxy-attach-');
  source = randomFillSync(new Uint8Array(DISK_SIZE));
  const file = join(dir.path, 'volume.img');
  await writeFile(file, source);
  image = await attachLoop(file);
  if (!image.isLoop)
    console.warn(`no loop device (${image.fallbackReason}): the attach tests read the file instead`);
  // The kernel gives loop devices no serial: a by-id directory of our own names it as udev would a virtio disk.
  await mkdir(join(dir.path, 'by-id'));
  await symlink(image.path, join(dir.path, 'by-id', `virtio-${SERIAL}`));
});

afterAll(async () => {
  await detachLoop(image);
  await dir?.remove();
});

const what = () => (image.isLoop ? `loop device ${image.path}` : 'file fallback: losetup failed');

const hasXfsIo = spawnSync('xfs_io', ['-V']).status === 0;

/** A 16 MiB file with data at 3 MiB (128 KiB) and in its last 4 KiB, holes elsewhere. */
async function sparseFile(): Promise<string> {
  const file = join(dir.path, `sparse-${randomUUID()}.img`);
  await writeFile(file, new Uint8Array(0));
  await truncate(file, 16 * MiB);
  const handle = await open(file, 'r+');
  await handle.write(source.subarray(0, 128 * 1024), 0, 128 * 1024, 3 * MiB);
  await handle.write(source.subarray(0, 4096), 0, 4096, 16 * MiB - 4096);
  await handle.close();
  return file;
}

async function listExtents(reader: ChangedBlockReader): Promise<Extent[]> {
  const extents: Extent[] = [];
  for await (const extent of reader.extents()) extents.push(extent);
  return extents;
}

/** A reader whose reads fail once `okReads` have succeeded, as a volume detached mid-read would. */
function failingAfter(reader: ChangedBlockReader, okReads: number): ChangedBlockReader {
  let reads = 0;
  const gate = () => {
    if (++reads > okReads) throw new SyncproxyError('device went away', { code: 'io', retryable: false });
  };
  return {
    diskSize: reader.diskSize,
    granularity: reader.granularity,
    ...(reader.hints !== undefined ? { hints: reader.hints } : {}),
    extents: (options) => reader.extents(options),
    read: async (offset, length, options) => {
      gate();
      return reader.read(offset, length, options);
    },
    readInto: async (target, offset, options) => {
      gate();
      return reader.readInto!(target, offset, options);
    },
    close: () => reader.close(),
  };
}

describe('attach-and-read kit', () => {
  it('locates the volume by its serial and reads it byte-exact into transferDisk (loop device, or the file when losetup fails)', async () => {
    const path = await locateDevice({
      serial: SERIAL,
      devices: { byIdDir: join(dir.path, 'by-id') },
      timeoutMs: 0,
    });
    expect(path).toBe(image.path);
    const slots = createLocalMountSlots({ maxMountedDisks: 2 });
    const slot = await slots.acquire({ platform: 'test', diskId: SERIAL });
    let detached = 0;
    const reader = await openDeviceReader({
      path,
      diskSize: DISK_SIZE,
      extents: 'whole',
      mountSlot: slot,
      onClose: async () => {
        detached++;
      },
    });
    expect(reader.granularity).toBe(512);
    expect(typeof reader.readInto).toBe('function');
    const target = join(dir.path, `copy-${image.isLoop ? 'loop' : 'file'}.img`);
    try {
      const result = await transferDisk({
        reader,
        sink: new FileSink(target, { sync: false }),
        chunkSizeBytes: MiB,
        full: true,
        verify: true,
        checkpoint: false,
        manifest: false,
      });
      expect(result.bytesRead).toBe(DISK_SIZE);
      expect(result.verified).toBe(true);
    } finally {
      await reader.close();
    }
    expect(Buffer.compare(await readFile(target), source), what()).toBe(0);
    expect(detached).toBe(1);
    expect(slots.inUse).toBe(0);
  });

  it("declares a full read for 'allocated' and 'whole', and nothing for extents the platform named", async () => {
    const declared = [];
    for (const extents of ['allocated', 'whole', [{ offset: 0, length: 4096, kind: 'data' }]] as const) {
      const reader = await openDeviceReader({ path: image.path, diskSize: DISK_SIZE, extents });
      declared.push(reader.hints?.incremental);
      await reader.close();
    }
    expect(declared).toEqual([false, false, undefined]);
  });

  it('gives the mount slot back and runs onClose after a read that fails midway', async () => {
    const slots = createLocalMountSlots({ maxMountedDisks: 1 });
    const order: string[] = [];
    const slot = await slots.acquire({ platform: 'test', diskId: SERIAL });
    const reader = await openDeviceReader({
      path: image.path,
      diskSize: DISK_SIZE,
      extents: 'whole',
      mountSlot: {
        release: async () => {
          order.push('slot');
          await slot.release();
        },
      },
      onClose: async () => {
        order.push('detach');
      },
    });
    expect(slots.inUse).toBe(1);
    const error = await transferDisk({
      reader: failingAfter(reader, 3),
      sink: new FileSink(join(dir.path, 'failed.img'), { sync: false }),
      chunkSizeBytes: MiB,
      concurrency: 1,
      checkpoint: false,
      manifest: false,
    })
      .catch((e: unknown) => e)
      .finally(() => reader.close());
    expect(error).toMatchObject({ code: 'io', message: 'device went away' });
    expect(order).toEqual(['detach', 'slot']);
    expect(slots.inUse).toBe(0);
    await reader.close();
    expect(order).toEqual(['detach', 'slot']);
    await expect(reader.read(0, 512)).rejects.toMatchObject({ code: 'internal' });
  });

  it('fails a read with a typed io error when the file is truncated under it, and still releases on close', async () => {
    const file = join(dir.path, 'shrinks.img');
    await writeFile(file, source.subarray(0, 2 * MiB));
    const slots = createLocalMountSlots({ maxMountedDisks: 1 });
    let detached = 0;
    const reader = await openDeviceReader({
      path: file,
      diskSize: 2 * MiB,
      mountSlot: await slots.acquire({ platform: 'test', diskId: 'shrinks' }),
      onClose: async () => {
        detached++;
      },
    });
    await truncate(file, MiB + 4096);
    const error = await reader.read(MiB, MiB).catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: 'io',
      retryable: false,
      message: `short read of ${file}: it ends at ${MiB + 4096} bytes, the disk is ${2 * MiB} (detached or truncated while read)`,
    });
    await reader.close();
    expect(detached).toBe(1);
    expect(slots.inUse).toBe(0);
  });

  it(
    hasXfsIo
      ? 'lists exactly the data ranges of a sparse file with SEEK_DATA/SEEK_HOLE'
      : 'reads a sparse file whole with the allocation-unknown warning (xfs_io is missing here)',
    async () => {
      const file = await sparseFile();
      const reader = await openDeviceReader({ path: file, diskSize: 16 * MiB });
      const extents = await listExtents(reader);
      await reader.close();
      if (!hasXfsIo) {
        console.warn('xfs_io is missing: the SEEK_DATA/SEEK_HOLE path is not exercised on this machine');
        expect(extents).toEqual([{ offset: 0, length: 16 * MiB, kind: 'data' }]);
        return;
      }
      expect(reader.warnings).toEqual([]);
      expect(extents).toEqual([
        { offset: 3 * MiB, length: 128 * 1024, kind: 'data' },
        { offset: 16 * MiB - 4096, length: 4096, kind: 'data' },
      ]);
    },
  );

  it('reads a sparse file whole, with the allocation-unknown warning, when xfs_io cannot be run', async () => {
    const file = await sparseFile();
    const path = process.env.PATH;
    process.env.PATH = dir.path;
    let reader: ChangedBlockReader;
    try {
      reader = await openDeviceReader({ path: file, diskSize: 16 * MiB });
    } finally {
      process.env.PATH = path;
    }
    const extents = await listExtents(reader);
    await reader.close();
    expect(extents).toEqual([{ offset: 0, length: 16 * MiB, kind: 'data' }]);
    expect(reader.warnings).toEqual([
      {
        code: 'allocation-unknown',
        message: `the data ranges of ${file} could not be listed (xfs_io missing?): the whole file is read`,
      },
    ]);
  });

  it('parses the seek table of xfs_io, the last hole ending at the disk size', () => {
    const table = 'Whence\tResult\nHOLE\t0\nDATA\t196608\nHOLE\t327680\nDATA\t6553600\nHOLE\t6619136\n';
    expect(parseSeekOutput(table, 10 * MiB)).toEqual([
      { offset: 196608, length: 131072 },
      { offset: 6553600, length: 65536 },
    ]);
    expect(parseSeekOutput('Whence\tResult\nDATA\t0\n', 4096)).toEqual([{ offset: 0, length: 4096 }]);
    expect(parseSeekOutput('Whence\tResult\nHOLE\t0\n', 4096)).toEqual([]);
    expect(parseSeekOutput('xfs_io: command "seek" not found\n', 4096)).toBeUndefined();
  });

  it('refuses a device smaller than the disk as integrity, and releases what it was given', async () => {
    const slots = createLocalMountSlots({ maxMountedDisks: 1 });
    let detached = 0;
    const error = await openDeviceReader({
      path: image.path,
      diskSize: DISK_SIZE + 512,
      mountSlot: await slots.acquire({ platform: 'test', diskId: 'small' }),
      onClose: async () => {
        detached++;
      },
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: 'integrity',
      message: `${image.path} holds ${DISK_SIZE} bytes, less than the disk's ${DISK_SIZE + 512}: the wrong volume is attached, or it is not fully attached yet`,
    });
    expect(detached).toBe(1);
    expect(slots.inUse).toBe(0);
  });

  it('reads only the extents it was given, and refuses overlapping ones as config', async () => {
    const reader = await openDeviceReader({
      path: image.path,
      diskSize: DISK_SIZE,
      extents: [
        { offset: 0, length: 4096, kind: 'data' },
        { offset: MiB, length: 8192, kind: 'zero' },
      ],
    });
    const extents = [];
    for await (const extent of reader.extents()) extents.push(extent);
    expect(extents).toEqual([
      { offset: 0, length: 4096, kind: 'data' },
      { offset: MiB, length: 8192, kind: 'zero' },
    ]);
    expect(Buffer.compare(await reader.read(MiB - 100, 300), source.subarray(MiB - 100, MiB + 200))).toBe(0);
    await reader.close();
    await expect(
      openDeviceReader({
        path: image.path,
        diskSize: DISK_SIZE,
        extents: [
          { offset: 0, length: 4096, kind: 'data' },
          { offset: 2048, length: 4096, kind: 'data' },
        ],
      }),
    ).rejects.toMatchObject({ code: 'config' });
  });
});
