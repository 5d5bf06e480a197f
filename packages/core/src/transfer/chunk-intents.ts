import { hash } from 'node:crypto';
import { type FileHandle, open, rm } from 'node:fs/promises';
import { SyncproxyError } from '../errors/syncproxy-error.js';
import { toSyncproxyError } from '../errors/to-syncproxy-error.js';
import { type ChunkHashAlgorithm, isChunkHashAlgorithm } from './chunk-hash-algorithm.js';

/**
 * File form of `<manifest>.intents`: the magic line, then one header line `<algorithm> <transferId>`,
 * then records of `u48 index`, 32 bytes (a manifest entry: a digest, the zero marker, or the unknown
 * marker, which matches nothing and says only that the chunk was touched) and the
 * first 8 bytes of the SHA-256 of both. A record is whole or ignored: a crash mid-append leaves a
 * torn tail, and a damaged record proves nothing.
 */
const MAGIC = 'SYNCPROXY-CHUNK-INTENTS/1\n';
const ENTRY_BYTES = 32;
const CHECK_BYTES = 8;
const RECORD_BYTES = 6 + ENTRY_BYTES + CHECK_BYTES;

export function intentsPathOf(manifestPath: string): string {
  return `${manifestPath}.intents`;
}

function checkOf(record: Uint8Array): Buffer {
  return hash('sha256', record, 'buffer').subarray(0, CHECK_BYTES);
}

function headerOf(transferId: string, hashAlgorithm: ChunkHashAlgorithm): Buffer {
  return Buffer.from(`${MAGIC}${hashAlgorithm} ${transferId}\n`, 'utf8');
}

/**
 * What chunks may hold, by chunk index: the entries recorded for them, in the order they were
 * recorded, each once. Iteration runs in ascending chunk order.
 */
export interface ChunkIntents {
  /** Chunks with a record. */
  readonly size: number;
  has(index: number): boolean;
  get(index: number): readonly Uint8Array[] | undefined;
  keys(): IterableIterator<number>;
  [Symbol.iterator](): IterableIterator<[number, readonly Uint8Array[]]>;
}

const NONE: ChunkIntents = new Map<number, readonly Uint8Array[]>();

/** Records read per file read: about 1 MiB. */
const READ_RECORDS = 22_795;

/**
 * The records of `path` when it belongs to `transferId` and its digests are of `hashAlgorithm`;
 * none otherwise (another transfer's, no file, or not this format). The file is read in pieces of
 * about 1 MiB, and what it holds is kept compact (32 bytes an entry, 12 a chunk): a resume of an
 * incremental that touched every chunk of a 1 TiB disk reads a million records.
 */
export async function readChunkIntents(
  path: string,
  transferId: string,
  hashAlgorithm: ChunkHashAlgorithm,
): Promise<ChunkIntents> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return NONE;
    throw toSyncproxyError(error, { operation: `read ${path}` });
  }
  try {
    const header = headerOf(transferId, hashAlgorithm);
    const head = Buffer.alloc(header.length);
    const { bytesRead: headBytes } = await handle.read(head, 0, header.length, 0);
    if (headBytes < header.length || !head.equals(header)) return NONE;
    const { size } = await handle.stat();
    const records = new RecordList(Math.floor((size - header.length) / RECORD_BYTES));
    const buffer = Buffer.allocUnsafe(READ_RECORDS * RECORD_BYTES);
    for (let position = header.length; ; ) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
      const whole = Math.floor(bytesRead / RECORD_BYTES);
      // Fewer bytes than a record: the end, or a torn tail.
      if (whole === 0) break;
      for (let at = 0; at < whole * RECORD_BYTES; at += RECORD_BYTES) {
        const body = buffer.subarray(at, at + 6 + ENTRY_BYTES);
        if (checkOf(body).equals(buffer.subarray(at + 6 + ENTRY_BYTES, at + RECORD_BYTES)))
          records.push(body);
      }
      position += whole * RECORD_BYTES;
    }
    return records.intents();
  } catch (error) {
    throw toSyncproxyError(error, { operation: `read ${path}` });
  } finally {
    await handle.close().catch(() => {});
  }
}

/** Records as read, in file order: chunk indices and their 32-byte entries. */
class RecordList {
  #count = 0;
  readonly #indices: Float64Array;
  readonly #entries: Uint8Array;

  /** `capacity`: the whole records the file holds (a record that grew the file since is not read). */
  constructor(capacity: number) {
    this.#indices = new Float64Array(capacity);
    this.#entries = new Uint8Array(capacity * ENTRY_BYTES);
  }

  /** Appends a record's body (u48 index, entry). */
  push(body: Buffer): void {
    if (this.#count === this.#indices.length) return;
    this.#indices[this.#count] = body.readUIntBE(0, 6);
    this.#entries.set(body.subarray(6, 6 + ENTRY_BYTES), this.#count * ENTRY_BYTES);
    this.#count++;
  }

  /** The records by chunk, in ascending chunk order, each chunk's entries in file order and once. */
  intents(): ChunkIntents {
    const count = this.#count;
    if (count === 0) return NONE;
    const indices = this.#indices;
    const entries = this.#entries;
    // Runs append their records in about chunk order: the sort mostly finds runs already in order.
    const order = new Uint32Array(count);
    for (let i = 0; i < count; i++) order[i] = i;
    order.sort((a, b) => indices[a]! - indices[b]! || a - b);
    const chunks: number[] = [];
    const starts: number[] = [];
    const kept = new Uint8Array(count * ENTRY_BYTES);
    let keptCount = 0;
    for (const record of order) {
      const index = indices[record]!;
      const entry = entries.subarray(record * ENTRY_BYTES, (record + 1) * ENTRY_BYTES);
      if (chunks[chunks.length - 1] !== index) {
        chunks.push(index);
        starts.push(keptCount);
      } else if (holdsEntry(kept, starts[starts.length - 1]!, keptCount, entry)) {
        continue;
      }
      kept.set(entry, keptCount * ENTRY_BYTES);
      keptCount++;
    }
    starts.push(keptCount);
    return new CompactChunkIntents(
      Float64Array.from(chunks),
      Uint32Array.from(starts),
      // Records repeated (a chunk noted twice with one entry) leave room at the end: given back.
      keptCount === count ? kept : kept.slice(0, keptCount * ENTRY_BYTES),
    );
  }
}

/** Whether entries `from` to `to` of `slab` include `entry`. */
function holdsEntry(slab: Uint8Array, from: number, to: number, entry: Uint8Array): boolean {
  for (let i = from; i < to; i++) {
    if (Buffer.compare(slab.subarray(i * ENTRY_BYTES, (i + 1) * ENTRY_BYTES), entry) === 0) return true;
  }
  return false;
}

/** {@link ChunkIntents} in three typed arrays: sorted chunk indices, where each one's entries start, and the entries. */
class CompactChunkIntents implements ChunkIntents {
  readonly #chunks: Float64Array;
  /** Entry numbers: chunk `i`'s entries are `#starts[i]` to `#starts[i + 1]`. */
  readonly #starts: Uint32Array;
  readonly #entries: Uint8Array;

  constructor(chunks: Float64Array, starts: Uint32Array, entries: Uint8Array) {
    this.#chunks = chunks;
    this.#starts = starts;
    this.#entries = entries;
  }

  get size(): number {
    return this.#chunks.length;
  }

  has(index: number): boolean {
    return this.#find(index) >= 0;
  }

  get(index: number): readonly Uint8Array[] | undefined {
    const at = this.#find(index);
    return at < 0 ? undefined : this.#entriesAt(at);
  }

  *keys(): IterableIterator<number> {
    yield* this.#chunks;
  }

  *[Symbol.iterator](): IterableIterator<[number, readonly Uint8Array[]]> {
    for (let at = 0; at < this.#chunks.length; at++) yield [this.#chunks[at]!, this.#entriesAt(at)];
  }

  #entriesAt(at: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (let i = this.#starts[at]!; i < this.#starts[at + 1]!; i++)
      out.push(this.#entries.subarray(i * ENTRY_BYTES, (i + 1) * ENTRY_BYTES));
    return out;
  }

  /** The position of `index` in `#chunks`, or -1. */
  #find(index: number): number {
    let lo = 0;
    let hi = this.#chunks.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#chunks[mid]! < index) lo = mid + 1;
      else hi = mid;
    }
    return lo < this.#chunks.length && this.#chunks[lo] === index ? lo : -1;
  }
}

/**
 * What a transfer may leave in each chunk it begins writing, recorded before the chunk's first
 * write: its manifest entry before the transfer, and, for a chunk written in part, the entry it is
 * written to. A chunk the transfer began is whole in either state, or torn by a crash; so a later
 * run of the same transfer (the same snapshots: the same changes) that finds a chunk matching any
 * recorded entry knows the bytes around its changes are the base's. Without these, the journal
 * cannot tell a chunk the stopped run wrote after its last checkpoint from one changed behind its
 * back, and a resumed incremental had to prove nothing and start over in full.
 *
 * Appends go to the page cache, not to disk: a process killed keeps them. Where power is lost
 * first, a chunk may be written and its record gone; the next run writes it again (it is among the
 * transfer's changes, as a resume already relies on) and, finding its bytes match no entry, proves
 * nothing of it: its entry becomes unknown, or the transfer rejects with `integrity`.
 */
export class ChunkIntentLog {
  readonly path: string;
  /** The records of earlier runs of this transfer: what a chunk may hold now. */
  readonly earlier: ChunkIntents;
  #handle: FileHandle;
  #tail: Promise<void> = Promise.resolve();
  #batch: { records: Buffer[]; written: Promise<void> } | undefined;
  #failure: SyncproxyError | undefined;
  /** Where the next record goes. */
  #position: number;

  private constructor(path: string, handle: FileHandle, earlier: ChunkIntents, position: number) {
    this.path = path;
    this.#handle = handle;
    this.earlier = earlier;
    this.#position = position;
  }

  /**
   * Opens the log of `transferId` at `path`: the records earlier runs of it left are kept and
   * appended to; a log of another transfer (or of another hash algorithm) is replaced.
   */
  static async open(
    path: string,
    transferId: string,
    hashAlgorithm: ChunkHashAlgorithm,
  ): Promise<ChunkIntentLog> {
    if (!isChunkHashAlgorithm(hashAlgorithm) || transferId.includes('\n')) {
      throw new SyncproxyError(`chunk intents ${path}: invalid transfer id or hash algorithm`, {
        code: 'internal',
        retryable: false,
      });
    }
    const earlier = await readChunkIntents(path, transferId, hashAlgorithm);
    try {
      const header = headerOf(transferId, hashAlgorithm);
      if (earlier.size === 0) {
        // No record of this transfer: a new file.
        const handle = await open(path, 'w');
        await handle.write(header, 0, header.length, 0);
        return new ChunkIntentLog(path, handle, earlier, header.length);
      }
      const handle = await open(path, 'r+');
      // Appends go after the last whole record, over a torn tail if any.
      const { size } = await handle.stat();
      const whole = header.length + Math.floor((size - header.length) / RECORD_BYTES) * RECORD_BYTES;
      if (whole !== size) await handle.truncate(whole);
      return new ChunkIntentLog(path, handle, earlier, whole);
    } catch (error) {
      throw toSyncproxyError(error, { operation: `open ${path}` });
    }
  }

  /**
   * Records that chunk `index` may hold `entry` (32 stored bytes of a manifest entry). Resolves
   * once the record is written (records of one turn go in one write).
   */
  note(index: number, entry: Uint8Array): Promise<void> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    const record = Buffer.allocUnsafe(RECORD_BYTES);
    record.writeUIntBE(index, 0, 6);
    record.set(entry, 6);
    checkOf(record.subarray(0, 6 + ENTRY_BYTES)).copy(record, 6 + ENTRY_BYTES);
    if (this.#batch === undefined) {
      const records: Buffer[] = [];
      const written = Promise.resolve().then(() => {
        this.#batch = undefined;
        return this.#append(Buffer.concat(records));
      });
      written.catch(() => {});
      this.#batch = { records, written };
    }
    this.#batch.records.push(record);
    return this.#batch.written;
  }

  #append(bytes: Buffer): Promise<void> {
    const write = this.#tail.then(async () => {
      if (this.#failure !== undefined) throw this.#failure;
      try {
        let done = 0;
        while (done < bytes.length) {
          const { bytesWritten } = await this.#handle.write(
            bytes,
            done,
            bytes.length - done,
            this.#position + done,
          );
          done += bytesWritten;
        }
        this.#position += bytes.length;
      } catch (error) {
        this.#failure = toSyncproxyError(error, { operation: `append to ${this.path}` });
        throw this.#failure;
      }
    });
    this.#tail = write.catch(() => {});
    return write;
  }

  /** Closes the log, keeping it for a later run of the same transfer. */
  async close(): Promise<void> {
    // Records noted in this turn are written first (their batch joins the tail in a microtask).
    await this.#batch?.written.catch(() => {});
    await this.#tail;
    await this.#handle.close().catch(() => {});
  }

  /** Closes and removes the log: the transfer is complete, and its manifest describes every chunk. */
  async discard(): Promise<void> {
    await this.close();
    await rm(this.path, { force: true });
  }
}
