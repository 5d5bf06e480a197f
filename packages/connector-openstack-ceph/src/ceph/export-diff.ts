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
  const maxName = options.maxNameBytes ?? 4096;
  const input = new ByteQueue(source, options.signal);
  try {
    const banner = await input.take(BANNER_BYTES, 'the banner');
    const text = Buffer.from(banner.buffer, banner.byteOffset, banner.byteLength).toString('latin1');
    let version: 1 | 2;
    if (text === BANNER_V1) version = 1;
    else if (text === BANNER_V2) version = 2;
    else throw protocolError(`not an rbd diff stream (banner ${JSON.stringify(text)})`, 0);
    yield { type: 'header', version };

    let sizeBytes: number | undefined;
    // Everything below this offset has been described; records must ascend.
    let described = 0;
    while (true) {
      const at = input.position;
      const tag = String.fromCharCode((await input.take(1, 'a record tag'))[0]!);
      if (tag === 'e') {
        if (await input.hasMore()) {
          throw protocolError('bytes follow the end record', input.position);
        }
        yield { type: 'end' };
        return;
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
          if (nameLength > maxName) {
            throw protocolError(
              `'${tag}' record names a snapshot of ${nameLength} bytes (limit ${maxName})`,
              at,
            );
          }
          expect(4 + nameLength);
          const name = Buffer.from(await input.take(nameLength, `the name of a '${tag}' record`)).toString(
            'utf8',
          );
          yield tag === 'f' ? { type: 'from-snap', name } : { type: 'to-snap', name };
          break;
        }
        case 's': {
          expect(8);
          sizeBytes = await input.u64("the image size of an 's' record");
          if (described > sizeBytes) {
            throw protocolError(
              `image size ${sizeBytes} is below data already described up to ${described}`,
              at,
            );
          }
          yield { type: 'size', sizeBytes };
          break;
        }
        case 'p': {
          if (version === 1) throw protocolError("unknown record tag 'p' in a v1 stream", at);
          expect(1);
          const flag = (await input.take(1, "the flag of a 'p' record"))[0]!;
          yield { type: 'protected', isProtected: flag !== 0 };
          break;
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
          if (offset < described) {
            throw protocolError(
              `'${tag}' record at offset ${offset} overlaps or precedes data already described up to ${described}`,
              at,
            );
          }
          if (sizeBytes !== undefined && offset + length > sizeBytes) {
            throw protocolError(
              `'${tag}' record ${offset}+${length} ends beyond the image size ${sizeBytes}`,
              at,
            );
          }
          described = offset + length;
          if (tag === 'z') {
            if (length > 0) yield { type: 'zero', offset, length };
            break;
          }
          if (length > 0) yield { type: 'write', offset, length };
          let done = 0;
          while (done < length) {
            const bytes = await input.takeUpTo(
              Math.min(maxPiece, length - done),
              "the data of a 'w' record",
              length - done,
            );
            yield { type: 'data', offset: offset + done, bytes };
            done += bytes.byteLength;
          }
          break;
        }
        default: {
          if (payload === undefined) {
            throw protocolError(`unknown record tag ${JSON.stringify(tag)} in a v1 stream`, at);
          }
          await input.skip(payload, `the payload of an unknown '${tag}' record`);
          yield { type: 'skipped', tag, length: payload };
        }
      }
    }
  } finally {
    await input.close();
  }
}

function protocolError(what: string, position: number): SyncproxyError {
  return new SyncproxyError(`rbd export-diff stream: ${what} (at byte ${position})`, {
    code: 'protocol',
    retryable: false,
    details: { position },
  });
}

/** The unread bytes of an async byte source, pulled only when needed. */
class ByteQueue {
  private readonly iterator: AsyncIterator<Uint8Array>;
  private chunk: Uint8Array = new Uint8Array(0);
  private at = 0;
  private ended = false;
  /** Bytes consumed so far: positions in error messages. */
  position = 0;

  constructor(
    source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    private readonly signal: AbortSignal | undefined,
  ) {
    this.iterator =
      Symbol.asyncIterator in source ? source[Symbol.asyncIterator]() : toAsync(source[Symbol.iterator]());
  }

  private get available(): number {
    return this.chunk.byteLength - this.at;
  }

  /** Makes at least one byte available; false at the end of the source. */
  private async pull(): Promise<boolean> {
    while (this.available === 0) {
      if (this.ended) return false;
      if (this.signal?.aborted) throw abortError(this.signal, 'parsing an rbd export-diff stream');
      const next = await this.iterator.next();
      if (next.done) {
        this.ended = true;
        return false;
      }
      this.chunk = next.value;
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
    let filled = 0;
    while (filled < n) {
      if (!(await this.pull())) throw this.truncated(what, n - filled);
      const count = Math.min(n - filled, this.available);
      out.set(this.chunk.subarray(this.at, this.at + count), filled);
      this.at += count;
      this.position += count;
      filled += count;
    }
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

  async skip(n: number, what: string): Promise<void> {
    let left = n;
    while (left > 0) {
      if (!(await this.pull())) throw this.truncated(what, left);
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

  async close(): Promise<void> {
    if (!this.ended) {
      this.ended = true;
      await this.iterator.return?.();
    }
  }
}

function toAsync(iterator: Iterator<Uint8Array>): AsyncIterator<Uint8Array> {
  return {
    next: async () => iterator.next(),
    return: async () => iterator.return?.() ?? { done: true, value: undefined },
  };
}
