import { execFile } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { existsSync } from 'node:fs';
import { appendFile, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type Extent, FileSink, readManifest, SyncproxyError, transferDisk } from '@syncproxy/core';
import { describe, expect, it } from 'vitest';
import { digestChunk } from '../../src/transfer/chunk-hash-algorithm.js';
import { ChunkIntentLog, intentsPathOf, readChunkIntents } from '../../src/transfer/chunk-intents.js';
import { MemoryReader } from './fixtures/readers.js';
import { useTempDir } from './fixtures/temp-dir.js';

const CHUNK = 64 << 10;
const SIZE = 4 * CHUNK;

const dir = useTempDir();

const entry = (fill: number) => new Uint8Array(32).fill(fill);

describe('ChunkIntentLog', () => {
  it('keeps the records of one transfer across opens, and replaces the log of another transfer or algorithm', async () => {
    const path = join(dir.path, 'log-a.intents');
    const first = await ChunkIntentLog.open(path, 'transfer-1', 'blake3');
    expect(first.earlier.size).toBe(0);
    await Promise.all([first.note(3, entry(1)), first.note(7, entry(2))]);
    await first.note(3, entry(4));
    await first.close();

    const second = await ChunkIntentLog.open(path, 'transfer-1', 'blake3');
    expect([...second.earlier].sort(([a], [b]) => a - b)).toEqual([
      [3, [entry(1), entry(4)]],
      [7, [entry(2)]],
    ]);
    await second.note(9, entry(5));
    await second.close();
    expect((await readChunkIntents(path, 'transfer-1', 'blake3')).get(9)).toEqual([entry(5)]);

    expect((await readChunkIntents(path, 'transfer-2', 'blake3')).size).toBe(0);
    expect((await readChunkIntents(path, 'transfer-1', 'sha256')).size).toBe(0);
    const other = await ChunkIntentLog.open(path, 'transfer-2', 'blake3');
    expect(other.earlier.size).toBe(0);
    await other.close();
    expect((await readChunkIntents(path, 'transfer-1', 'blake3')).size).toBe(0);
  });

  it('ignores a damaged record and a torn tail, and appends after the last whole record', async () => {
    const path = join(dir.path, 'log-b.intents');
    const log = await ChunkIntentLog.open(path, 't', 'blake3');
    await log.note(1, entry(1));
    await log.note(2, entry(2));
    await log.close();
    const bytes = await readFile(path);
    const recordBytes = 46;
    // A flipped byte in the second record's digest: its check fails.
    bytes[bytes.length - recordBytes + 10]! ^= 0xff;
    await writeFile(path, bytes);
    expect([...(await readChunkIntents(path, 't', 'blake3')).keys()]).toEqual([1]);
    // Half a record at the end, as a crash mid-append leaves it.
    await appendFile(path, Buffer.alloc(20, 7));
    expect([...(await readChunkIntents(path, 't', 'blake3')).keys()]).toEqual([1]);
    const reopened = await ChunkIntentLog.open(path, 't', 'blake3');
    await reopened.note(5, entry(5));
    await reopened.close();
    expect((await stat(path)).size).toBe(bytes.length + recordBytes);
    expect([...(await readChunkIntents(path, 't', 'blake3'))]).toEqual([
      [1, [entry(1)]],
      [5, [entry(5)]],
    ]);
  });
  it('writes on close the records noted in the same turn', async () => {
    const path = join(dir.path, 'log-c.intents');
    const log = await ChunkIntentLog.open(path, 't', 'blake3');
    const noted = log.note(4, entry(4));
    await log.close();
    await noted;
    expect([...(await readChunkIntents(path, 't', 'blake3'))]).toEqual([[4, [entry(4)]]]);
  });

  it('reads a log of 400,000 records in a 64 MiB heap: each chunk once, in ascending order, its entries in the order recorded and each once', async () => {
    // 200,000 chunks, written in two runs (the second in descending chunk order), each chunk
    // with its entry before and after; every tenth chunk noted twice with one entry.
    const chunks = 200_000;
    const header = Buffer.from('SYNCPROXY-CHUNK-INTENTS/1\nblake3 big\n');
    const record = (index: number, entry: Uint8Array) => {
      const out = Buffer.alloc(46);
      out.writeUIntBE(index, 0, 6);
      out.set(entry, 6);
      createHash('sha256').update(out.subarray(0, 38)).digest().copy(out, 38, 0, 8);
      return out;
    };
    const before = (i: number) => new Uint8Array(32).fill(i & 255);
    const after = (i: number) => before(i).fill(~i & 255, 0, 1);
    const records: Buffer[] = [header];
    const expected = createHash('sha256');
    for (let i = 0; i < chunks; i++) {
      expected.update(`${i}:`).update(before(i)).update(after(i));
      records.push(record(i, before(i)));
      if (i % 10 === 0) records.push(record(i, before(i)));
    }
    for (let i = chunks - 1; i >= 0; i--) records.push(record(i, after(i)));
    const path = join(dir.path, 'log-big.intents');
    await writeFile(path, Buffer.concat(records));
    const child = fileURLToPath(new URL('./fixtures/read-intents-child.ts', import.meta.url));
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--max-old-space-size=64', '--import', 'tsx', child, path, 'big'],
      { cwd: fileURLToPath(new URL('../..', import.meta.url)) },
    );
    expect(JSON.parse(stdout)).toEqual({
      chunks,
      entries: 2 * chunks,
      ascending: true,
      digest: expected.digest('hex'),
    });
  }, 60_000);
});

describe('an incremental run again after a run of it stopped', () => {
  const whole: Extent[] = [{ offset: 0, length: SIZE, kind: 'data' }];
  // 20 bytes of chunk 1 and 16 of chunk 3 change (and, where a test says so, 8 of chunk 2): every
  // chunk changed is written in part.
  const changesOf = (chunkTwo: boolean): Extent[] => [
    { offset: CHUNK + 10, length: 20, kind: 'data' },
    ...(chunkTwo ? [{ offset: 2 * CHUNK + 50, length: 8, kind: 'data' } as const] : []),
    { offset: 3 * CHUNK + 100, length: 16, kind: 'data' },
  ];

  /**
   * A target synced in full, then an incremental that writes chunk 1 and fails for good at the next
   * chunk it changes (nothing of that chunk written), one chunk at a time, and whose sink then fails
   * to flush, so that nothing is saved: the target holds chunk 1's new bytes while its manifest still
   * holds chunk 1's old entry and no checkpoint names it, as a run killed before its first checkpoint
   * leaves it.
   */
  async function stoppedIncremental(name: string, chunkTwo = false) {
    const changes = changesOf(chunkTwo);
    const stopAt = chunkTwo ? 2 : 3;
    const path = join(dir.path, `${name}.raw`);
    const before = randomFillSync(new Uint8Array(SIZE));
    await transferDisk({
      reader: new MemoryReader(before, whole),
      sink: new FileSink(path),
      chunkSizeBytes: CHUNK,
      transferId: `${name}-full`,
    });
    expect(existsSync(intentsPathOf(`${path}.manifest`)), 'a complete transfer leaves no log').toBe(false);
    const after = before.slice();
    after.fill(0x33, CHUNK + 10, CHUNK + 30);
    after.fill(0x44, 3 * CHUNK + 100, 3 * CHUNK + 116);
    if (chunkTwo) after.fill(0x55, 2 * CHUNK + 50, 2 * CHUNK + 58);
    let chunkOneWritten!: () => void;
    const chunkOne = new Promise<void>((resolve) => {
      chunkOneWritten = resolve;
    });
    class StoppingSink extends FileSink {
      override async write(offset: number, data: Uint8Array): Promise<void> {
        if (offset >= stopAt * CHUNK) {
          await chunkOne;
          throw new SyncproxyError('the target went away', { code: 'io', retryable: false });
        }
        await super.write(offset, data);
        if (offset < 2 * CHUNK) chunkOneWritten();
      }
      override async flush(): Promise<void> {
        throw new SyncproxyError('the target went away', { code: 'io', retryable: false });
      }
    }
    const stopped = await transferDisk({
      reader: new MemoryReader(after, changes),
      sink: new StoppingSink(path),
      chunkSizeBytes: CHUNK,
      maxInFlightBytes: CHUNK,
      full: false,
      transferId: `${name}-incremental`,
    }).catch((error: unknown) => error);
    expect(stopped).toMatchObject({ code: 'io' });
    expect(existsSync(`${path}.checkpoint.json`)).toBe(false);
    expect(
      Buffer.compare((await readFile(path)).subarray(CHUNK, 2 * CHUNK), after.subarray(CHUNK, 2 * CHUNK)),
    ).toBe(0);
    const manifest = await readManifest(`${path}.manifest`);
    expect(
      manifest.matches(1, digestChunk(manifest.hashAlgorithm, before.subarray(CHUNK, 2 * CHUNK))),
      "the manifest holds chunk 1's old entry",
    ).toBe(true);
    const log = await readChunkIntents(
      intentsPathOf(`${path}.manifest`),
      `${name}-incremental`,
      manifest.hashAlgorithm,
    );
    expect([...log.keys()].sort(), 'the chunks the stopped run began').toEqual([1, stopAt]);
    return { path, before, after, changes };
  }

  const runAgain = (path: string, after: Uint8Array, name: string, changes: Extent[]) =>
    transferDisk({
      reader: new MemoryReader(after, changes),
      sink: new FileSink(path),
      chunkSizeBytes: CHUNK,
      full: false,
      transferId: `${name}-incremental`,
    });

  it('proves a chunk the stopped run wrote in part by the entry it recorded first: every entry exact, the log removed', async () => {
    const { path, after, changes } = await stoppedIncremental('written');
    const result = await runAgain(path, after, 'written', changes);
    expect(result).toMatchObject({ unknownChunks: 0, warnings: [] });
    expect(Buffer.compare(await readFile(path), after)).toBe(0);
    const manifest = await readManifest(`${path}.manifest`);
    for (let chunk = 0; chunk < 4; chunk++) {
      const bytes = after.subarray(chunk * CHUNK, (chunk + 1) * CHUNK);
      expect(manifest.matches(chunk, digestChunk(manifest.hashAlgorithm, bytes)), `chunk ${chunk}`).toBe(
        true,
      );
    }
    expect(existsSync(intentsPathOf(`${path}.manifest`))).toBe(false);
  });

  it('leaves a chunk the stopped run tore unknown, with manifest-unproven, not an integrity error; the image is exact', async () => {
    const { path, before, after, changes } = await stoppedIncremental('torn');
    // Half of chunk 1's change landed: neither its old entry nor its new one describes it.
    const image = await readFile(path);
    image.set(before.subarray(CHUNK + 20, CHUNK + 30), CHUNK + 20);
    await writeFile(path, image);
    const result = await runAgain(path, after, 'torn', changes);
    expect(result.unknownChunks).toBe(1);
    expect(result.warnings.map((w) => w.code)).toEqual(['manifest-unproven']);
    expect(Buffer.compare(await readFile(path), after)).toBe(0);
    expect((await readManifest(`${path}.manifest`)).entry(1)).toEqual({ state: 'unknown' });
  });

  it('still rejects a chunk changed behind its back that the stopped run never touched', async () => {
    const { path, after, changes } = await stoppedIncremental('tampered', true);
    const image = await readFile(path);
    image[3 * CHUNK + 5000]! ^= 0xff;
    await writeFile(path, image);
    const failure = await runAgain(path, after, 'tampered', changes).catch((error: unknown) => error);
    expect(failure).toMatchObject({ code: 'integrity', details: { chunk: 3 } });
  });
});
