import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../atomic-file.js';
import { SyncproxyError } from '../errors/syncproxy-error.js';
import { toSyncproxyError } from '../errors/to-syncproxy-error.js';

/** Bytes of one entry: a SHA-256. */
export const MANIFEST_ENTRY_BYTES = 32;
const MAGIC = 'SYNCPROXY-MANIFEST/1\n';
const ZERO_ENTRY = new Uint8Array(MANIFEST_ENTRY_BYTES);
const UNKNOWN_ENTRY = new Uint8Array(MANIFEST_ENTRY_BYTES).fill(0xff);

/**
 * What the manifest knows of one chunk: its SHA-256, that it reads as all
 * zeroes, or nothing (never written by a transfer that could hash it).
 */
export type ManifestEntry = { state: 'hash'; sha256: string } | { state: 'zero' } | { state: 'unknown' };

export interface DiskManifestInit {
  diskSize: number;
  chunkSizeBytes: number;
  /** What every entry starts as (default `unknown`). */
  fill?: 'unknown' | 'zero';
  transferId?: string;
}

/**
 * SHA-256 per chunk of a disk image, as the target holds it: chunk `i` is
 * bytes `[i * chunkSizeBytes, min((i + 1) * chunkSizeBytes, diskSize))`.
 *
 * Entries are 32 bytes. Two values are reserved: 32 zero bytes mean "reads as
 * all zeroes" (no hash is computed for zero chunks, so sparse disks cost
 * nothing to describe) and 32 0xff bytes mean "unknown". A real SHA-256
 * equal to either has probability 2^-256.
 *
 * Memory: 32 bytes per chunk, 8 MiB for a 1 TiB disk at 4 MiB chunks.
 */
export class DiskManifest {
  readonly diskSize: number;
  readonly chunkSizeBytes: number;
  readonly chunkCount: number;
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
  /** ISO-8601 time of the last save. */
  updatedAt: string;
  readonly entries: Uint8Array;

  private constructor(diskSize: number, chunkSizeBytes: number, entries: Uint8Array) {
    this.diskSize = diskSize;
    this.chunkSizeBytes = chunkSizeBytes;
    this.chunkCount = chunkCountOf(diskSize, chunkSizeBytes);
    this.entries = entries;
    this.complete = false;
    this.pendingFrom = 0;
    this.transferId = undefined;
    this.updatedAt = new Date(0).toISOString();
  }

  static create(init: DiskManifestInit): DiskManifest {
    if (!Number.isSafeInteger(init.diskSize) || init.diskSize < 0) {
      throw new SyncproxyError(`manifest: invalid disk size ${init.diskSize}`, { code: 'config' });
    }
    if (!Number.isSafeInteger(init.chunkSizeBytes) || init.chunkSizeBytes <= 0) {
      throw new SyncproxyError(`manifest: invalid chunk size ${init.chunkSizeBytes}`, { code: 'config' });
    }
    const count = chunkCountOf(init.diskSize, init.chunkSizeBytes);
    const entries = new Uint8Array(count * MANIFEST_ENTRY_BYTES);
    if ((init.fill ?? 'unknown') === 'unknown') entries.fill(0xff);
    const manifest = new DiskManifest(init.diskSize, init.chunkSizeBytes, entries);
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
    return { state: 'hash', sha256: Buffer.from(raw).toString('hex') };
  }

  /** The 32 stored bytes of chunk `index` (a view, not a copy). */
  raw(index: number): Uint8Array {
    this.check(index);
    return this.entries.subarray(index * MANIFEST_ENTRY_BYTES, (index + 1) * MANIFEST_ENTRY_BYTES);
  }

  /** Stores `sha256` (32 bytes), or the zero marker when `sha256` is `'zero'`. */
  set(index: number, sha256: Uint8Array | 'zero' | 'unknown'): void {
    const value = sha256 === 'zero' ? ZERO_ENTRY : sha256 === 'unknown' ? UNKNOWN_ENTRY : sha256;
    if (value.length !== MANIFEST_ENTRY_BYTES) {
      throw new SyncproxyError(`manifest: a SHA-256 is 32 bytes (got ${value.length})`, { code: 'internal' });
    }
    this.raw(index).set(value);
  }

  /** True when entry `index` is known and equals `sha256` (or the zero marker). */
  matches(index: number, sha256: Uint8Array | 'zero'): boolean {
    const raw = this.raw(index);
    if (equalBytes(raw, UNKNOWN_ENTRY)) return false;
    return equalBytes(raw, sha256 === 'zero' ? ZERO_ENTRY : sha256);
  }

  /** True when `other` describes the same disk size and chunk size. */
  sameGeometry(other: { diskSize: number; chunkSizeBytes: number }): boolean {
    return other.diskSize === this.diskSize && other.chunkSizeBytes === this.chunkSizeBytes;
  }

  clone(): DiskManifest {
    const copy = new DiskManifest(this.diskSize, this.chunkSizeBytes, this.entries.slice());
    copy.complete = this.complete;
    copy.pendingFrom = this.pendingFrom;
    copy.transferId = this.transferId;
    copy.updatedAt = this.updatedAt;
    return copy;
  }

  /**
   * SHA-256 (hex) of the geometry and every entry: two images with equal
   * digests and no unknown entry are equal chunk by chunk. Bookkeeping
   * (`complete`, `transferId`, `updatedAt`) is not part of it.
   */
  digest(): string {
    const hash = createHash('sha256');
    hash.update(MAGIC);
    hash.update(u64(this.diskSize));
    hash.update(u64(this.chunkSizeBytes));
    hash.update(this.entries);
    return hash.digest('hex');
  }

  /** Entries still `unknown`. */
  unknownCount(): number {
    let count = 0;
    for (let i = 0; i < this.chunkCount; i++) if (equalBytes(this.raw(i), UNKNOWN_ENTRY)) count++;
    return count;
  }

  /** The file form; see `docs/transfer.md`. */
  encode(): Uint8Array {
    const header = JSON.stringify({
      diskSize: this.diskSize,
      chunkSizeBytes: this.chunkSizeBytes,
      chunkCount: this.chunkCount,
      complete: this.complete,
      pendingFrom: this.complete ? this.chunkCount : this.pendingFrom,
      transferId: this.transferId ?? null,
      updatedAt: this.updatedAt,
    });
    const head = Buffer.from(`${MAGIC}${header}\n`, 'utf8');
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
    if (buffer.subarray(0, MAGIC.length).toString('utf8') !== MAGIC) throw bad('wrong magic line');
    const newline = buffer.indexOf(0x0a, MAGIC.length);
    if (newline === -1) throw bad('no header line');
    let header: {
      diskSize?: unknown;
      chunkSizeBytes?: unknown;
      chunkCount?: unknown;
      complete?: unknown;
      pendingFrom?: unknown;
      transferId?: unknown;
      updatedAt?: unknown;
    };
    try {
      header = JSON.parse(buffer.subarray(MAGIC.length, newline).toString('utf8'));
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
    );
    manifest.complete = header.complete === true;
    manifest.pendingFrom = manifest.complete
      ? manifest.chunkCount
      : Number.isSafeInteger(header.pendingFrom)
        ? Math.min(header.pendingFrom as number, manifest.chunkCount)
        : 0;
    manifest.transferId = typeof header.transferId === 'string' ? header.transferId : undefined;
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

/** Reads a manifest file; `not-found` when there is none, `integrity` when it is damaged. */
export async function readManifest(path: string): Promise<DiskManifest> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    throw toSyncproxyError(error, { operation: `read manifest ${path}` });
  }
  return DiskManifest.decode(bytes, path);
}

/** Where the engine keeps the manifest of a target between transfers. */
export interface ManifestStore {
  /** The stored manifest, or undefined when there is none yet. */
  load(): Promise<DiskManifest | undefined>;
  save(manifest: DiskManifest): Promise<void>;
}

/** A manifest in one file, replaced atomically on each save. */
export class FileManifestStore implements ManifestStore {
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
    await writeFileAtomic(this.path, manifest.encode());
  }
}
