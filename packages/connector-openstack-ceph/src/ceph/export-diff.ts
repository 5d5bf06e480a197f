import { abortError, SyncproxyError } from '@syncproxy/core';

/**
 * One record of an `rbd export-diff` stream, as {@link parseExportDiff} yields it.
 * A `w` record comes out as one `write` (its range) followed by `data` pieces
 * that cover that range in order, so no record is ever held whole in memory.
 */
export type ExportDiffRecord =
  | { type: 'header'; version: 1 | 2 }
  | { type: 'from-snap'; name: string }
  | { type: 'to-snap'; name: string }
  | { type: 'size'; sizeBytes: number }
  | { type: 'protected'; isProtected: boolean }
  /** A v2 record with a tag this parser does not know, skipped by its length. */
  | { type: 'skipped'; tag: string; length: number }
  | { type: 'write'; offset: number; length: number }
  /** A piece of the preceding `write`; `bytes` is a view of the source's chunk. */
  | { type: 'data'; offset: number; bytes: Uint8Array }
  | { type: 'zero'; offset: number; length: number }
  | { type: 'end' };

export interface ParseExportDiffOptions {
  /** Largest `data` piece yielded. Default 1 MiB. */
  maxPieceBytes?: number;
  /** Longest snapshot name accepted; longer is a protocol error, not a buffer. Default 4096. */
  maxNameBytes?: number;
  signal?: AbortSignal;
}

const BANNER_V1 = 'rbd diff v1\n';
const BANNER_V2 = 'rbd diff v2\n';
const BANNER_BYTES = 12;

/**
 * Parses an `rbd export-diff` stream (format v1, and the v2 diffs found inside
 * `rbd export --export-format 2`) from any async iterable of bytes, such as a
 * child process's stdout. Streaming: memory is bounded by the pieces in flight,
 * whatever the record lengths claim; backpressure reaches the source.
 *
 * Every malformed stream (bad banner, unknown v1 tag, truncation, lengths that
 * disagree, records out of order or beyond the image size, bytes after the end
 * record) ends in a SyncproxyError with code `protocol`; the stream is never
 * reported as complete unless its `e` record was read.
 *
 * Format: ceph/ceph doc/dev/rbd-diff.rst and src/tools/rbd/action/Export.cc
 * (the `p` record of v2 is only in the code).
 */
export async function* parseExportDiff(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  options: ParseExportDiffOptions = {},
): AsyncGenerator<ExportDiffRecord, void, undefined> {
  const maxPiece = Math.max(1, options.maxPieceBytes ?? 1024 * 1024);
  const parser = new ExportDiffParser(new IterableByteQueue(source, options.signal), options);
  try {
    while (true) {
      const record = await parser.next();
      yield record;
      if (record.type === 'end') return;
      if (record.type !== 'write') continue;
      while (parser.dataLeft > 0) {
        const offset = parser.dataOffset;
        yield { type: 'data', offset, bytes: await parser.dataView(maxPiece) };
      }
    }
  } finally {
    await parser.close();
  }
}

/** A record of the stream without its data: what {@link ExportDiffParser.next} returns. */
export type ExportDiffHeader = Exclude<ExportDiffRecord, { type: 'data' }>;

/**
 * The pull side of {@link parseExportDiff}: `next()` returns the next record
 * (never `data`); after a `write`, its bytes are taken with {@link readData}
 * (into the caller's buffer) or {@link dataView}, or skipped by the next
 * `next()`. Same checks, same errors as parseExportDiff; `write` and `zero`
 * records of length 0 are left out.
 */
export class ExportDiffParser {
  readonly #input: ByteQueue;
  readonly #maxName: number;
  #version: 1 | 2 | undefined;
  #sizeBytes: number | undefined;
  /** Everything below this offset has been described; records must ascend. */
  #described = 0;
  #ended = false;
  /** Bytes of the current `write` record not taken yet, and the image offset of the first. */
  dataLeft = 0;
  dataOffset = 0;

  constructor(input: ByteQueue, options: Pick<ParseExportDiffOptions, 'maxNameBytes'> = {}) {
    this.#input = input;
    this.#maxName = options.maxNameBytes ?? 4096;
  }

  /** Copies the next `length` data bytes of the current `write` into `target` at `at`. */
  async readData(target: Uint8Array, at: number, length: number): Promise<void> {
    this.#assertData(length);
    await this.#input.readInto(target, at, length, "the data of a 'w' record", this.dataLeft);
    this.#took(length);
  }

  /** Between 1 and `max` next data bytes of the current `write`, as a view valid until the next call. */
  async dataView(max: number): Promise<Uint8Array> {
    this.#assertData(1);
    const bytes = await this.#input.takeUpTo(
      Math.min(max, this.dataLeft),
      "the data of a 'w' record",
      this.dataLeft,
    );
    this.#took(bytes.byteLength);
    return bytes;
  }

  /** Passes over the next `length` data bytes of the current `write`. */
  async skipData(length: number): Promise<void> {
    this.#assertData(length);
    await this.#input.skip(length, "the data of a 'w' record", this.dataLeft);
    this.#took(length);
  }

  #assertData(length: number): void {
    if (!Number.isSafeInteger(length) || length <= 0 || length > this.dataLeft) {
      throw new SyncproxyError(`rbd export-diff: ${length} data bytes asked, ${this.dataLeft} left`, {
        code: 'internal',
        retryable: false,
      });
    }
  }

  #took(length: number): void {
    this.dataLeft -= length;
    this.dataOffset += length;
  }

  async next(): Promise<ExportDiffHeader> {
    const input = this.#input;
    if (this.#ended)
      throw new SyncproxyError('rbd export-diff: read past the end record', { code: 'internal' });
    if (this.dataLeft > 0) await this.skipData(this.dataLeft);
    if (this.#version === undefined) {
      const banner = await input.take(BANNER_BYTES, 'the banner');
      const text = Buffer.from(banner.buffer, banner.byteOffset, banner.byteLength).toString('latin1');
      if (text === BANNER_V1) this.#version = 1;
      else if (text === BANNER_V2) this.#version = 2;
      else throw protocolError(`not an rbd diff stream (banner ${JSON.stringify(text)})`, 0);
      return { type: 'header', version: this.#version };
    }
    const version = this.#version;
    while (true) {
      const at = input.position;
      const tag = String.fromCharCode((await input.take(1, 'a record tag'))[0]!);
      if (tag === 'e') {
        if (await input.hasMore()) {
          throw protocolError('bytes follow the end record', input.position);
        }
        this.#ended = true;
        return { type: 'end' };
      }
      // v2 frames every record but `e` with its payload length.
      const payload = version === 2 ? await input.u64(`the length of a '${tag}' record`) : undefined;
      const expect = (length: number): void => {
        if (payload !== undefined && payload !== length) {
          throw protocolError(
            `'${tag}' record claims ${payload} payload bytes, its fields need ${length}`,
            at,
          );
        }
      };
      switch (tag) {
        case 'f':
        case 't': {
          const nameLength = await input.u32(`the name length of a '${tag}' record`);
          if (nameLength > this.#maxName) {
            throw protocolError(
              `'${tag}' record names a snapshot of ${nameLength} bytes (limit ${this.#maxName})`,
              at,
            );
          }
          expect(4 + nameLength);
          const name = Buffer.from(await input.take(nameLength, `the name of a '${tag}' record`)).toString(
            'utf8',
          );
          return tag === 'f' ? { type: 'from-snap', name } : { type: 'to-snap', name };
        }
        case 's': {
          expect(8);
          const sizeBytes = await input.u64("the image size of an 's' record");
          if (this.#described > sizeBytes) {
            throw protocolError(
              `image size ${sizeBytes} is below data already described up to ${this.#described}`,
              at,
            );
          }
          this.#sizeBytes = sizeBytes;
          return { type: 'size', sizeBytes };
        }
        case 'p': {
          if (version === 1) throw protocolError("unknown record tag 'p' in a v1 stream", at);
          expect(1);
          const flag = (await input.take(1, "the flag of a 'p' record"))[0]!;
          return { type: 'protected', isProtected: flag !== 0 };
        }
        case 'w':
        case 'z': {
          const offset = await input.u64(`the offset of a '${tag}' record`);
          const length = await input.u64(`the length of a '${tag}' record`);
          if (tag === 'z') expect(16);
          else if (payload !== undefined && payload - 16 !== length) {
            throw protocolError(`'w' record claims ${payload} payload bytes for ${length} data bytes`, at);
          }
          if (offset + length > Number.MAX_SAFE_INTEGER) {
            throw protocolError(`'${tag}' record range ${offset}+${length} is out of range`, at);
          }
          if (offset < this.#described) {
            throw protocolError(
              `'${tag}' record at offset ${offset} overlaps or precedes data already described up to ${this.#described}`,
              at,
            );
          }
          if (this.#sizeBytes !== undefined && offset + length > this.#sizeBytes) {
            throw protocolError(
              `'${tag}' record ${offset}+${length} ends beyond the image size ${this.#sizeBytes}`,
              at,
            );
          }
          this.#described = offset + length;
          if (length === 0) continue;
          if (tag === 'z') return { type: 'zero', offset, length };
          this.dataLeft = length;
          this.dataOffset = offset;
          return { type: 'write', offset, length };
        }
        default: {
          if (payload === undefined) {
            throw protocolError(`unknown record tag ${JSON.stringify(tag)} in a v1 stream`, at);
          }
          await input.skip(payload, `the payload of an unknown '${tag}' record`);
          return { type: 'skipped', tag, length: payload };
        }
      }
    }
  }

  close(): Promise<void> {
    return this.#input.close();
  }
}

function protocolError(what: string, position: number): SyncproxyError {
  return new SyncproxyError(`rbd export-diff stream: ${what} (at byte ${position})`, {
    code: 'protocol',
    retryable: false,
    details: { position },
  });
}

/**
 * The unread bytes of a byte source, pulled only when needed. Views it returns
 * are valid until its next call (a socket source reuses its buffer).
 */
export abstract class ByteQueue {
  protected chunk: Uint8Array = new Uint8Array(0);
  protected at = 0;
  protected ended = false;
  /** Bytes consumed so far: positions in error messages. */
  position = 0;

  constructor(protected readonly signal: AbortSignal | undefined) {}

  /** Replaces the consumed chunk with the next bytes of the source; false at its end. */
  protected abstract nextChunk(): Promise<Uint8Array | undefined>;

  /**
   * Reads up to `length` bytes straight into `target` at `at`, bypassing the
   * chunk; 0 at the end of the source. A source that cannot, or that holds bytes
   * read already, returns undefined, and the bytes go through the chunk.
   */
  protected readDirect(_target: Uint8Array, _at: number, _length: number): Promise<number> | undefined {
    return undefined;
  }

  /** Smallest read worth sending straight into a caller's buffer instead of through the chunk. */
  protected readonly directMinBytes: number = Number.POSITIVE_INFINITY;

  /** Frees the source; `exhausted`: it was read to its end. Called once or more. */
  protected abstract release(exhausted: boolean): Promise<void>;

  private get available(): number {
    return this.chunk.byteLength - this.at;
  }

  private checkAborted(): void {
    if (this.signal?.aborted) throw abortError(this.signal, 'parsing an rbd export-diff stream');
  }

  /** Makes at least one byte available; false at the end of the source. */
  private async pull(): Promise<boolean> {
    while (this.available === 0) {
      if (this.ended) return false;
      this.checkAborted();
      const next = await this.nextChunk();
      if (next === undefined) {
        this.ended = true;
        return false;
      }
      this.chunk = next;
      this.at = 0;
    }
    return true;
  }

  async hasMore(): Promise<boolean> {
    return this.pull();
  }

  /** Exactly `n` bytes (a copy when they span chunks); only for small fields. */
  async take(n: number, what: string): Promise<Uint8Array> {
    if (!(await this.pull())) throw this.truncated(what, n);
    if (this.available >= n) {
      const view = this.chunk.subarray(this.at, this.at + n);
      this.at += n;
      this.position += n;
      return view;
    }
    const out = new Uint8Array(n);
    await this.readInto(out, 0, n, what);
    return out;
  }

  /** Between 1 and `max` bytes, as a view of the current chunk. */
  async takeUpTo(max: number, what: string, missing = max): Promise<Uint8Array> {
    if (!(await this.pull())) throw this.truncated(what, missing);
    const count = Math.min(max, this.available);
    const view = this.chunk.subarray(this.at, this.at + count);
    this.at += count;
    this.position += count;
    return view;
  }

  /** Exactly `n` bytes into `target` at `at`: what the chunk holds, then large reads straight from the source. */
  async readInto(target: Uint8Array, at: number, n: number, what: string, missing = n): Promise<void> {
    let filled = 0;
    while (filled < n) {
      const left = n - filled;
      if (this.available === 0 && left >= this.directMinBytes && !this.ended) {
        this.checkAborted();
        const count = await this.readDirect(target, at + filled, left);
        if (count === 0) this.ended = true;
        if (count !== undefined && count > 0) {
          this.position += count;
          filled += count;
          continue;
        }
      }
      if (!(await this.pull())) throw this.truncated(what, missing - filled);
      const count = Math.min(left, this.available);
      target.set(this.chunk.subarray(this.at, this.at + count), at + filled);
      this.at += count;
      this.position += count;
      filled += count;
    }
  }

  async skip(n: number, what: string, missing = n): Promise<void> {
    let left = n;
    while (left > 0) {
      if (!(await this.pull())) throw this.truncated(what, missing - (n - left));
      const count = Math.min(left, this.available);
      this.at += count;
      this.position += count;
      left -= count;
    }
  }

  async u32(what: string): Promise<number> {
    const b = await this.take(4, what);
    return (b[0]! | (b[1]! << 8) | (b[2]! << 16)) + b[3]! * 0x1000000;
  }

  /** A little-endian 64-bit count; above 2^53 - 1 it cannot be an offset or a length here. */
  async u64(what: string): Promise<number> {
    const at = this.position;
    const b = await this.take(8, what);
    const low = (b[0]! | (b[1]! << 8) | (b[2]! << 16)) + b[3]! * 0x1000000;
    const high = (b[4]! | (b[5]! << 8) | (b[6]! << 16)) + b[7]! * 0x1000000;
    if (high > 0x1fffff) throw protocolError(`${what} exceeds 2^53 - 1`, at);
    return high * 0x100000000 + low;
  }

  private truncated(what: string, missing: number): SyncproxyError {
    return protocolError(`truncated in ${what} (${missing} more bytes expected)`, this.position);
  }

  /** Ends the source early (or after its end: then only its resources go). Idempotent. */
  async close(): Promise<void> {
    const exhausted = this.ended;
    this.ended = true;
    this.chunk = new Uint8Array(0);
    this.at = 0;
    await this.release(exhausted);
  }
}

/** A {@link ByteQueue} over an async iterable of chunks (a stream's data events). */
export class IterableByteQueue extends ByteQueue {
  private readonly iterator: AsyncIterator<Uint8Array>;

  constructor(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, signal: AbortSignal | undefined) {
    super(signal);
    this.iterator =
      Symbol.asyncIterator in source ? source[Symbol.asyncIterator]() : toAsync(source[Symbol.iterator]());
  }

  protected async nextChunk(): Promise<Uint8Array | undefined> {
    const next = await this.iterator.next();
    return next.done ? undefined : next.value;
  }

  protected async release(exhausted: boolean): Promise<void> {
    if (!exhausted) await this.iterator.return?.();
  }
}

function toAsync(iterator: Iterator<Uint8Array>): AsyncIterator<Uint8Array> {
  return {
    next: async () => iterator.next(),
    return: async () => iterator.return?.() ?? { done: true, value: undefined },
  };
}
