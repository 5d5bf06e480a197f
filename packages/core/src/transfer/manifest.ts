import { createHash } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { writeFileAtomic } from '../atomic-file.js';
import { SyncproxyError } from '../errors/syncproxy-error.js';
import { toSyncproxyError } from '../errors/to-syncproxy-error.js';
import { type ChunkHashAlgorithm, isChunkHashAlgorithm } from './chunk-hash-algorithm.js';
import { ChunkIntentLog, intentsPathOf } from './chunk-intents.js';
import {
  applyManifestJournal,
  baseChecksumOf,
  journalPathOf,
  type ManifestChanges,
  ManifestJournalWriter,
} from './manifest-journal.js';

/** Bytes of one entry: a SHA-256 or a BLAKE3 digest. */
export const MANIFEST_ENTRY_BYTES = 32;
/** Format 1: SHA-256 entries, no algorithm in the header. Still read; no longer written. */
const MAGIC_V1 = 'SYNCPROXY-MANIFEST/1\n';
/** Format 2: the header names the entries' `hashAlgorithm`. */
const MAGIC_V2 = 'SYNCPROXY-MANIFEST/2\n';
const ZERO_ENTRY = new Uint8Array(MANIFEST_ENTRY_BYTES);
/** The stored bytes of an `unknown` entry. */
export const UNKNOWN_ENTRY = new Uint8Array(MANIFEST_ENTRY_BYTES).fill(0xff);

/** The 32 stored bytes of an entry: the digest itself, or the zero marker. */
export function entryBytes(entry: Uint8Array | 'zero'): Uint8Array {
  return entry === 'zero' ? ZERO_ENTRY : entry;
}

/** True when the stored entry `raw` is known and equals `digest` (a digest of the same algorithm, or the zero marker). */
export function entryMatches(raw: Uint8Array, digest: Uint8Array | 'zero'): boolean {
  if (equalBytes(raw, UNKNOWN_ENTRY)) return false;
  return equalBytes(raw, entryBytes(digest));
}

/**
 * What the manifest knows of one chunk: its digest (hex, with the manifest's
 * algorithm), that it reads as all zeroes, or nothing (never written by a
 * transfer that could hash it).
 */
export type ManifestEntry =
  | { state: 'hash'; algorithm: ChunkHashAlgorithm; digest: string }
  | { state: 'zero' }
  | { state: 'unknown' };

export interface DiskManifestInit {
  diskSize: number;
  chunkSizeBytes: number;
  /** What every entry starts as (default `unknown`). */
  fill?: 'unknown' | 'zero';
  transferId?: string;
  /** What the entries are digests of (default `sha256`, what every caller hashed with before format 2). */
  hashAlgorithm?: ChunkHashAlgorithm;
}

/**
 * A digest per chunk of a disk image, as the target holds it: chunk `i` is
 * bytes `[i * chunkSizeBytes, min((i + 1) * chunkSizeBytes, diskSize))`. All
 * entries of one manifest use its {@link DiskManifest.hashAlgorithm}; a
 * digest of another algorithm never matches one (only the zero marker means
 * the same in both).
 *
 * Entries are 32 bytes. Two values are reserved: 32 zero bytes mean "reads as
 * all zeroes" (no hash is computed for zero chunks, so sparse disks cost
 * nothing to describe) and 32 0xff bytes mean "unknown". A real digest
 * equal to either has probability 2^-256.
 *
 * Memory: 32 bytes per chunk, 8 MiB for a 1 TiB disk at 4 MiB chunks.
 */
export class DiskManifest {
  readonly diskSize: number;
  readonly chunkSizeBytes: number;
  readonly chunkCount: number;
  readonly hashAlgorithm: ChunkHashAlgorithm;
  /** False while a transfer is writing the image (see {@link DiskManifest.pendingFrom}). */
  complete: boolean;
  /**
   * In an incomplete manifest, entries of chunks at and above this index may
   * describe the image before the interrupted transfer while the target holds
   * half-written bytes; below it every entry is exact (chunks in flight at the
   * save are `unknown`). Equals `chunkCount` in a complete manifest.
   */
  pendingFrom: number;
  transferId: string | undefined;
  /**
   * The sink's `targetId` (see `BlockSink.targetId`) of the image these entries describe; a
   * transfer to another target (a replaced or re-made image) does not continue them. Undefined in
   * manifests written before it was kept, and for sinks that name none.
   */
  targetId: string | undefined;
  /** ISO-8601 time of the last save. */
  updatedAt: string;
  readonly entries: Uint8Array;

  private constructor(
    diskSize: number,
    chunkSizeBytes: number,
    entries: Uint8Array,
    hashAlgorithm: ChunkHashAlgorithm,
  ) {
    this.diskSize = diskSize;
    this.chunkSizeBytes = chunkSizeBytes;
    this.chunkCount = chunkCountOf(diskSize, chunkSizeBytes);
    this.hashAlgorithm = hashAlgorithm;
    this.entries = entries;
    this.complete = false;
    this.pendingFrom = 0;
    this.transferId = undefined;
    this.targetId = undefined;
    this.updatedAt = new Date(0).toISOString();
  }

  static create(init: DiskManifestInit): DiskManifest {
    if (!Number.isSafeInteger(init.diskSize) || init.diskSize < 0) {
      throw new SyncproxyError(`manifest: invalid disk size ${init.diskSize}`, { code: 'config' });
    }
    if (!Number.isSafeInteger(init.chunkSizeBytes) || init.chunkSizeBytes <= 0) {
      throw new SyncproxyError(`manifest: invalid chunk size ${init.chunkSizeBytes}`, { code: 'config' });
    }
    const hashAlgorithm = init.hashAlgorithm ?? 'sha256';
    if (!isChunkHashAlgorithm(hashAlgorithm)) {
      throw new SyncproxyError(`manifest: unknown hash algorithm ${String(hashAlgorithm)}`, {
        code: 'config',
      });
    }
    const count = chunkCountOf(init.diskSize, init.chunkSizeBytes);
    const entries = new Uint8Array(count * MANIFEST_ENTRY_BYTES);
    if ((init.fill ?? 'unknown') === 'unknown') entries.fill(0xff);
    const manifest = new DiskManifest(init.diskSize, init.chunkSizeBytes, entries, hashAlgorithm);
    manifest.transferId = init.transferId;
    return manifest;
  }

  /** Length in bytes of chunk `index` (the last one may be short). */
  chunkLength(index: number): number {
    return Math.min(this.chunkSizeBytes, this.diskSize - index * this.chunkSizeBytes);
  }

  entry(index: number): ManifestEntry {
    const raw = this.raw(index);
    if (equalBytes(raw, ZERO_ENTRY)) return { state: 'zero' };
    if (equalBytes(raw, UNKNOWN_ENTRY)) return { state: 'unknown' };
    return { state: 'hash', algorithm: this.hashAlgorithm, digest: Buffer.from(raw).toString('hex') };
  }

  /** The 32 stored bytes of chunk `index` (a view, not a copy). */
  raw(index: number): Uint8Array {
    this.check(index);
    return this.entries.subarray(index * MANIFEST_ENTRY_BYTES, (index + 1) * MANIFEST_ENTRY_BYTES);
  }

  /** Stores `digest` (32 bytes, of the manifest's algorithm), or the zero or unknown marker. */
  set(index: number, digest: Uint8Array | 'zero' | 'unknown'): void {
    const value = digest === 'zero' ? ZERO_ENTRY : digest === 'unknown' ? UNKNOWN_ENTRY : digest;
    if (value.length !== MANIFEST_ENTRY_BYTES) {
      throw new SyncproxyError(`manifest: a chunk digest is 32 bytes (got ${value.length})`, {
        code: 'internal',
      });
    }
    this.raw(index).set(value);
  }

  /**
   * True when entry `index` is known and equals `digest` (or the zero marker).
   * `algorithm`: what `digest` was computed with (default: the manifest's); a
   * digest of another algorithm is never a match, so a chunk is re-sent or
   * re-hashed rather than judged unchanged across algorithms.
   */
  matches(
    index: number,
    digest: Uint8Array | 'zero',
    algorithm: ChunkHashAlgorithm = this.hashAlgorithm,
  ): boolean {
    if (digest !== 'zero' && algorithm !== this.hashAlgorithm) return false;
    return entryMatches(this.raw(index), digest);
  }

  /** True when `other` describes the same disk size and chunk size. */
  sameGeometry(other: { diskSize: number; chunkSizeBytes: number }): boolean {
    return other.diskSize === this.diskSize && other.chunkSizeBytes === this.chunkSizeBytes;
  }

  clone(): DiskManifest {
    const copy = new DiskManifest(
      this.diskSize,
      this.chunkSizeBytes,
      this.entries.slice(),
      this.hashAlgorithm,
    );
    copy.complete = this.complete;
    copy.pendingFrom = this.pendingFrom;
    copy.transferId = this.transferId;
    copy.targetId = this.targetId;
    copy.updatedAt = this.updatedAt;
    return copy;
  }

  /**
   * SHA-256 (hex) of the geometry, the algorithm and every entry: two images
   * with equal digests and no unknown entry are equal chunk by chunk.
   * Bookkeeping (`complete`, `transferId`, `updatedAt`) is not part of it. A
   * SHA-256 manifest digests as format 1 did, so a digest a sync state
   * recorded before format 2 still names the same manifest.
   */
  digest(): string {
    const hash = createHash('sha256');
    hash.update(this.hashAlgorithm === 'sha256' ? MAGIC_V1 : `${MAGIC_V2}${this.hashAlgorithm}\n`);
    hash.update(u64(this.diskSize));
    hash.update(u64(this.chunkSizeBytes));
    hash.update(this.entries);
    return hash.digest('hex');
  }

  /** Entries still `unknown`. */
  unknownCount(): number {
    let count = 0;
    const entries = this.entries;
    for (let at = 0; at < entries.length; at += MANIFEST_ENTRY_BYTES) {
      // A digest's first byte is 0xff once in 256 chunks: only those are compared whole.
      if (entries[at] === 0xff && equalBytes(entries.subarray(at, at + MANIFEST_ENTRY_BYTES), UNKNOWN_ENTRY))
        count++;
    }
    return count;
  }

  /**
   * The file form (format 2): the line `SYNCPROXY-MANIFEST/2`, a JSON header line (geometry,
   * `hashAlgorithm`, bookkeeping), the entries, and the SHA-256 of everything before it.
   */
  encode(): Uint8Array {
    const header = JSON.stringify({
      diskSize: this.diskSize,
      chunkSizeBytes: this.chunkSizeBytes,
      chunkCount: this.chunkCount,
      hashAlgorithm: this.hashAlgorithm,
      complete: this.complete,
      pendingFrom: this.complete ? this.chunkCount : this.pendingFrom,
      transferId: this.transferId ?? null,
      ...(this.targetId !== undefined ? { targetId: this.targetId } : {}),
      updatedAt: this.updatedAt,
    });
    const head = Buffer.from(`${MAGIC_V2}${header}\n`, 'utf8');
    const out = Buffer.allocUnsafe(head.length + this.entries.length + MANIFEST_ENTRY_BYTES);
    head.copy(out, 0);
    out.set(this.entries, head.length);
    const sum = createHash('sha256')
      .update(out.subarray(0, head.length + this.entries.length))
      .digest();
    out.set(sum, head.length + this.entries.length);
    return out;
  }

  static decode(bytes: Uint8Array, source = 'manifest'): DiskManifest {
    const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const bad = (why: string) =>
      new SyncproxyError(`${source} is not a valid syncproxy manifest: ${why}`, {
        code: 'integrity',
        retryable: false,
      });
    const magic = buffer.subarray(0, MAGIC_V1.length).toString('utf8');
    if (magic !== MAGIC_V1 && magic !== MAGIC_V2) throw bad('wrong magic line');
    const newline = buffer.indexOf(0x0a, magic.length);
    if (newline === -1) throw bad('no header line');
    let header: {
      diskSize?: unknown;
      chunkSizeBytes?: unknown;
      chunkCount?: unknown;
      hashAlgorithm?: unknown;
      complete?: unknown;
      pendingFrom?: unknown;
      transferId?: unknown;
      targetId?: unknown;
      updatedAt?: unknown;
    };
    try {
      header = JSON.parse(buffer.subarray(magic.length, newline).toString('utf8'));
    } catch {
      throw bad('header is not JSON');
    }
    const { diskSize, chunkSizeBytes, chunkCount } = header;
    if (
      !Number.isSafeInteger(diskSize) ||
      !Number.isSafeInteger(chunkSizeBytes) ||
      (chunkSizeBytes as number) <= 0
    ) {
      throw bad('header lacks diskSize/chunkSizeBytes');
    }
    if (chunkCount !== chunkCountOf(diskSize as number, chunkSizeBytes as number))
      throw bad('chunkCount does not fit the geometry');
    // Format 1 had SHA-256 only; format 2 must name its algorithm, and one this version does not know is refused.
    const hashAlgorithm = magic === MAGIC_V1 ? 'sha256' : header.hashAlgorithm;
    if (!isChunkHashAlgorithm(hashAlgorithm)) {
      throw bad(
        `unknown hash algorithm ${JSON.stringify(header.hashAlgorithm)} (written by a newer version?)`,
      );
    }
    const start = newline + 1;
    const end = start + (chunkCount as number) * MANIFEST_ENTRY_BYTES;
    if (buffer.length !== end + MANIFEST_ENTRY_BYTES)
      throw bad(`expected ${end + MANIFEST_ENTRY_BYTES} bytes, found ${buffer.length}`);
    const sum = createHash('sha256').update(buffer.subarray(0, end)).digest();
    if (!equalBytes(sum, buffer.subarray(end))) throw bad('checksum mismatch (torn or altered file)');
    const manifest = new DiskManifest(
      diskSize as number,
      chunkSizeBytes as number,
      new Uint8Array(buffer.subarray(start, end)),
      hashAlgorithm,
    );
    manifest.complete = header.complete === true;
    manifest.pendingFrom = manifest.complete
      ? manifest.chunkCount
      : Number.isSafeInteger(header.pendingFrom)
        ? Math.min(header.pendingFrom as number, manifest.chunkCount)
        : 0;
    manifest.transferId = typeof header.transferId === 'string' ? header.transferId : undefined;
    manifest.targetId = typeof header.targetId === 'string' ? header.targetId : undefined;
    manifest.updatedAt = typeof header.updatedAt === 'string' ? header.updatedAt : manifest.updatedAt;
    return manifest;
  }

  private check(index: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.chunkCount) {
      throw new SyncproxyError(`manifest: chunk ${index} out of range [0, ${this.chunkCount})`, {
        code: 'internal',
      });
    }
  }
}

export function chunkCountOf(diskSize: number, chunkSizeBytes: number): number {
  return Math.ceil(diskSize / chunkSizeBytes);
}

function u64(value: number): Buffer {
  const out = Buffer.alloc(8);
  out.writeBigUInt64BE(BigInt(value));
  return out;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

/**
 * Reads a manifest file, with the checkpoints' changes its journal
 * (`<path>.journal`) holds applied; `not-found` when there is none,
 * `integrity` when it is damaged.
 */
export async function readManifest(path: string): Promise<DiskManifest> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    throw toSyncproxyError(error, { operation: `read manifest ${path}` });
  }
  return applyManifestJournal(path, DiskManifest.decode(bytes, path), baseChecksumOf(bytes));
}

/** Where the engine keeps the manifest of a target between transfers. */
export interface ManifestStore {
  /** The stored manifest, or undefined when there is none yet. */
  load(): Promise<DiskManifest | undefined>;
  save(manifest: DiskManifest): Promise<void>;
  /**
   * Optional: records the changes of an incomplete manifest since this store's last `save` or
   * `saveChanges`, at a cost that follows the changes rather than the disk. The engine calls it
   * for checkpoints after it has saved the whole manifest once in the same transfer; a store
   * without it gets a whole `save` at every checkpoint. `load` returns the manifest with the
   * changes applied.
   */
  saveChanges?(changes: ManifestChanges): Promise<void>;
  /**
   * Optional: the log in which a transfer named `transferId` records what each chunk may hold
   * before it writes the chunk ({@link ChunkIntentLog}), with what earlier runs of the same
   * transfer recorded. A store without it: a resumed incremental proves only the chunks the stopped
   * run did not touch, and the others make it start over in full.
   */
  openIntents?(transferId: string, hashAlgorithm: ChunkHashAlgorithm): Promise<ChunkIntentLog>;
}

/**
 * A manifest in one file, replaced atomically on each save. Checkpoints'
 * changes go to a journal beside it (`<path>.journal`), appended and fsynced,
 * and {@link readManifest} applies them; the next whole save removes it.
 */
export class FileManifestStore implements ManifestStore {
  #journal: ManifestJournalWriter | undefined;

  constructor(readonly path: string) {}

  async load(): Promise<DiskManifest | undefined> {
    try {
      return await readManifest(this.path);
    } catch (error) {
      if (SyncproxyError.hasCode(error, 'not-found')) return undefined;
      throw error;
    }
  }

  async save(manifest: DiskManifest): Promise<void> {
    manifest.updatedAt = new Date().toISOString();
    const encoded = manifest.encode();
    this.#journal = undefined;
    await writeFileAtomic(this.path, encoded);
    // The old journal names the old base's checksum, so a crash before this removal leaves it ignored.
    await rm(journalPathOf(this.path), { force: true });
    if (!manifest.complete) this.#journal = new ManifestJournalWriter(this.path, baseChecksumOf(encoded));
  }

  async saveChanges(changes: ManifestChanges): Promise<void> {
    if (this.#journal === undefined) {
      throw new SyncproxyError(
        `manifest ${this.path}: saveChanges needs a save() of the incomplete manifest first`,
        { code: 'internal', retryable: false },
      );
    }
    await this.#journal.append(changes);
  }

  /** The log at `<path>.intents`. */
  openIntents(transferId: string, hashAlgorithm: ChunkHashAlgorithm): Promise<ChunkIntentLog> {
    return ChunkIntentLog.open(intentsPathOf(this.path), transferId, hashAlgorithm);
  }
}
