import {
  abortError,
  type ChangedBlockReader,
  type Extent,
  type ReaderHints,
  type ReadOptions,
  SyncproxyError,
  type SyncWarning,
} from '@syncproxy/core';
import { DEFAULT_NBD_CONNECTIONS, MAX_NBD_CONNECTIONS, NbdClient, type NbdClientOptions } from './client.js';
import { STATE_ZERO } from './protocol.js';
import { NbdReadThreadPool, openReadClients, type ReadLease } from './read-threads.js';

export interface NbdReaderOptions extends NbdClientOptions {
  /** An already connected client to read through; the reader then leaves closing it to you. */
  client?: NbdClient;
  /**
   * The extents that changed (VMware CBT `QueryChangedDiskAreas`, say): yielded
   * as given, instead of the export's `base:allocation` map. They must be
   * sorted, non-overlapping and inside the disk.
   */
  changedExtents?: Iterable<Extent> | AsyncIterable<Extent>;
  /** Overrides the reported granularity (default: the server's preferred block size). */
  granularity?: number;
  /**
   * Bytes of reads to keep in flight, hinted to the engine (`hints.readBytesInFlight`; default 8 MiB,
   * eight of the client's 1 MiB requests).
   */
  readBytesInFlight?: number;
  /**
   * Where reads into SharedArrayBuffers (the engine's chunk buffers) are received: by default on
   * the worker threads of {@link NbdReadThreadPool.shared}, each with its share of `connections`
   * (the reader keeps one connection more on the calling thread, for the allocation map and other
   * reads); another pool; or `false`, on the calling thread. Not used with a given `client`, or when
   * the server does not offer multi-conn.
   */
  readThreads?: NbdReadThreadPool | false;
}

/**
 * Eight 1 MiB requests in flight keep a local nbdkit busy, as nbdcopy's copy
 * loop does: measured against nbdcopy (bench/run.ts, 2 cores), the engine's
 * default of 8 reads of 4 MiB each ran at 0.8x, because the kernel then copies
 * every byte into buffers that have left the CPU cache. 8 MiB in flight still
 * carries 300 MB/s over a 25 ms round trip (a VDDK source on another site).
 */
const DEFAULT_READ_BYTES_IN_FLIGHT = 8 * 1024 * 1024;

/**
 * A {@link ChangedBlockReader} over an NBD export. A full read yields the
 * `base:allocation` map (data, and zero ranges the sink can leave sparse); an
 * incremental one yields the changed extents it was given.
 */
export class NbdReader implements ChangedBlockReader {
  readonly diskSize: number;
  readonly granularity: number;
  readonly warnings: readonly SyncWarning[];
  readonly hints: ReaderHints;
  /**
   * The client on the calling thread (for capabilities and block status). With read threads it
   * holds one connection, and reads into SharedArrayBuffers go to the threads instead.
   */
  readonly client: NbdClient;
  private readonly ownsClient: boolean;
  private readonly changedExtents: Iterable<Extent> | AsyncIterable<Extent> | undefined;
  #lease: ReadLease | undefined;

  private constructor(
    client: NbdClient,
    ownsClient: boolean,
    options: NbdReaderOptions,
    threads?: { lease: ReadLease | undefined; warnings: readonly SyncWarning[] },
  ) {
    this.client = client;
    this.ownsClient = ownsClient;
    this.#lease = threads?.lease;
    this.diskSize = client.size;
    this.granularity = options.granularity ?? client.info.preferredBlockSize;
    this.changedExtents = options.changedExtents;
    this.hints = {
      readBytesInFlight: options.readBytesInFlight ?? DEFAULT_READ_BYTES_IN_FLIGHT,
      // The allocation map describes the whole disk; given changed extents are an incremental's.
      incremental: options.changedExtents !== undefined,
    };
    this.warnings = [
      ...client.warnings,
      ...(threads?.warnings ?? []),
      ...(options.changedExtents === undefined && !client.info.canBlockStatus
        ? [
            {
              code: 'no-allocation-map',
              message: `NBD export "${client.exportName}" offers no base:allocation map: the whole disk is read`,
            },
          ]
        : []),
    ];
  }

  /** Connects (unless given a client) and returns the reader. */
  static async open(options: NbdReaderOptions): Promise<NbdReader> {
    if (options.client) return new NbdReader(options.client, false, options);
    const pool = options.readThreads ?? NbdReadThreadPool.shared;
    if (pool !== false && !(pool instanceof NbdReadThreadPool)) {
      throw new SyncproxyError('NBD reader option readThreads must be an NbdReadThreadPool or false', {
        code: 'config',
      });
    }
    const connections = options.connections ?? DEFAULT_NBD_CONNECTIONS;
    const sharable =
      Number.isSafeInteger(connections) && connections >= 2 && connections <= MAX_NBD_CONNECTIONS;
    // One connection, or a bad count (which the client refuses, naming the option), reads here.
    if (pool === false || !sharable) return new NbdReader(await NbdClient.connect(options), true, options);
    const client = await NbdClient.connect({ ...options, connections: 1 });
    try {
      if (!client.info.canMultiConn) return new NbdReader(client, true, options);
      const {
        signal,
        client: _client,
        changedExtents: _changedExtents,
        readThreads: _pool,
        ...threadOptions
      } = options;
      const started = await openReadClients(pool, {
        connections,
        client: { ...threadOptions, allocationMap: false },
        sizeBytes: client.size,
        signal,
      });
      if (started.lease !== undefined) return new NbdReader(client, true, options, started);
      // No thread started: read on this thread, over every connection asked for where the server
      // still takes them (a server out of connections keeps the one this reader has).
      const full = await NbdClient.connect(options).catch(() => undefined);
      if (full === undefined) return new NbdReader(client, true, options, started);
      await client.close();
      return new NbdReader(full, true, options, started);
    } catch (error) {
      await client.close().catch(() => {});
      throw error;
    }
  }

  /** Worker threads receiving this reader's reads (0: all on the calling thread). */
  get readThreads(): number {
    return this.#lease?.threads ?? 0;
  }

  extents(options: ReadOptions = {}): AsyncIterable<Extent> {
    if (this.changedExtents !== undefined) return this.givenExtents(this.changedExtents, options.signal);
    if (!this.client.info.canBlockStatus) return this.wholeDisk();
    return this.allocatedExtents(options.signal);
  }

  read(offset: number, length: number, options: ReadOptions = {}): Promise<Uint8Array> {
    return this.client.read(offset, length, options);
  }

  /**
   * Reads `target.length` bytes at `offset` into `target`: for callers that
   * reuse their buffers, which spares an allocation (and its page faults) per read.
   */
  readInto(target: Uint8Array, offset: number, options: ReadOptions = {}): Promise<void> {
    if (this.#lease !== undefined && target.buffer instanceof SharedArrayBuffer) {
      const read = this.#lease.readInto(target as Uint8Array<SharedArrayBuffer>, offset, options.signal);
      if (read !== undefined) return read;
    }
    return this.client.readInto(target, offset, options);
  }

  async close(): Promise<void> {
    const lease = this.#lease;
    this.#lease = undefined;
    await Promise.all([lease?.close(), this.ownsClient ? this.client.close() : undefined]);
  }

  private async *wholeDisk(): AsyncGenerator<Extent> {
    if (this.diskSize > 0) yield { offset: 0, length: this.diskSize, kind: 'data' };
  }

  /**
   * base:allocation, merged into runs of one kind. ZERO means "reads as zeroes";
   * HOLE without ZERO has undefined content, so it is read as data (as nbdcopy does).
   */
  private async *allocatedExtents(signal: AbortSignal | undefined): AsyncGenerator<Extent> {
    let run: Extent | undefined;
    for await (const e of this.client.allocationMap(0, this.diskSize, { signal })) {
      if (signal?.aborted) throw abortError(signal, 'NBD extents');
      const kind = (e.flags & STATE_ZERO) !== 0 ? 'zero' : 'data';
      if (run && run.kind === kind && run.offset + run.length === e.offset) {
        run.length += e.length;
        continue;
      }
      if (run) yield run;
      run = { offset: e.offset, length: e.length, kind };
    }
    if (run) yield run;
  }

  private async *givenExtents(
    source: Iterable<Extent> | AsyncIterable<Extent>,
    signal: AbortSignal | undefined,
  ): AsyncGenerator<Extent> {
    let end = 0;
    for await (const e of source) {
      if (signal?.aborted) throw abortError(signal, 'NBD extents');
      const valid =
        Number.isSafeInteger(e.offset) &&
        Number.isSafeInteger(e.length) &&
        e.length > 0 &&
        e.offset >= end &&
        e.offset + e.length <= this.diskSize &&
        (e.kind === 'data' || e.kind === 'zero');
      if (!valid) {
        throw new SyncproxyError(
          `changed extent {offset: ${e.offset}, length: ${e.length}, kind: ${e.kind}} is not sorted, non-overlapping and inside the ${this.diskSize}-byte disk`,
          {
            code: 'config',
            retryable: false,
            details: { offset: e.offset, length: e.length, previousEnd: end },
          },
        );
      }
      end = e.offset + e.length;
      yield { offset: e.offset, length: e.length, kind: e.kind };
    }
  }
}
