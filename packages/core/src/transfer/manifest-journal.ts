import { createHash } from 'node:crypto';
import { open, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { syncDirectory } from '../atomic-file.js';
import { SyncproxyError } from '../errors/syncproxy-error.js';
import { toSyncproxyError } from '../errors/to-syncproxy-error.js';
import type { DiskManifest } from './manifest.js';

/**
 * The entries of an incomplete manifest that changed since it was last saved:
 * what a checkpoint needs to record, in proportion to the chunks written since,
 * not to the disk (a 1 TiB disk's manifest is 8 MiB; a checkpoint's changes
 * are a few KiB).
 */
export interface ManifestChanges {
  /** The manifest's {@link DiskManifest.pendingFrom} after these changes. */
  pendingFrom: number;
  /** Chunk index and its 32 stored bytes (a digest, or the zero or unknown marker), in the order set. */
  entries: ReadonlyArray<readonly [index: number, raw: Uint8Array]>;
}

/**
 * File form of `<manifest>.journal`: the magic line, the 32-byte checksum that
 * ends the base manifest file it continues, then batches. A batch is
 * `u32 count`, `u48 pendingFrom`, `f64 updatedAt (ms)`, `count` times
 * (`u48 index`, 32 bytes), then the SHA-256 of the previous batch's sum (the
 * base checksum for the first) and the batch. The chain ties each batch to its
 * base and its place: a torn tail (a crash mid-append) ends the journal at the
 * last whole batch, which is as far as any checkpoint can have counted on.
 */
const JOURNAL_MAGIC = Buffer.from('SYNCPROXY-MANIFEST-JOURNAL/1\n', 'utf8');
const SUM_BYTES = 32;
const ENTRY_BYTES = 32;
const BATCH_HEAD_BYTES = 4 + 6 + 8;
const RECORD_BYTES = 6 + ENTRY_BYTES;

export function journalPathOf(manifestPath: string): string {
  return `${manifestPath}.journal`;
}

/** The checksum that ends an encoded manifest: what its journal names as its base. */
export function baseChecksumOf(encoded: Uint8Array): Uint8Array {
  return encoded.slice(encoded.length - SUM_BYTES);
}

function chained(previous: Uint8Array, batch: Uint8Array): Buffer {
  return createHash('sha256').update(previous).update(batch).digest();
}

function encodeBatch(changes: ManifestChanges, updatedAtMs: number): Buffer {
  const batch = Buffer.allocUnsafe(BATCH_HEAD_BYTES + changes.entries.length * RECORD_BYTES);
  batch.writeUInt32BE(changes.entries.length, 0);
  batch.writeUIntBE(changes.pendingFrom, 4, 6);
  batch.writeDoubleBE(updatedAtMs, 10);
  let at = BATCH_HEAD_BYTES;
  for (const [index, raw] of changes.entries) {
    if (raw.length !== ENTRY_BYTES) {
      throw new SyncproxyError(`manifest journal: an entry is 32 bytes (got ${raw.length})`, {
        code: 'internal',
      });
    }
    batch.writeUIntBE(index, at, 6);
    batch.set(raw, at + 6);
    at += RECORD_BYTES;
  }
  return batch;
}

/**
 * Appends batches of {@link ManifestChanges} to the journal of one base
 * manifest file. Each append is fsynced before it resolves, so a checkpoint
 * saved after it never names a chunk whose digest is not durable.
 */
export class ManifestJournalWriter {
  readonly path: string;
  #last: Uint8Array;
  #created = false;

  constructor(manifestPath: string, baseChecksum: Uint8Array) {
    this.path = journalPathOf(manifestPath);
    this.#last = baseChecksum;
  }

  async append(changes: ManifestChanges): Promise<void> {
    const batch = encodeBatch(changes, Date.now());
    const sum = chained(this.#last, batch);
    const create = !this.#created;
    try {
      // A new journal replaces any older one: that one belongs to a base this store has since replaced.
      const handle = await open(this.path, create ? 'w' : 'a');
      try {
        const parts = create ? [JOURNAL_MAGIC, this.#last, batch, sum] : [batch, sum];
        await handle.writev(parts);
        await handle.datasync();
      } finally {
        await handle.close();
      }
      if (create) await syncDirectory(dirname(this.path));
    } catch (error) {
      throw toSyncproxyError(error, { operation: `append to ${this.path}` });
    }
    this.#created = true;
    this.#last = sum;
  }
}

/**
 * Applies the journal beside `manifestPath` to `base`, decoded from that file,
 * whose closing checksum is `baseChecksum`. A journal of another base (left by
 * a crash between a new base and the removal of the old journal) or of a
 * complete base is ignored: a complete manifest was written after every change
 * its journal held. Batches are applied up to the first torn or altered one.
 */
export async function applyManifestJournal(
  manifestPath: string,
  base: DiskManifest,
  baseChecksum: Uint8Array,
): Promise<DiskManifest> {
  if (base.complete) return base;
  let bytes: Buffer;
  try {
    bytes = await readFile(journalPathOf(manifestPath));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return base;
    throw toSyncproxyError(error, { operation: `read ${journalPathOf(manifestPath)}` });
  }
  const headBytes = JOURNAL_MAGIC.length + SUM_BYTES;
  if (bytes.length < headBytes || !bytes.subarray(0, JOURNAL_MAGIC.length).equals(JOURNAL_MAGIC)) return base;
  if (!bytes.subarray(JOURNAL_MAGIC.length, headBytes).equals(baseChecksum)) return base;
  let previous: Uint8Array = baseChecksum;
  let at = headBytes;
  while (at + BATCH_HEAD_BYTES <= bytes.length) {
    const count = bytes.readUInt32BE(at);
    const end = at + BATCH_HEAD_BYTES + count * RECORD_BYTES;
    if (end + SUM_BYTES > bytes.length) break;
    const batch = bytes.subarray(at, end);
    const sum = bytes.subarray(end, end + SUM_BYTES);
    if (!chained(previous, batch).equals(sum)) break;
    const pendingFrom = batch.readUIntBE(4, 6);
    if (pendingFrom > base.chunkCount) break;
    let valid = true;
    for (let r = BATCH_HEAD_BYTES; r < batch.length; r += RECORD_BYTES) {
      if (batch.readUIntBE(r, 6) >= base.chunkCount) valid = false;
    }
    if (!valid) break;
    for (let r = BATCH_HEAD_BYTES; r < batch.length; r += RECORD_BYTES) {
      base.set(batch.readUIntBE(r, 6), batch.subarray(r + 6, r + RECORD_BYTES));
    }
    base.pendingFrom = pendingFrom;
    base.updatedAt = new Date(batch.readDoubleBE(10)).toISOString();
    previous = sum;
    at = end + SUM_BYTES;
  }
  return base;
}
