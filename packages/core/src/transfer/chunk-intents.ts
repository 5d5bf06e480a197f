import { createHash } from 'node:crypto';
import { type FileHandle, open, readFile, rm } from 'node:fs/promises';
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
  return createHash('sha256').update(record).digest().subarray(0, CHECK_BYTES);
}

function headerOf(transferId: string, hashAlgorithm: ChunkHashAlgorithm): Buffer {
  return Buffer.from(`${MAGIC}${hashAlgorithm} ${transferId}\n`, 'utf8');
}

/** What chunks may hold, by chunk index: the entries recorded for them. */
export type ChunkIntents = ReadonlyMap<number, readonly Uint8Array[]>;

const NONE: ChunkIntents = new Map();

/**
 * The records of `path` when it belongs to `transferId` and its digests are of `hashAlgorithm`;
 * none otherwise (another transfer's, no file, or not this format).
 */
export async function readChunkIntents(
  path: string,
  transferId: string,
  hashAlgorithm: ChunkHashAlgorithm,
): Promise<ChunkIntents> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return NONE;
    throw toSyncproxyError(error, { operation: `read ${path}` });
  }
  const header = headerOf(transferId, hashAlgorithm);
  if (bytes.length < header.length || !bytes.subarray(0, header.length).equals(header)) return NONE;
  const intents = new Map<number, Uint8Array[]>();
  for (let at = header.length; at + RECORD_BYTES <= bytes.length; at += RECORD_BYTES) {
    const body = bytes.subarray(at, at + 6 + ENTRY_BYTES);
    if (!checkOf(body).equals(bytes.subarray(at + 6 + ENTRY_BYTES, at + RECORD_BYTES))) continue;
    const index = body.readUIntBE(0, 6);
    const entry = Uint8Array.from(body.subarray(6));
    const known = intents.get(index);
    if (known === undefined) intents.set(index, [entry]);
    else if (!known.some((e) => Buffer.compare(e, entry) === 0)) known.push(entry);
  }
  return intents;
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
    await this.#tail;
    await this.#handle.close().catch(() => {});
  }

  /** Closes and removes the log: the transfer is complete, and its manifest describes every chunk. */
  async discard(): Promise<void> {
    await this.close();
    await rm(this.path, { force: true });
  }
}
