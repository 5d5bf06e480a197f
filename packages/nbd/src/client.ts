import { abortError, SyncproxyError, type SyncWarning } from '@syncproxy/core';
import { type BlockStatusDescriptor, NbdConnection } from './connection.js';
import type { NegotiatedExport } from './handshake.js';
import { describeAddress, type NbdAddress, type NbdTarget, parseNbdUri } from './nbd-uri.js';
import { BASE_ALLOCATION, CommandFlag, MAX_LENGTH_FIELD, TransmissionFlag } from './protocol.js';

export interface NbdClientOptions {
  /** `nbd://host[:port]/export` or `nbd+unix:///export?socket=PATH`. Or give `socketPath` / `host` instead. */
  uri?: string;
  /** A Unix socket to connect to (instead of `uri`). */
  socketPath?: string;
  /** A TCP host to connect to (instead of `uri`). */
  host?: string;
  /** TCP port; default 10809. */
  port?: number;
  /** The export; default the server's default export (`""`). Overrides the URI's. */
  exportName?: string;
  /**
   * Connections to open when the server offers CAN_MULTI_CONN (otherwise one):
   * default 4, as nbdcopy.
   */
  connections?: number;
  /** Reads and writes above this are split into several requests, spread over the connections. Default 1 MiB (measured best against nbdkit; see bench/). */
  maxRequestBytes?: number;
  /** Requests on the wire per connection; more wait their turn. Default 64. */
  maxRequestsInFlight?: number;
  /** Connect plus handshake. Default 30 000. */
  connectTimeoutMs?: number;
  /** A connection with requests in flight and no answer for this long is dropped. Default 600 000 (the proxy's HTTP timeout). */
  requestTimeoutMs?: number;
  /** Reopen lost connections on the next request (default true): a retry after a dropped connection can then succeed. */
  reconnect?: boolean;
  /** Ask for the `base:allocation` map (default true). */
  allocationMap?: boolean;
  signal?: AbortSignal;
}

/** What the server said about the export. */
export interface NbdExportInfo {
  exportName: string;
  size: number;
  readOnly: boolean;
  canFlush: boolean;
  canFua: boolean;
  canTrim: boolean;
  canWriteZeroes: boolean;
  canFastZero: boolean;
  canMultiConn: boolean;
  canCache: boolean;
  rotational: boolean;
  /** Structured replies were agreed (sparse reads, block status). */
  structuredReplies: boolean;
  /** `base:allocation` was agreed: {@link NbdClient.blockStatus} works. */
  canBlockStatus: boolean;
  minBlockSize: number;
  preferredBlockSize: number;
  maxPayloadBytes: number;
  /** Connections this client holds open. */
  connections: number;
}

export interface NbdRequestOptions {
  signal?: AbortSignal;
}

export interface NbdWriteOptions extends NbdRequestOptions {
  /** Force unit access: the write is durable when it completes (where the server offers FUA). */
  fua?: boolean;
}

export interface NbdWriteZeroesOptions extends NbdWriteOptions {
  /** Fail with `unsupported` instead of zeroing slowly (only where the server offers fast zero). */
  fastZero?: boolean;
  /** Keep the range allocated instead of punching a hole. */
  noHole?: boolean;
}

/** One extent of an allocation map. */
export interface NbdExtent {
  offset: number;
  length: number;
  /** `base:allocation` flags: bit 0 hole, bit 1 reads as zeroes. */
  flags: number;
}

/** Connections a client opens by default (as nbdcopy). */
export const DEFAULT_NBD_CONNECTIONS = 4;
/**
 * Servers serve a handful of connections each (nbdkit 16 threads, qemu-nbd
 * `-e` 100 clients); 100,000 asked for starved the event loop for a minute.
 */
export const MAX_NBD_CONNECTIONS = 64;
const DEFAULT_MAX_REQUEST_BYTES = 1024 * 1024;
/** Zero and trim carry no payload; a large, aligned cap keeps them inside the 32-bit length field. */
const MAX_ZERO_REQUEST_BYTES = 1024 * 1024 * 1024;

interface ResolvedOptions {
  target: NbdTarget;
  connections: number;
  maxRequestBytes: number;
  maxRequestsInFlight: number;
  connectTimeoutMs: number;
  requestTimeoutMs: number;
  reconnect: boolean;
  metaContexts: string[];
}

/**
 * An NBD client over one or more connections to one export. Large requests are
 * split and spread over the connections; requests of any size keep the server's
 * block-size constraints. Every failure is a {@link SyncproxyError}.
 */
export class NbdClient {
  readonly info: NbdExportInfo;
  /** What the client had to settle for (fewer connections than asked). */
  readonly warnings: readonly SyncWarning[];
  private readonly options: ResolvedOptions;
  private readonly serverName: string;
  private connections: NbdConnection[];
  private reconnecting: Promise<void> | undefined;
  private isClosed = false;
  private readonly requestBytes: number;

  private constructor(connections: NbdConnection[], options: ResolvedOptions, warnings: SyncWarning[] = []) {
    this.connections = connections;
    this.warnings = warnings;
    this.options = options;
    this.serverName = describeAddress(options.target.address);
    const first = connections[0]!.export;
    this.info = exportInfo(first, connections.length);
    const min = first.minBlockSize;
    this.requestBytes = Math.max(
      min,
      Math.floor(Math.min(options.maxRequestBytes, first.maxPayload) / min) * min,
    );
  }

  /** Connects to an NBD export (several connections when it offers multi-conn). */
  static async connect(options: NbdClientOptions): Promise<NbdClient> {
    const resolved = resolveOptions(options);
    const open = () =>
      NbdConnection.open({
        address: resolved.target.address,
        exportName: resolved.target.exportName,
        metaContexts: resolved.metaContexts,
        connectTimeoutMs: resolved.connectTimeoutMs,
        requestTimeoutMs: resolved.requestTimeoutMs,
        maxRequestsInFlight: resolved.maxRequestsInFlight,
        signal: options.signal,
      });
    const first = await open();
    const connections = [first];
    const warnings: SyncWarning[] = [];
    const multiConn = (first.export.flags & TransmissionFlag.CAN_MULTI_CONN) !== 0;
    if (multiConn && resolved.connections > 1) {
      const more = await Promise.allSettled(Array.from({ length: resolved.connections - 1 }, open));
      for (const result of more) if (result.status === 'fulfilled') connections.push(result.value);
      const failed = more.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (options.signal?.aborted) {
        await Promise.allSettled(connections.map((c) => c.close()));
        throw abortError(options.signal, 'NBD connect');
      }
      // The first connection proved the server and the export: a server out of worker slots for the
      // others (it accepts them but never answers) still serves correctly over fewer.
      if (failed.length > 0) {
        const reason = (failed[0]!.reason as Error)?.message ?? String(failed[0]!.reason);
        warnings.push({
          code: 'nbd-fewer-connections',
          message: `NBD server ${describeAddress(resolved.target.address)} offers multi-conn but opened ${connections.length} of the ${resolved.connections} connections asked for (${failed.length} did not finish the handshake: ${reason}); reading over ${connections.length}`,
        });
      }
    }
    return new NbdClient(connections, resolved, warnings);
  }

  get size(): number {
    return this.info.size;
  }

  get exportName(): string {
    return this.info.exportName;
  }

  /** Reads `[offset, offset + length)`: exactly `length` bytes, holes as zeroes. */
  async read(offset: number, length: number, options: NbdRequestOptions = {}): Promise<Uint8Array> {
    const target = Buffer.allocUnsafe(length);
    await this.readInto(target, offset, options);
    return target;
  }

  /**
   * Reads `target.length` bytes at `offset` into `target`. No async layers on
   * the way to the connection (each costs microtask turns per request, which a
   * copy of a few thousand requests a second feels): errors thrown here reject.
   */
  readInto(target: Uint8Array, offset: number, options: NbdRequestOptions = {}): Promise<void> {
    try {
      const length = target.length;
      this.checkRange('READ', offset, length);
      if (length === 0) return Promise.resolve();
      const min = this.info.minBlockSize;
      const start = alignDown(offset, min);
      const end = alignUp(offset + length, min);
      if (start !== offset || end !== offset + length) {
        // The server's minimum block size binds us: read the aligned cover and copy out the part asked for.
        const cover = Buffer.allocUnsafe(end - start);
        return this.readAligned(cover, start, options.signal).then(() => {
          target.set(cover.subarray(offset - start, offset - start + length));
        });
      }
      return this.readAligned(target, offset, options.signal);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  async write(offset: number, data: Uint8Array, options: NbdWriteOptions = {}): Promise<void> {
    this.checkWritable('WRITE');
    this.checkRange('WRITE', offset, data.length);
    this.checkAligned('WRITE', offset, data.length);
    const flags = options.fua && this.info.canFua ? CommandFlag.FUA : 0;
    const step = this.requestBytes;
    if (data.length <= step) {
      await this.run((c) => c.write(offset, data, flags, options.signal), options.signal);
      return;
    }
    const pieces: Promise<void>[] = [];
    for (let at = 0; at < data.length; at += step) {
      const piece = data.subarray(at, Math.min(at + step, data.length));
      pieces.push(this.run((c) => c.write(offset + at, piece, flags, options.signal), options.signal));
    }
    await Promise.all(pieces);
  }

  /**
   * Makes a range read as zeroes with WRITE_ZEROES. Throws `unsupported` when
   * the server has no WRITE_ZEROES (callers then write zero bytes).
   */
  async writeZeroes(offset: number, length: number, options: NbdWriteZeroesOptions = {}): Promise<void> {
    this.checkWritable('WRITE_ZEROES');
    this.checkRange('WRITE_ZEROES', offset, length);
    this.checkAligned('WRITE_ZEROES', offset, length);
    if (!this.info.canWriteZeroes) {
      throw new SyncproxyError(
        `NBD export "${this.exportName}" on ${this.serverName} does not support WRITE_ZEROES`,
        {
          code: 'unsupported',
        },
      );
    }
    let flags = 0;
    if (options.fua && this.info.canFua) flags |= CommandFlag.FUA;
    if (options.noHole) flags |= CommandFlag.NO_HOLE;
    if (options.fastZero && this.info.canFastZero) flags |= CommandFlag.FAST_ZERO;
    await this.split(
      offset,
      length,
      (at, n, c) => c.writeZeroes(at, n, flags, options.signal),
      options.signal,
    );
  }

  /** Tells the server a range is no longer needed (advisory: it may not read as zeroes). */
  async trim(offset: number, length: number, options: NbdRequestOptions = {}): Promise<void> {
    this.checkWritable('TRIM');
    this.checkRange('TRIM', offset, length);
    if (!this.info.canTrim) return;
    this.checkAligned('TRIM', offset, length);
    await this.split(offset, length, (at, n, c) => c.trim(at, n, options.signal), options.signal);
  }

  /** Makes completed writes durable (on every connection, so it holds with or without multi-conn). */
  async flush(options: NbdRequestOptions = {}): Promise<void> {
    if (!this.info.canFlush) return;
    await this.ensureConnections(options.signal);
    await Promise.all(this.connections.map((c) => c.flush(options.signal)));
  }

  /**
   * One BLOCK_STATUS query of `base:allocation`. The server may describe less
   * than asked (re-query from where it stopped) and its last extent may run
   * past the range; {@link allocationMap} handles both.
   */
  async blockStatus(offset: number, length: number, options: NbdRequestOptions = {}): Promise<NbdExtent[]> {
    if (!this.info.canBlockStatus) {
      throw new SyncproxyError(
        `NBD export "${this.exportName}" on ${this.serverName} offers no ${BASE_ALLOCATION} map`,
        { code: 'unsupported' },
      );
    }
    this.checkRange('BLOCK_STATUS', offset, length);
    const asked = Math.min(length, alignDown(MAX_LENGTH_FIELD, this.info.minBlockSize));
    const descriptors: BlockStatusDescriptor[] = await this.run((c) => {
      const contextId = c.export.metaContexts.get(BASE_ALLOCATION);
      if (contextId === undefined) {
        throw new SyncproxyError(`NBD reconnection to ${this.serverName} lost the ${BASE_ALLOCATION} map`, {
          code: 'unsupported',
        });
      }
      return c.blockStatus(offset, asked, contextId, options.signal);
    }, options.signal);
    const extents: NbdExtent[] = [];
    let at = offset;
    for (const d of descriptors) {
      extents.push({ offset: at, length: d.length, flags: d.flags });
      at += d.length;
    }
    return extents;
  }

  /**
   * The `base:allocation` map of `[offset, offset + length)` (default: the whole
   * export), re-querying where the server stops short and clipping where it runs
   * over. Extents are contiguous and cover the range exactly.
   */
  async *allocationMap(
    offset = 0,
    length = this.size - offset,
    options: NbdRequestOptions & { windowBytes?: number } = {},
  ): AsyncGenerator<NbdExtent> {
    const end = offset + length;
    const window = options.windowBytes ?? 1024 * 1024 * 1024;
    let at = offset;
    // The next query runs while the caller consumes this one's extents.
    let next: Promise<NbdExtent[]> | undefined =
      at < end ? this.blockStatus(at, Math.min(window, end - at), options) : undefined;
    try {
      while (next) {
        const extents = await next;
        next = undefined;
        if (extents.length === 0) {
          throw new SyncproxyError(
            `NBD server ${this.serverName} answered BLOCK_STATUS at offset ${at} with no extents`,
            {
              code: 'protocol',
            },
          );
        }
        const stop = Math.min(
          end,
          extents.reduce((n, e) => n + e.length, at),
        );
        if (stop < end) next = this.blockStatus(stop, Math.min(window, end - stop), options);
        for (const e of extents) {
          if (e.offset >= end) break;
          yield { offset: e.offset, length: Math.min(e.length, end - e.offset), flags: e.flags };
        }
        at = stop;
      }
    } finally {
      // A consumer that stops early must not leave a rejected query unobserved.
      next?.catch(() => {});
    }
  }

  /** Sends DISC on every connection after what is in flight, and closes them. */
  async close(): Promise<void> {
    this.isClosed = true;
    await Promise.allSettled([this.reconnecting]);
    await Promise.allSettled(this.connections.map((c) => c.close()));
  }

  private readAligned(target: Uint8Array, offset: number, signal: AbortSignal | undefined): Promise<void> {
    const step = this.requestBytes;
    if (target.length <= step) return this.run((c) => c.read(offset, target, signal), signal);
    const pieces: Promise<void>[] = [];
    for (let at = 0; at < target.length; at += step) {
      const piece = target.subarray(at, Math.min(at + step, target.length));
      pieces.push(this.run((c) => c.read(offset + at, piece, signal), signal));
    }
    return Promise.all(pieces).then(() => undefined);
  }

  private async split(
    offset: number,
    length: number,
    send: (offset: number, length: number, connection: NbdConnection) => Promise<void>,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const step = alignDown(MAX_ZERO_REQUEST_BYTES, this.info.minBlockSize);
    const pieces: Promise<void>[] = [];
    for (let at = offset; at < offset + length; at += step) {
      const n = Math.min(step, offset + length - at);
      pieces.push(this.run((c) => send(at, n, c), signal));
    }
    await Promise.all(pieces);
  }

  /** Runs a request on the least busy usable connection, reopening lost ones first. */
  private run<T>(
    send: (connection: NbdConnection) => Promise<T>,
    signal: AbortSignal | undefined,
  ): Promise<T> {
    const best = this.pick();
    if (!best) return this.runAfterReconnect(send, signal);
    // The common case without an async layer: a usable connection is there.
    try {
      return send(best);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  private async runAfterReconnect<T>(
    send: (connection: NbdConnection) => Promise<T>,
    signal: AbortSignal | undefined,
  ): Promise<T> {
    await this.ensureConnections(signal);
    const best = this.pick();
    if (!best) {
      throw new SyncproxyError(`no usable NBD connection to ${this.serverName}`, { code: 'network' });
    }
    return send(best);
  }

  private pick(): NbdConnection | undefined {
    let best: NbdConnection | undefined;
    for (const c of this.connections) {
      if (c.isUsable && (best === undefined || c.load < best.load)) best = c;
    }
    return best;
  }

  /** Replaces every lost connection; one reconnection at a time, shared by all callers. */
  private async ensureConnections(signal: AbortSignal | undefined): Promise<void> {
    if (this.isClosed) {
      throw new SyncproxyError(`NBD client for export "${this.exportName}" on ${this.serverName} is closed`, {
        code: 'internal',
      });
    }
    if (this.connections.every((c) => c.isUsable)) return;
    if (!this.options.reconnect) {
      const lost = this.connections.find((c) => c.error)?.error;
      throw (
        lost ??
        new SyncproxyError(`NBD connection to ${this.serverName} is closing (reconnect is off)`, {
          code: 'network',
        })
      );
    }
    if (signal?.aborted) throw abortError(signal, 'NBD reconnect');
    this.reconnecting ??= this.reconnect().finally(() => {
      this.reconnecting = undefined;
    });
    await this.reconnecting;
  }

  private async reconnect(): Promise<void> {
    const { target } = this.options;
    const results = await Promise.allSettled(
      this.connections.map(async (old) => {
        if (old.isUsable) return old;
        // The dropped connection may still be draining: let it finish on its own.
        old.close().catch(() => {});
        const fresh = await NbdConnection.open({
          address: target.address,
          exportName: target.exportName,
          metaContexts: this.options.metaContexts,
          connectTimeoutMs: this.options.connectTimeoutMs,
          requestTimeoutMs: this.options.requestTimeoutMs,
          maxRequestsInFlight: this.options.maxRequestsInFlight,
        });
        if (fresh.export.size !== this.info.size) {
          await fresh.close();
          throw new SyncproxyError(
            `NBD export "${this.exportName}" on ${this.serverName} changed size from ${this.info.size} to ${fresh.export.size} bytes across a reconnection`,
            { code: 'conflict', retryable: false },
          );
        }
        return fresh;
      }),
    );
    const next = results.map((r, i) => (r.status === 'fulfilled' ? r.value : this.connections[i]!));
    if (this.isClosed) {
      await Promise.allSettled(next.map((c) => c.close()));
      return;
    }
    this.connections = next;
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    // Some connections back is enough to carry on; none is the caller's error.
    if (failed && !next.some((c) => c.isUsable)) throw failed.reason;
  }

  private checkRange(command: string, offset: number, length: number): void {
    if (
      !Number.isSafeInteger(offset) ||
      !Number.isSafeInteger(length) ||
      offset < 0 ||
      length < 0 ||
      offset + length > this.size
    ) {
      throw new SyncproxyError(
        `NBD ${command} of ${length} bytes at offset ${offset} is outside export "${this.exportName}" of ${this.size} bytes`,
        { code: 'internal', retryable: false, details: { offset, length, size: this.size } },
      );
    }
  }

  private checkAligned(command: string, offset: number, length: number): void {
    const min = this.info.minBlockSize;
    if (offset % min !== 0 || length % min !== 0) {
      throw new SyncproxyError(
        `NBD ${command} of ${length} bytes at offset ${offset} is not aligned to the export's minimum block size ${min}`,
        { code: 'internal', retryable: false, details: { offset, length, minBlockSize: min } },
      );
    }
  }

  private checkWritable(command: string): void {
    if (this.info.readOnly) {
      throw new SyncproxyError(
        `NBD ${command} refused: export "${this.exportName}" on ${this.serverName} is read-only`,
        {
          code: 'permission',
          retryable: false,
          details: { nbdError: 'EPERM' },
        },
      );
    }
  }
}

/** Connects to an NBD export: `await connectNbd({ uri: 'nbd+unix:///?socket=/tmp/sock' })`. */
export function connectNbd(options: NbdClientOptions): Promise<NbdClient> {
  return NbdClient.connect(options);
}

function resolveOptions(options: NbdClientOptions): ResolvedOptions {
  let target: NbdTarget;
  if (options.uri !== undefined) {
    target = parseNbdUri(options.uri);
  } else if (options.socketPath !== undefined) {
    target = { address: { transport: 'unix', socketPath: options.socketPath }, exportName: '' };
  } else if (options.host !== undefined) {
    const address: NbdAddress = { transport: 'tcp', host: options.host, port: options.port ?? 10809 };
    target = { address, exportName: '' };
  } else {
    throw new SyncproxyError('NBD client needs a uri, a socketPath or a host', { code: 'config' });
  }
  if (options.exportName !== undefined) target = { ...target, exportName: options.exportName };
  const positive = (name: string, value: number | undefined, fallback: number, max?: number) => {
    const v = value ?? fallback;
    if (!Number.isSafeInteger(v) || v < 1) {
      throw new SyncproxyError(`NBD client option ${name} must be a positive integer (got ${value})`, {
        code: 'config',
      });
    }
    if (max !== undefined && v > max) {
      throw new SyncproxyError(`NBD client option ${name} must be at most ${max} (got ${value})`, {
        code: 'config',
      });
    }
    return v;
  };
  return {
    target,
    connections: positive('connections', options.connections, DEFAULT_NBD_CONNECTIONS, MAX_NBD_CONNECTIONS),
    maxRequestBytes: positive('maxRequestBytes', options.maxRequestBytes, DEFAULT_MAX_REQUEST_BYTES),
    maxRequestsInFlight: positive('maxRequestsInFlight', options.maxRequestsInFlight, 64),
    connectTimeoutMs: positive('connectTimeoutMs', options.connectTimeoutMs, 30_000),
    requestTimeoutMs: positive('requestTimeoutMs', options.requestTimeoutMs, 600_000),
    reconnect: options.reconnect ?? true,
    metaContexts: options.allocationMap === false ? [] : [BASE_ALLOCATION],
  };
}

function exportInfo(negotiated: NegotiatedExport, connections: number): NbdExportInfo {
  const has = (flag: number) => (negotiated.flags & flag) !== 0;
  return {
    exportName: negotiated.exportName,
    size: negotiated.size,
    readOnly: has(TransmissionFlag.READ_ONLY),
    canFlush: has(TransmissionFlag.SEND_FLUSH),
    canFua: has(TransmissionFlag.SEND_FUA),
    canTrim: has(TransmissionFlag.SEND_TRIM),
    canWriteZeroes: has(TransmissionFlag.SEND_WRITE_ZEROES),
    canFastZero: has(TransmissionFlag.SEND_FAST_ZERO),
    canMultiConn: has(TransmissionFlag.CAN_MULTI_CONN),
    canCache: has(TransmissionFlag.SEND_CACHE),
    rotational: has(TransmissionFlag.ROTATIONAL),
    structuredReplies: negotiated.structuredReplies,
    canBlockStatus: negotiated.metaContexts.has(BASE_ALLOCATION),
    minBlockSize: negotiated.minBlockSize,
    preferredBlockSize: negotiated.preferredBlockSize,
    maxPayloadBytes: negotiated.maxPayload,
    connections,
  };
}

function alignDown(n: number, to: number): number {
  return n - (n % to);
}

function alignUp(n: number, to: number): number {
  const r = n % to;
  return r === 0 ? n : n + to - r;
}
