import {
  abortError,
  type ChangedBlockReader,
  type Clock,
  type Extent,
  type ReaderHints,
  type ReadOptions,
  SyncproxyError,
  type SyncWarning,
  systemClock,
} from '@syncproxy/core';
import { AwsApiError } from './aws-api-error.js';
import { type AwsClient, EBS_BLOCK_SIZE } from './client.js';

export interface EbsReaderOptions {
  client: AwsClient;
  snapshotId: string;
  /** The previous sync's snapshot of the same volume: the reader then yields only changed blocks. */
  baseSnapshotId?: string;
  /** The volume's size at snapshot time, bytes. Need not be a multiple of 512 KiB. */
  diskSizeBytes: number;
  /** `maxResults` of each list call, 100..10 000. Default 10 000. */
  pageSize?: number;
  /** Block tokens are re-listed this long before their `ExpiryTime`. Default 60 s. */
  tokenRefreshMarginMs?: number;
  /** GetSnapshotBlock calls one reader keeps in flight at most. Default 64. */
  maxBlockReadsInFlight?: number;
  /** Extents are cut at this length so the transfer can start before the listing ends. Default 64 MiB. */
  maxExtentBytes?: number;
  clock?: Clock;
  warnings?: SyncWarning[];
}

interface TokenEntry {
  token: string;
  expiresAtMs: number;
  /** Bytes of this block not yet read: the entry is dropped at 0, so memory follows the listing's lead over the reads. */
  remaining: number;
}

interface FreshToken {
  token: string;
  expiresAtMs: number;
}

/**
 * A ChangedBlockReader over the EBS direct APIs. Extents come from
 * ListSnapshotBlocks (full: written blocks only) or ListChangedBlocks
 * (incremental), streamed page by page until `NextToken` is absent, since a
 * page may be empty and still continue (EBS direct FAQ). The block tokens of
 * each page are kept until their block has been read; a token near its
 * `ExpiryTime`, or one AWS refuses as INVALID_BLOCK_TOKEN, is re-listed from
 * that block index.
 */
export class EbsSnapshotReader implements ChangedBlockReader {
  readonly diskSize: number;
  readonly granularity = EBS_BLOCK_SIZE;
  readonly warnings: readonly SyncWarning[];
  readonly hints: ReaderHints;
  readonly #client: AwsClient;
  readonly #snapshotId: string;
  readonly #baseSnapshotId: string | undefined;
  readonly #pageSize: number;
  readonly #marginMs: number;
  readonly #maxExtent: number;
  readonly #clock: Clock;
  readonly #tokens = new Map<number, TokenEntry>();
  readonly #windows = new Map<number, Promise<Map<number, FreshToken>>>();
  readonly #slots: Slots;
  readonly #lifetime = new AbortController();
  #closed = false;

  constructor(options: EbsReaderOptions) {
    if (!Number.isSafeInteger(options.diskSizeBytes) || options.diskSizeBytes < 0) {
      throw new SyncproxyError(
        `invalid disk size ${options.diskSizeBytes} for snapshot ${options.snapshotId}`,
        {
          code: 'internal',
          retryable: false,
        },
      );
    }
    this.diskSize = options.diskSizeBytes;
    this.warnings = options.warnings ?? [];
    this.#client = options.client;
    this.#snapshotId = options.snapshotId;
    this.#baseSnapshotId = options.baseSnapshotId;
    this.hints = { incremental: options.baseSnapshotId !== undefined };
    this.#pageSize = Math.min(10_000, Math.max(100, Math.floor(options.pageSize ?? 10_000)));
    this.#marginMs = options.tokenRefreshMarginMs ?? 60_000;
    const maxExtent = options.maxExtentBytes ?? 64 * 1024 * 1024;
    this.#maxExtent = Math.max(EBS_BLOCK_SIZE, maxExtent - (maxExtent % EBS_BLOCK_SIZE));
    this.#clock = options.clock ?? systemClock;
    this.#slots = new Slots(options.maxBlockReadsInFlight ?? 64);
  }

  async *extents(options: ReadOptions = {}): AsyncGenerator<Extent> {
    this.#assertOpen();
    const operation = this.#baseSnapshotId === undefined ? 'ListSnapshotBlocks' : 'ListChangedBlocks';
    let pageToken: string | undefined;
    let lastIndex = -1;
    let run: Extent | undefined;
    while (true) {
      const signal = options.signal;
      let page: Awaited<ReturnType<AwsClient['listBlocks']>>;
      try {
        page = await this.#client.listBlocks({
          snapshotId: this.#snapshotId,
          ...(this.#baseSnapshotId !== undefined ? { baseSnapshotId: this.#baseSnapshotId } : {}),
          ...(pageToken !== undefined ? { pageToken } : { startingBlockIndex: lastIndex + 1 }),
          maxResults: this.#pageSize,
          ...(signal ? { signal } : {}),
        });
      } catch (error) {
        // Page tokens live 60 minutes (EBS direct FAQ): a consumer that paused
        // longer resumes the listing after the last block it saw.
        if (pageToken !== undefined && hasReason(error, 'INVALID_PAGE_TOKEN')) {
          pageToken = undefined;
          continue;
        }
        throw error;
      }
      this.#assertOpen();
      for (const block of page.blocks) {
        if (block.index <= lastIndex) {
          throw new SyncproxyError(
            `${operation} of ${this.#snapshotId} listed block ${block.index} after block ${lastIndex}: block indexes must ascend`,
            { code: 'protocol', retryable: false },
          );
        }
        const offset = block.index * EBS_BLOCK_SIZE;
        if (offset >= this.diskSize) {
          throw new SyncproxyError(
            `${operation} of ${this.#snapshotId} listed block ${block.index}, beyond the volume size ${this.diskSize}`,
            { code: 'protocol', retryable: false },
          );
        }
        lastIndex = block.index;
        const length = Math.min(EBS_BLOCK_SIZE, this.diskSize - offset);
        // A changed block with no SecondBlockToken holds nothing in the newer snapshot.
        const kind = block.token === undefined ? 'zero' : 'data';
        if (block.token !== undefined) {
          this.#tokens.set(block.index, {
            token: block.token,
            expiresAtMs: page.expiresAtMs,
            remaining: length,
          });
        }
        if (
          run !== undefined &&
          run.kind === kind &&
          run.offset + run.length === offset &&
          run.length < this.#maxExtent
        ) {
          run.length += length;
        } else {
          if (run !== undefined) yield run;
          run = { offset, length, kind };
        }
      }
      if (page.nextToken === undefined) break;
      pageToken = page.nextToken;
    }
    if (run !== undefined) yield run;
  }

  async read(offset: number, length: number, options: ReadOptions = {}): Promise<Uint8Array> {
    if (!Number.isSafeInteger(length) || length < 0) {
      throw new SyncproxyError(
        `read of ${length} bytes at ${offset} from snapshot ${this.#snapshotId}: the length must be a non-negative integer`,
        { code: 'internal', retryable: false },
      );
    }
    const out = new Uint8Array(length);
    await this.readInto(out, offset, options);
    return out;
  }

  /**
   * Reads `target.length` bytes at `offset` into `target`. Whole blocks are
   * streamed straight into it and hashed on the way. `options.onRetry` hears of
   * every retry the client makes of a block (throttling included).
   */
  async readInto(target: Uint8Array, offset: number, options: ReadOptions = {}): Promise<void> {
    this.#assertOpen();
    const length = target.length;
    if (!Number.isSafeInteger(offset) || offset < 0 || offset + length > this.diskSize) {
      throw new SyncproxyError(
        `read of [${offset}, ${offset + length}) is outside snapshot ${this.#snapshotId} (size ${this.diskSize})`,
        { code: 'internal', retryable: false },
      );
    }
    if (length === 0) return;
    // One failed block stops its siblings instead of letting them run on.
    // (A listener, not AbortSignal.any: on Node 20 that costs milliseconds per call.)
    const local = new AbortController();
    const signal = local.signal;
    const forward = (): void => local.abort(options.signal?.reason);
    if (options.signal?.aborted) throw abortError(options.signal, 'read');
    options.signal?.addEventListener('abort', forward, { once: true });
    const first = Math.floor(offset / EBS_BLOCK_SIZE);
    const last = Math.floor((offset + length - 1) / EBS_BLOCK_SIZE);
    const reads: Promise<void>[] = [];
    for (let index = first; index <= last; index++) {
      const blockStart = index * EBS_BLOCK_SIZE;
      const from = Math.max(offset, blockStart);
      const to = Math.min(offset + length, blockStart + EBS_BLOCK_SIZE);
      const piece = target.subarray(from - offset, to - offset);
      // Only a whole 512 KiB block can land in place: a part of one is checked against its whole checksum.
      const inPlace = from === blockStart && to === blockStart + EBS_BLOCK_SIZE;
      reads.push(
        this.#block(index, signal, inPlace ? piece : undefined, options.onRetry).then((bytes) => {
          if (bytes === undefined) piece.fill(0);
          else if (!inPlace) piece.set(bytes.subarray(from - blockStart, to - blockStart));
          this.#consume(index, to - from);
        }),
      );
    }
    try {
      await Promise.all(reads);
    } catch (error) {
      local.abort();
      await Promise.allSettled(reads);
      if (options.signal?.aborted) throw abortError(options.signal, 'read');
      throw error;
    } finally {
      options.signal?.removeEventListener('abort', forward);
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#lifetime.abort(new SyncproxyError('reader closed', { code: 'aborted', retryable: false }));
    this.#tokens.clear();
  }

  /** Block tokens held for blocks listed but not yet read (memory check for tests). */
  get pendingTokens(): number {
    return this.#tokens.size;
  }

  /** One block's bytes within the disk; undefined for a block the snapshot does not hold (zeroes). */
  async #block(
    index: number,
    signal: AbortSignal,
    into: Uint8Array | undefined,
    onRetry: ReadOptions['onRetry'],
  ): Promise<Uint8Array | undefined> {
    const blockLength = Math.min(EBS_BLOCK_SIZE, this.diskSize - index * EBS_BLOCK_SIZE);
    let refused = false;
    while (true) {
      const token = await this.#tokenFor(index, refused);
      if (token === undefined) return undefined;
      try {
        const data = await this.#slots.run(signal, () =>
          this.#client.getSnapshotBlock({
            snapshotId: this.#snapshotId,
            blockIndex: index,
            blockToken: token,
            ...(into !== undefined ? { into } : {}),
            ...(onRetry !== undefined ? { onRetry } : {}),
            signal,
          }),
        );
        // EBS blocks are 512 KiB, the last one of an odd-sized volume included;
        // a server that sends only the volume's tail is accepted too.
        if (data.length !== EBS_BLOCK_SIZE && data.length !== blockLength) {
          throw new SyncproxyError(
            `GetSnapshotBlock ${this.#snapshotId} block ${index} returned ${data.length} bytes, expected ${EBS_BLOCK_SIZE}`,
            {
              code: 'integrity',
              retryable: false,
              details: { snapshotId: this.#snapshotId, blockIndex: index },
            },
          );
        }
        return data.length === blockLength ? data : data.subarray(0, blockLength);
      } catch (error) {
        // The clocks disagreed, or the token was revoked: re-list once.
        if (!refused && hasReason(error, 'INVALID_BLOCK_TOKEN')) {
          refused = true;
          continue;
        }
        throw error;
      }
    }
  }

  async #tokenFor(index: number, refused: boolean): Promise<string | undefined> {
    const entry = this.#tokens.get(index);
    if (entry !== undefined && !refused && entry.expiresAtMs - this.#marginMs > this.#clock.now())
      return entry.token;
    const window = await this.#listWindow(index);
    return window.get(index)?.token ?? (refused ? undefined : entry?.token);
  }

  /**
   * Fresh tokens for the `pageSize` block indexes around `index`, from
   * ListSnapshotBlocks of the snapshot read (a block token belongs to a
   * snapshot and a block, whichever list gave it). Reads of one window share
   * one listing, and every held token in it is renewed.
   */
  #listWindow(index: number): Promise<Map<number, FreshToken>> {
    const start = index - (index % this.#pageSize);
    const existing = this.#windows.get(start);
    if (existing !== undefined) return existing;
    const end = start + this.#pageSize;
    const listing = (async () => {
      const fresh = new Map<number, FreshToken>();
      let pageToken: string | undefined;
      let past = false;
      do {
        const page = await this.#client.listBlocks({
          snapshotId: this.#snapshotId,
          ...(pageToken !== undefined ? { pageToken } : { startingBlockIndex: start }),
          maxResults: this.#pageSize,
          signal: this.#lifetime.signal,
        });
        for (const block of page.blocks) {
          if (block.index >= end) {
            past = true;
            break;
          }
          if (block.index >= start && block.token !== undefined) {
            fresh.set(block.index, { token: block.token, expiresAtMs: page.expiresAtMs });
          }
        }
        pageToken = page.nextToken;
      } while (pageToken !== undefined && !past);
      for (const [i, token] of fresh) {
        const held = this.#tokens.get(i);
        if (held !== undefined) {
          held.token = token.token;
          held.expiresAtMs = token.expiresAtMs;
        }
      }
      return fresh;
    })().finally(() => this.#windows.delete(start));
    this.#windows.set(start, listing);
    return listing;
  }

  #consume(index: number, bytes: number): void {
    const entry = this.#tokens.get(index);
    if (entry === undefined) return;
    entry.remaining -= bytes;
    if (entry.remaining <= 0) this.#tokens.delete(index);
  }

  #assertOpen(): void {
    if (this.#closed) {
      throw new SyncproxyError(`reader of snapshot ${this.#snapshotId} is closed`, {
        code: 'aborted',
        retryable: false,
      });
    }
  }
}

function hasReason(error: unknown, reason: string): boolean {
  return AwsApiError.isInstance(error) && error.reason === reason;
}

/** A counting semaphore: at most `limit` block reads of one reader on the wire. */
class Slots {
  #free: number;
  readonly #waiting: Array<() => void> = [];

  constructor(limit: number) {
    this.#free = Math.max(1, Math.floor(limit));
  }

  async run<T>(signal: AbortSignal, work: () => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    try {
      if (signal.aborted) throw abortError(signal, 'read');
      return await work();
    } finally {
      const next = this.#waiting.shift();
      if (next !== undefined) next();
      else this.#free++;
    }
  }
}
