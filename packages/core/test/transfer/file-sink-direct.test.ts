import { createHash } from 'node:crypto';
import { mkdtemp, open, readFile, rm, statfs, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FileSink, transferDisk } from '@syncproxy/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChunkBufferPool, isDirectIoAligned } from '../../src/transfer/chunk-buffers.js';
import { attachLoop, detachLoop } from '../attach/fixtures/loop-device.js';
import { PatternReader } from './fixtures/readers.js';
import { tempDir } from './fixtures/temp-dir.js';
import { countWritesInFlight, spyOnFileHandle, spyOnFileHandleWrite } from './fixtures/write-spy.js';

const MiB = 1024 * 1024;
const TMPFS_MAGIC = 0x01021994;
let dir: { path: string; remove: () => Promise<void> };
beforeAll(async () => {
  dir = await tempDir();
  // What this file tests needs a file system that takes O_DIRECT (ext4 under the OS temp dir here and in CI).
  expect((await statfs(dir.path)).type, `${dir.path} is on tmpfs: set TMPDIR to a disk`).not.toBe(
    TMPFS_MAGIC,
  );
});
afterAll(async () => {
  await dir.remove();
});

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

/** Two pooled (page-aligned) chunk buffers of `size` bytes. */
function alignedBuffers(size: number): [Uint8Array, Uint8Array] {
  const pool = new ChunkBufferPool(size, 2);
  return [pool.acquire(size), pool.acquire(size)];
}

describe('FileSink past the page cache (O_DIRECT)', () => {
  it("writes the engine's full chunks with O_DIRECT and the rest through the page cache, and the image is exact", async () => {
    // 2 chunks of data, a hole, 1 chunk of data, and a tail of 1000 bytes (not 4 KiB-aligned: buffered).
    const chunk = 4 * MiB;
    const diskSize = 5 * chunk + 1000;
    const reader = new PatternReader(diskSize, [
      { offset: 0, length: 2 * chunk, kind: 'data' },
      { offset: 3 * chunk, length: chunk, kind: 'data' },
      { offset: 5 * chunk, length: 1000, kind: 'data' },
    ]);
    const path = join(dir.path, 'direct.img');
    const sink = new FileSink(path);
    await transferDisk({ reader, sink, chunkSizeBytes: chunk });
    expect(sink.directBytesWritten).toBe(3 * chunk);
    expect(sha256(await readFile(path))).toBe(reader.sha256());
  });

  it('writes nothing past the page cache with directIo: false, and the image is the same', async () => {
    const chunk = 4 * MiB;
    const reader = new PatternReader(3 * chunk, [{ offset: 0, length: 3 * chunk, kind: 'data' }]);
    const path = join(dir.path, 'buffered.img');
    const sink = new FileSink(path, { directIo: false });
    await transferDisk({ reader, sink, chunkSizeBytes: chunk });
    expect(sink.directBytesWritten).toBe(0);
    expect(sha256(await readFile(path))).toBe(reader.sha256());
  });

  it('keeps direct and buffered writes to the same range coherent, in either order, for reads and for the file', async () => {
    const path = join(dir.path, 'mixed.img');
    const sink = new FileSink(path);
    await sink.open(2 * MiB);
    const [a, b] = alignedBuffers(MiB);
    expect(isDirectIoAligned(a)).toBe(true);
    // Through the page cache (an ordinary buffer), then over it past the cache, then partly back.
    await sink.write(0, new Uint8Array(MiB).fill(1));
    expect((await sink.read(4096, 1))[0]).toBe(1);
    a.fill(2);
    await sink.write(0, a);
    expect(sink.directBytesWritten).toBe(MiB);
    expect((await sink.read(4096, 1))[0]).toBe(2);
    await sink.write(8192, new Uint8Array(4096).fill(3));
    b.fill(4);
    // An aligned buffer at an offset that is not 4 KiB-aligned goes through the page cache.
    await sink.write(MiB + 512, b.subarray(0, 4096));
    expect(sink.directBytesWritten).toBe(MiB);
    await sink.flush();
    await sink.close();
    const expected = new Uint8Array(2 * MiB);
    expected
      .fill(2, 0, MiB)
      .fill(3, 8192, 12288)
      .fill(4, MiB + 512, MiB + 512 + 4096);
    expect(sha256(await readFile(path))).toBe(sha256(expected));
  });

  it('writes an ordinary (malloc-aligned) buffer through the page cache', async () => {
    const path = join(dir.path, 'plain.img');
    const sink = new FileSink(path);
    await sink.open(MiB);
    const plain = new Uint8Array(new SharedArrayBuffer(MiB)).fill(9);
    expect(isDirectIoAligned(plain)).toBe(false);
    await sink.write(0, plain);
    expect(sink.directBytesWritten).toBe(0);
    await sink.close();
    expect(sha256(await readFile(path))).toBe(sha256(plain));
  });

  it('runs 2 direct writes at once, and aligned writes still 1 at a time through the page cache', async () => {
    const writes = await countWritesInFlight(dir.path);
    const mostAtOnce = async (directIo: boolean): Promise<number> => {
      writes.reset();
      const sink = new FileSink(join(dir.path, `writers-${directIo}.img`), { directIo });
      await sink.open(6 * MiB);
      const pool = new ChunkBufferPool(MiB, 6);
      const buffers = Array.from({ length: 6 }, (_, i) => pool.acquire(MiB).fill(i + 1));
      await Promise.all(buffers.map((b, i) => sink.write(i * MiB, b)));
      expect(sink.directBytesWritten).toBe(directIo ? 6 * MiB : 0);
      await sink.close();
      return writes.most();
    };
    try {
      expect(await mostAtOnce(true)).toBe(2);
      expect(await mostAtOnce(false)).toBe(1);
    } finally {
      writes.restore();
    }
  });

  it('goes on through the page cache when the kernel refuses a direct write (EINVAL)', async () => {
    let refused = 0;
    const spy = await spyOnFileHandleWrite(dir.path, async (write, handle, args) => {
      if (refused === 0) {
        refused++;
        throw Object.assign(new Error('EINVAL: invalid argument, write'), { code: 'EINVAL', errno: -22 });
      }
      return await write.apply(handle, args);
    });
    const path = join(dir.path, 'refused.img');
    const sink = new FileSink(path);
    try {
      await sink.open(2 * MiB);
      const [a, b] = alignedBuffers(MiB);
      await sink.write(0, a.fill(6));
      await sink.write(MiB, b.fill(8));
      expect(refused).toBe(1);
      expect(sink.directBytesWritten).toBe(0);
      await sink.close();
    } finally {
      spy.mockRestore();
    }
    const expected = new Uint8Array(2 * MiB).fill(6, 0, MiB).fill(8, MiB);
    expect(sha256(await readFile(path))).toBe(sha256(expected));
  });

  /** An old 8 MiB image: a hole, data at [2, 3) MiB, a hole, and one byte at 5 MiB + 7 still in the page cache. */
  async function oldImage(name: string): Promise<string> {
    const path = join(dir.path, name);
    await writeFile(path, new Uint8Array(0));
    await truncate(path, 8 * MiB);
    const handle = await open(path, 'r+');
    try {
      await handle.write(new Uint8Array(MiB).fill(0x11), 0, MiB, 2 * MiB);
      await handle.datasync();
      // Not written back: a read past the page cache must still see it.
      await handle.write(new Uint8Array([0x22]), 0, 1, 5 * MiB + 7);
    } finally {
      await handle.close();
    }
    return path;
  }

  it('checks an old image for zeroes past the page cache, and zeroes what is not, a byte still in the page cache too', async () => {
    const path = await oldImage('old-zeroes.img');
    const sink = new FileSink(path);
    await sink.open(8 * MiB);
    await sink.writeZeroes(0, 8 * MiB);
    expect(sink.directBytesRead).toBe(8 * MiB);
    await sink.close();
    expect(sha256(await readFile(path))).toBe(sha256(new Uint8Array(8 * MiB)));
  });

  it('checks for zeroes through the page cache when the kernel refuses a direct read (EINVAL), and zeroes what is not', async () => {
    const path = await oldImage('old-refused.img');
    let refused = 0;
    const spy = await spyOnFileHandle(dir.path, 'read', async (read, handle, args) => {
      if (refused === 0) {
        refused++;
        throw Object.assign(new Error('EINVAL: invalid argument, read'), { code: 'EINVAL', errno: -22 });
      }
      return await read.apply(handle, args);
    });
    const sink = new FileSink(path);
    try {
      await sink.open(8 * MiB);
      await sink.writeZeroes(0, 8 * MiB);
      expect(refused).toBe(1);
      expect(sink.directBytesRead).toBe(0);
      await sink.close();
    } finally {
      spy.mockRestore();
    }
    expect(sha256(await readFile(path))).toBe(sha256(new Uint8Array(8 * MiB)));
  });

  it('writes a block device past the page cache, byte-exact (a loop device, or its file where none can be made)', async () => {
    const chunk = 4 * MiB;
    const reader = new PatternReader(4 * chunk, [
      { offset: 0, length: chunk, kind: 'data' },
      { offset: 2 * chunk, length: 2 * chunk, kind: 'data' },
    ]);
    const backing = join(dir.path, 'device-backing.img');
    await writeFile(backing, new Uint8Array(4 * chunk).fill(0xee));
    const device = await attachLoop(backing, { writable: true });
    try {
      const sink = new FileSink(device.path, device.isLoop ? { statePath: join(dir.path, 'device') } : {});
      // A full sync: the chunk the reader does not list must be zeroed over the device's old bytes.
      await transferDisk({ reader, sink, chunkSizeBytes: chunk, full: true });
      expect(sink.isBlockDevice).toBe(device.isLoop);
      expect(sink.directBytesWritten).toBe(3 * chunk);
    } finally {
      await detachLoop(device);
    }
    expect(sha256(await readFile(backing))).toBe(reader.sha256());
  });

  it('does not use O_DIRECT on tmpfs, where it only costs', async () => {
    const shm = await mkdtemp('/dev/shm/syncproxy-direct-');
    try {
      const path = join(shm, 'image.img');
      const sink = new FileSink(path);
      await sink.open(MiB);
      const [a] = alignedBuffers(MiB);
      await sink.write(0, a.fill(5));
      expect(sink.directBytesWritten).toBe(0);
      await sink.close();
      expect(sha256(await readFile(path))).toBe(sha256(a));
    } finally {
      await rm(shm, { recursive: true, force: true });
    }
  });
});

describe('ChunkBufferPool', () => {
  it('hands out page-aligned chunk buffers on one shared memory, reused, and plain ones past its slots', () => {
    const pool = new ChunkBufferPool(MiB, 2);
    const first = pool.acquire(MiB);
    const second = pool.acquire(MiB);
    expect(first.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(first.buffer).toBe(second.buffer);
    expect([first.byteOffset, second.byteOffset]).toEqual([0, MiB]);
    expect(isDirectIoAligned(first) && isDirectIoAligned(second)).toBe(true);
    const third = pool.acquire(MiB);
    expect(isDirectIoAligned(third)).toBe(false);
    expect(third.buffer).toBeInstanceOf(SharedArrayBuffer);
    pool.release(second);
    expect(pool.acquire(MiB)).toBe(second);
    // A chunk of another size (the disk's last) is a plain buffer of its own.
    expect(pool.acquire(1000).byteLength).toBe(1000);
  });

  it('aligns every slot to 4 KiB when the chunk size is not a multiple of it', () => {
    const pool = new ChunkBufferPool(10_000, 3);
    const offsets = [pool.acquire(10_000), pool.acquire(10_000), pool.acquire(10_000)].map(
      (b) => b.byteOffset,
    );
    expect(offsets).toEqual([0, 12_288, 24_576]);
  });
});
