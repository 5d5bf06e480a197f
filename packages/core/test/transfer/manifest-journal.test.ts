import { createHash } from 'node:crypto';
import { readFile, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type BlockSink,
  DiskManifest,
  FileManifestStore,
  type ManifestChanges,
  readManifest,
  SyncproxyError,
  transferDisk,
  writeFileAtomic,
} from '@syncproxy/core';
import { describe, expect, it } from 'vitest';
import { digestChunk } from '../../src/transfer/chunk-hash-algorithm.js';
import { MemorySink, MemoryStores } from './fixtures/memory-sink.js';
import { PatternReader } from './fixtures/readers.js';
import { manifestDigestOf, useTempDir } from './fixtures/temp-dir.js';

const dir = useTempDir();

const digest = (text: string) => createHash('sha256').update(text).digest();
const ZERO = new Uint8Array(32);
const UNKNOWN = new Uint8Array(32).fill(0xff);
/** Journal bytes: the magic line and the base checksum, then per batch a head, 38 bytes an entry, and a sum. */
const HEAD_BYTES = 'SYNCPROXY-MANIFEST-JOURNAL/1\n'.length + 32;
const batchBytes = (entries: number) => 18 + entries * 38 + 32;

function eightChunks(): DiskManifest {
  const manifest = DiskManifest.create({ diskSize: 8 * 4096, chunkSizeBytes: 4096, transferId: 't' });
  for (let i = 0; i < 8; i++) manifest.set(i, digest(`old ${i}`));
  return manifest;
}

const FIRST: ManifestChanges = {
  pendingFrom: 3,
  entries: [
    [0, digest('new 0')],
    [1, ZERO],
    [2, UNKNOWN],
  ],
};
const SECOND: ManifestChanges = {
  pendingFrom: 5,
  entries: [
    [2, digest('new 2')],
    [4, digest('new 4')],
  ],
};

/** A store with an incomplete base (pendingFrom 0) and the two batches above appended. */
async function journaled(name: string): Promise<FileManifestStore> {
  const store = new FileManifestStore(join(dir.path, name));
  await store.save(eightChunks());
  await store.saveChanges(FIRST);
  await store.saveChanges(SECOND);
  return store;
}

describe('FileManifestStore journal', () => {
  it('appends a checkpoint’s changes beside the manifest, and reading the manifest applies them', async () => {
    const store = await journaled('applied.manifest');
    expect((await stat(`${store.path}.journal`)).size).toBe(HEAD_BYTES + batchBytes(3) + batchBytes(2));
    const loaded = await readManifest(store.path);
    expect(loaded.complete).toBe(false);
    expect(loaded.pendingFrom).toBe(5);
    expect(loaded.entry(0)).toMatchObject({ digest: digest('new 0').toString('hex') });
    expect(loaded.entry(1)).toEqual({ state: 'zero' });
    expect(loaded.entry(2)).toMatchObject({ digest: digest('new 2').toString('hex') });
    expect(loaded.entry(3)).toMatchObject({ digest: digest('old 3').toString('hex') });
    expect(loaded.entry(4)).toMatchObject({ digest: digest('new 4').toString('hex') });
    expect((await store.load())?.digest()).toBe(loaded.digest());
  });

  it('a whole save replaces the journal', async () => {
    const store = await journaled('replaced.manifest');
    const complete = eightChunks();
    complete.complete = true;
    await store.save(complete);
    await expect(stat(`${store.path}.journal`)).rejects.toMatchObject({ code: 'ENOENT' });
    expect((await readManifest(store.path)).digest()).toBe(complete.digest());
  });

  it('a torn last batch is left out, and an altered batch ends the journal there', async () => {
    const store = await journaled('torn.manifest');
    const journal = `${store.path}.journal`;
    await truncate(journal, HEAD_BYTES + batchBytes(3) + batchBytes(2) - 1);
    const torn = await readManifest(store.path);
    expect(torn.pendingFrom).toBe(3);
    expect(torn.entry(2)).toEqual({ state: 'unknown' });
    expect(torn.entry(4)).toMatchObject({ digest: digest('old 4').toString('hex') });

    const bytes = await readFile(journal);
    bytes[HEAD_BYTES + 20]! ^= 1;
    await writeFile(journal, bytes);
    const altered = await readManifest(store.path);
    expect(altered.pendingFrom).toBe(0);
    expect(altered.digest()).toBe(eightChunks().digest());
  });

  it('a journal left beside a newer base (a crash before its removal) is ignored', async () => {
    const store = await journaled('stale.manifest');
    const newer = eightChunks();
    newer.set(7, digest('newer 7'));
    newer.updatedAt = new Date().toISOString();
    await writeFileAtomic(store.path, newer.encode());
    const loaded = await readManifest(store.path);
    expect(loaded.pendingFrom).toBe(0);
    expect(loaded.digest()).toBe(newer.digest());
  });

  it('refuses saveChanges before a save of the incomplete manifest', async () => {
    const store = new FileManifestStore(join(dir.path, 'unsaved.manifest'));
    const error = await store.saveChanges(FIRST).catch((e: unknown) => e);
    expect(SyncproxyError.isInstance(error)).toBe(true);
    expect(error).toMatchObject({ code: 'internal', retryable: false });
    const complete = eightChunks();
    complete.complete = true;
    await store.save(complete);
    await expect(store.saveChanges(FIRST)).rejects.toMatchObject({ code: 'internal' });
  });
});

const MiB = 1 << 20;
const CHUNK = 4096;

/** A 64 MiB disk of 16384 chunks, 200 of them written (every 80th). */
function spreadReader(seed = 0): PatternReader {
  const extents = Array.from({ length: 200 }, (_, i) => ({
    offset: i * 80 * CHUNK,
    length: CHUNK,
    kind: 'data' as const,
  }));
  return new PatternReader(64 * MiB, extents, 4096, seed);
}

/** A FileManifestStore that counts whole saves and the entries its checkpoints save as changes. */
class CountingStore extends FileManifestStore {
  wholeSaves: boolean[] = [];
  changeSaves = 0;
  entriesSaved = 0;
  override async save(manifest: DiskManifest): Promise<void> {
    this.wholeSaves.push(manifest.complete);
    await super.save(manifest);
  }
  override async saveChanges(changes: ManifestChanges): Promise<void> {
    this.changeSaves++;
    this.entriesSaved += changes.entries.length;
    await super.saveChanges(changes);
  }
}

/** `sink` with its writes going through `write` instead: a target that stalls, fails or stops. */
function withWrite(sink: MemorySink, write: BlockSink['write']): BlockSink {
  return {
    open: (size) => sink.open(size),
    write,
    writeZeroes: (offset, length) => sink.writeZeroes(offset, length),
    flush: () => sink.flush(),
    close: () => sink.close(),
  };
}

/** `sink`, and a signal aborted once `writes` writes have gone through it (a run killed mid-transfer). */
function stopAfterWrites(sink: MemorySink, writes: number): { sink: BlockSink; signal: AbortSignal } {
  const stop = new AbortController();
  let done = 0;
  return {
    sink: withWrite(sink, async (offset, data) => {
      await sink.write(offset, data);
      if (++done === writes) stop.abort(new Error('stopped'));
    }),
    signal: stop.signal,
  };
}

describe('transferDisk checkpoints with a journaling manifest store', () => {
  it('saves the whole manifest once before the first write and once at the end; checkpoints save only changed entries', async () => {
    const stores = new MemoryStores();
    const manifest = new CountingStore(join(dir.path, 'counted.manifest'));
    const reader = spreadReader();
    const result = await transferDisk({
      reader,
      sink: new MemorySink(),
      // An incremental of 200 scattered chunks: a full sync would also zero the 16184 between them.
      full: false,
      chunkSizeBytes: CHUNK,
      concurrency: 2,
      maxInFlightBytes: 2 * CHUNK,
      checkpoint: stores.checkpoint,
      manifest,
      checkpointEvery: { chunks: 10 },
    });
    expect(result.chunks).toBe(200);
    expect(manifest.wholeSaves).toEqual([false, true]);
    expect(stores.checkpointSaves).toBeGreaterThanOrEqual(15);
    expect(manifest.changeSaves).toBe(stores.checkpointSaves);
    // Each chunk is saved once as done, plus at most the two in flight per checkpoint as unknown.
    expect(manifest.entriesSaved).toBeLessThanOrEqual(200 + 2 * manifest.changeSaves);
    expect(result.manifestDigest).toBe((await readManifest(manifest.path)).digest());
  });

  it('marks the stored manifest incomplete before the first write, so a run killed before its first checkpoint leaves no complete manifest', async () => {
    const path = join(dir.path, 'killed.img');
    const manifest = new FileManifestStore(`${path}.manifest`);
    const sink = new MemorySink();
    await transferDisk({ reader: spreadReader(), sink, chunkSizeBytes: CHUNK, manifest, checkpoint: false });
    expect((await readManifest(manifest.path)).complete).toBe(true);

    let seenAtFirstWrite: boolean | undefined;
    const stop = new AbortController();
    const stalling = withWrite(sink, async () => {
      seenAtFirstWrite ??= (await readManifest(manifest.path)).complete;
      stop.abort(new Error('killed'));
    });
    await expect(
      transferDisk({
        reader: spreadReader(1),
        sink: stalling,
        chunkSizeBytes: CHUNK,
        manifest,
        checkpoint: false,
        signal: stop.signal,
      }),
    ).rejects.toMatchObject({ code: 'aborted' });
    expect(seenAtFirstWrite).toBe(false);
  });

  it('leaves a chunk whose write failed unknown in the saved manifest, though it lies below pendingFrom', async () => {
    const manifest = new FileManifestStore(join(dir.path, 'failed.img.manifest'));
    const sink = new MemorySink();
    await transferDisk({ reader: spreadReader(), sink, chunkSizeBytes: CHUNK, manifest, checkpoint: false });
    const failing = withWrite(sink, async (offset, data) => {
      if (offset === 80 * CHUNK) {
        await sink.write(offset, data.subarray(0, 100)); // half written, then the target fails
        throw new SyncproxyError('disk full', { code: 'no-capacity', retryable: false });
      }
      await sink.write(offset, data);
    });
    await expect(
      transferDisk({
        reader: spreadReader(1),
        sink: failing,
        chunkSizeBytes: CHUNK,
        concurrency: 1,
        manifest,
        checkpoint: false,
      }),
    ).rejects.toMatchObject({ code: 'no-capacity' });
    const saved = await readManifest(manifest.path);
    expect(saved.complete).toBe(false);
    expect(saved.pendingFrom).toBeGreaterThan(80);
    expect(saved.entry(80)).toEqual({ state: 'unknown' });
  });

  it('a resume whose manifest lost journal batches leaves the chunks it skips unknown, never with the digests of the image before', async () => {
    const manifest = new FileManifestStore(join(dir.path, 'lost.img.manifest'));
    const stores = new MemoryStores();
    const sink = new MemorySink();
    const base = { chunkSizeBytes: CHUNK, manifest, full: true } as const;
    // The image before: seed 0, complete, with a digest for every written chunk.
    await transferDisk({ ...base, reader: spreadReader(0), sink, checkpoint: false });
    const stopping = stopAfterWrites(sink, 120);
    const options = {
      ...base,
      concurrency: 2,
      maxInFlightBytes: 2 * CHUNK,
      checkpoint: stores.checkpoint,
      checkpointEvery: { chunks: 10 },
      transferId: 'snap-2',
    };
    await expect(transferDisk({ ...options, reader: spreadReader(1), ...stopping })).rejects.toMatchObject({
      code: 'aborted',
    });
    // Every batch after the whole save is lost: the manifest lags the checkpoint.
    await truncate(`${manifest.path}.journal`, HEAD_BYTES);
    const reader = spreadReader(1);
    const result = await transferDisk({ ...options, reader, sink });
    expect(result.resumed).toBe(true);
    expect(createHash('sha256').update(sink.image).digest('hex')).toBe(reader.sha256());
    const saved = await readManifest(manifest.path);
    let unknown = 0;
    for (let i = 0; i < saved.chunkCount; i++) {
      const entry = saved.entry(i);
      if (entry.state === 'unknown') {
        unknown++;
        continue;
      }
      const chunk = sink.image.subarray(i * CHUNK, (i + 1) * CHUNK);
      const expected = chunk.every((b) => b === 0)
        ? { state: 'zero' }
        : {
            state: 'hash',
            algorithm: saved.hashAlgorithm,
            digest: Buffer.from(digestChunk(saved.hashAlgorithm, chunk)).toString('hex'),
          };
      expect(entry, `chunk ${i}`).toEqual(expected);
    }
    expect(unknown).toBeGreaterThan(0);
    expect(result.unknownChunks).toBe(unknown);
  });

  it('resumes from a checkpoint whose manifest changes are in the journal, to the exact manifest of the image', async () => {
    const path = join(dir.path, 'resumed.img');
    const stores = new MemoryStores();
    const manifest = new FileManifestStore(`${path}.manifest`);
    const sink = new MemorySink();
    const stopping = stopAfterWrites(sink, 120);
    const options = {
      chunkSizeBytes: CHUNK,
      concurrency: 2,
      maxInFlightBytes: 2 * CHUNK,
      checkpoint: stores.checkpoint,
      checkpointEvery: { chunks: 10 },
      manifest,
      transferId: 'snap-1',
    };
    await expect(
      transferDisk({ ...options, reader: spreadReader(), ...stopping, full: true }),
    ).rejects.toMatchObject({ code: 'aborted' });
    const partial = await readManifest(manifest.path);
    expect(partial.complete).toBe(false);
    expect(partial.pendingFrom).toBeGreaterThan(80 * 90);
    expect((await stat(`${manifest.path}.journal`)).size).toBeGreaterThan(HEAD_BYTES);

    const reader = spreadReader();
    const result = await transferDisk({ ...options, reader, sink, full: true });
    expect(result.resumed).toBe(true);
    expect(result.chunksSkipped).toBeGreaterThanOrEqual(90);
    expect(createHash('sha256').update(sink.image).digest('hex')).toBe(reader.sha256());
    expect(result.manifestDigest).toBe(manifestDigestOf(sink.image, CHUNK));
    expect((await readManifest(manifest.path)).digest()).toBe(result.manifestDigest);
  });
});
