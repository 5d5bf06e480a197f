import { randomFillSync } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FileSink } from '@syncproxy/core';
import { describe, expect, it } from 'vitest';
import { useTempDir } from './fixtures/temp-dir.js';
import { countWritesInFlight } from './fixtures/write-spy.js';

const MiB = 1024 * 1024;
const dir = useTempDir();

describe('FileSink', () => {
  it('creates a sparse file of the disk size and leaves holes where it is asked for zeroes', async () => {
    const path = join(dir.path, 'fresh.img');
    const sink = new FileSink(path);
    await sink.open(1024 * MiB);
    await sink.writeZeroes(0, 512 * MiB);
    await sink.write(600 * MiB, new Uint8Array(4096).fill(7));
    await sink.flush();
    await sink.close();
    const info = await stat(path);
    expect(info.size).toBe(1024 * MiB);
    expect(info.blocks * 512).toBeLessThanOrEqual(64 * 1024);
    expect(sink.statePath).toBe(path);
  });

  it('opens an existing image without truncating it and zeroes written data exactly', async () => {
    const path = join(dir.path, 'existing.img');
    const old = new Uint8Array(3 * MiB + 5);
    randomFillSync(old);
    await writeFile(path, old);
    const sink = new FileSink(path);
    await sink.open(3 * MiB + 5);
    await sink.writeZeroes(MiB - 3, MiB + 10);
    expect(Buffer.from(await sink.read(MiB - 4, 2))).toEqual(Buffer.from([old[MiB - 4]!, 0]));
    await sink.close();
    const now = new Uint8Array(await readFile(path));
    const expected = old.slice();
    expected.fill(0, MiB - 3, 2 * MiB + 7);
    expect(Buffer.compare(now, expected)).toBe(0);
  });

  it('reads into a given buffer with readInto, zeroes past the end of the file', async () => {
    const path = join(dir.path, 'read-into.img');
    const old = randomFillSync(new Uint8Array(3000));
    await writeFile(path, old);
    const sink = new FileSink(path);
    await sink.open(3000);
    const target = new Uint8Array(new SharedArrayBuffer(1000)).fill(9);
    await sink.readInto(2500, target.subarray(0, 500));
    expect(Buffer.from(target.subarray(0, 500))).toEqual(Buffer.from(old.subarray(2500)));
    expect(target[500]).toBe(9);
    // The file cut short meanwhile (the same inode): past its end the image reads as zeroes.
    await writeFile(path, old.subarray(0, 2600));
    const tail = new Uint8Array(200).fill(9);
    await sink.readInto(2500, tail);
    expect(Buffer.from(tail)).toEqual(Buffer.concat([old.subarray(2500, 2600), Buffer.alloc(100)]));
    await sink.close();
  });

  it('grows an existing image to a larger disk, keeping its bytes', async () => {
    const path = join(dir.path, 'grow.img');
    await writeFile(path, new Uint8Array(1000).fill(1));
    const sink = new FileSink(path);
    await sink.open(5000);
    await sink.writeZeroes(0, 5000);
    await sink.close();
    expect(Buffer.compare(new Uint8Array(await readFile(path)), new Uint8Array(5000))).toBe(0);
  });

  it('refuses writes before open and after close with an error that says what to do', async () => {
    const sink = new FileSink(join(dir.path, 'never.img'));
    await expect(sink.write(0, new Uint8Array(1))).rejects.toMatchObject({
      code: 'internal',
      message: `FileSink ${join(dir.path, 'never.img')} is not open (call open(diskSize) first)`,
    });
    await sink.close();
    await sink.close();
  });

  it('maps a missing directory to a not-found error', async () => {
    const sink = new FileSink(join(dir.path, 'no', 'such', 'dir.img'));
    await expect(sink.open(10)).rejects.toMatchObject({ code: 'not-found' });
  });

  describe('writes in flight', () => {
    /** The most positional writes the sink had in the kernel at once while it wrote `count` pieces. */
    async function mostWritesAtOnce(sink: FileSink, count: number): Promise<number> {
      const writes = await countWritesInFlight(dir.path);
      try {
        await sink.open(count * MiB);
        await Promise.all(
          Array.from({ length: count }, (_, i) => sink.write(i * MiB, new Uint8Array(MiB).fill(i + 1))),
        );
        await sink.close();
      } finally {
        writes.restore();
      }
      return writes.most();
    }

    it('are one at a time to a regular file by default: a second writer would only spin on its inode lock', async () => {
      const path = join(dir.path, 'one-writer.img');
      expect(await mostWritesAtOnce(new FileSink(path), 6)).toBe(1);
      const bytes = await readFile(path);
      for (let i = 0; i < 6; i++) expect(bytes[i * MiB + MiB - 1]).toBe(i + 1);
    });

    it('follow maxConcurrentWrites when it is given', async () => {
      const sink = new FileSink(join(dir.path, 'three-writers.img'), { maxConcurrentWrites: 3 });
      expect(await mostWritesAtOnce(sink, 6)).toBe(3);
    });
  });
});
