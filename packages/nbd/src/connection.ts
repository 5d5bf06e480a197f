import { connect as connectSocket, type Socket } from 'node:net';
import { abortError, listenForAbort, SyncproxyError, toSyncproxyError } from '@syncproxy/core';
import { ByteQueue } from './byte-queue.js';
import { type NegotiatedExport, negotiate, sanitize } from './handshake.js';
import { nbdCommandError, protocolError } from './nbd-error.js';
import { describeAddress, type NbdAddress } from './nbd-uri.js';
import {
  CHUNK_ERROR_BIT,
  ChunkType,
  COMMAND_NAMES,
  Command,
  type CommandType,
  NbdErrno,
  REPLY_FLAG_DONE,
  REQUEST_HEADER_BYTES,
  REQUEST_MAGIC,
  SIMPLE_REPLY_HEADER_BYTES,
  SIMPLE_REPLY_MAGIC,
  STRUCTURED_REPLY_HEADER_BYTES,
  STRUCTURED_REPLY_MAGIC,
} from './protocol.js';
import { SocketReceiver } from './socket-receiver.js';

/** One `{length, flags}` pair of a BLOCK_STATUS reply. */
export interface BlockStatusDescriptor {
  length: number;
  flags: number;
}

export interface ConnectionOptions {
  address: NbdAddress;
  exportName: string;
  metaContexts: readonly string[];
  /** Connect plus handshake must finish within this. */
  connectTimeoutMs: number;
  /** With requests in flight, a connection silent for this long is dropped. */
  requestTimeoutMs: number;
  /** Requests beyond this wait in order before they are sent. */
  maxRequestsInFlight: number;
  signal?: AbortSignal;
}

interface RequestOptions {
  flags?: number;
  /** Bytes sent after the header (WRITE). */
  payload?: Uint8Array;
  /** Where READ data lands: exactly `length` bytes. */
  target?: Uint8Array;
  /** The meta context a BLOCK_STATUS answer must carry. */
  contextId?: number;
  signal?: AbortSignal;
}

interface PendingRequest {
  type: CommandType;
  flags: number;
  offset: number;
  length: number;
  cookie: number;
  payload: Uint8Array | undefined;
  target: Uint8Array | undefined;
  contextId: number | undefined;
  /** READ: the `[start, end)` ranges (relative to offset) that data or hole chunks covered. */
  covered: Array<[number, number]>;
  descriptors: BlockStatusDescriptor[] | undefined;
  error: SyncproxyError | undefined;
  /** The caller gave up (abort): the reply is still parsed, then dropped. */
  abandoned: boolean;
  resolve: (value: BlockStatusDescriptor[] | undefined) => void;
  reject: (error: SyncproxyError) => void;
  cleanup: (() => void) | undefined;
  /** When the whole reply must have arrived (ms, the monotonic clock); set when sent. */
  deadline: number;
}

/** Non-data chunks bigger than this are refused: 2^20 block-status descriptors (the spec's bound) fit with room. */
const MAX_CHUNK_PAYLOAD = 4 + 8 * (1 << 21);
const MAX_ERROR_CHUNK = 6 + 0xffff + 8;
/** From this size on, a READ's reply header is read on its own so its payload can skip the scratch buffer. */
const LARGE_READ_BYTES = 128 * 1024;

enum ParseState {
  Header = 0,
  DataOffset = 1,
  Data = 2,
  Payload = 3,
}

/**
 * One NBD connection in the transmission phase: many requests in flight,
 * replies matched by cookie, in any order. Structured reply chunks are parsed
 * from the list of received Buffers; READ data is copied once, from the socket's
 * buffers into the caller's destination.
 */
export class NbdConnection {
  readonly export: NegotiatedExport;
  private readonly socket: Socket;
  private readonly queue: ByteQueue;
  private readonly serverName: string;
  private readonly requestTimeoutMs: number;
  private readonly maxRequestsInFlight: number;
  private readonly inFlight = new Map<number, PendingRequest>();
  private readonly waiting: PendingRequest[] = [];
  private nextCookie = 1;
  private failure: SyncproxyError | undefined;
  private draining = false;
  private discSent = false;
  private corked = false;
  /** READs on the wire big enough that their payload is worth a read of its own. */
  private largeReadsInFlight = 0;
  private idleWaiters: Array<() => void> = [];
  private closed: Promise<void>;
  /** Fires at the oldest request's deadline; undefined while nothing is on the wire. */
  private deadlineTimer: NodeJS.Timeout | undefined;
  private lastReceivedAt = 0;

  // Parser state, for the reply being read.
  private state = ParseState.Header;
  private current: PendingRequest | undefined;
  private chunkFlags = 0;
  private chunkType = 0;
  private chunkLength = 0;
  /** Data: where in `current.target` the next byte goes, and how many are left. */
  private dataAt = 0;
  private dataLeft = 0;

  private constructor(
    socket: Socket,
    receiver: SocketReceiver,
    queue: ByteQueue,
    negotiated: NegotiatedExport,
    options: ConnectionOptions,
  ) {
    this.socket = socket;
    this.queue = queue;
    this.export = negotiated;
    this.serverName = describeAddress(options.address);
    this.requestTimeoutMs = options.requestTimeoutMs;
    this.maxRequestsInFlight = options.maxRequestsInFlight;
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    receiver.onChunk = (chunk) => {
      this.lastReceivedAt = performance.now();
      this.queue.push(chunk);
      this.parse();
      // The chunk lives in the receiver's scratch buffer, which the next read overwrites.
      this.queue.ownLast();
    };
    receiver.target = () =>
      this.state === ParseState.Data && this.queue.length === 0 && this.current?.target !== undefined
        ? this.current.target.subarray(this.dataAt, this.dataAt + this.dataLeft)
        : undefined;
    receiver.expectsLargeData = () =>
      this.largeReadsInFlight > 0 && this.state === ParseState.Header && this.queue.length === 0;
    receiver.onDirect = (bytes) => {
      this.lastReceivedAt = performance.now();
      this.dataAt += bytes;
      this.dataLeft -= bytes;
      if (this.dataLeft === 0) {
        try {
          this.endChunk();
        } catch (error) {
          this.fail(SyncproxyError.isInstance(error) ? error : protocolError(String(error)));
        }
      }
    };
    // Bytes that came with the end of the handshake.
    if (queue.length > 0) this.parse();
    socket.on('timeout', () =>
      this.fail(
        new SyncproxyError(
          `NBD server ${this.serverName} sent nothing for ${this.requestTimeoutMs} ms with ${this.inFlight.size} requests in flight`,
          { code: 'timeout' },
        ),
      ),
    );
    socket.on('error', (error) => this.fail(connectionLost(error, this.serverName, this.inFlight.size)));
    socket.on('close', () => this.fail(connectionLost(undefined, this.serverName, this.inFlight.size)));
  }

  /** Connects, negotiates and returns a connection ready for requests. */
  static async open(options: ConnectionOptions): Promise<NbdConnection> {
    const serverName = describeAddress(options.address);
    if (options.signal?.aborted) throw abortError(options.signal, `connect to NBD server ${serverName}`);
    const receiver = new SocketReceiver();
    const socket =
      options.address.transport === 'unix'
        ? connectSocket({ path: options.address.socketPath, onread: receiver.onread })
        : connectSocket({ host: options.address.host, port: options.address.port, onread: receiver.onread });
    socket.setNoDelay(true);
    let socketError: Error | undefined;
    // Always listened to, so a late socket error can never be unhandled.
    socket.on('error', (error) => {
      socketError ??= error;
    });
    const queue = new ByteQueue();
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const stopped = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(
          new SyncproxyError(
            `NBD handshake with ${serverName} did not finish within ${options.connectTimeoutMs} ms`,
            {
              code: 'timeout',
            },
          ),
        );
      }, options.connectTimeoutMs);
      onAbort = () => reject(abortError(options.signal, `connect to NBD server ${serverName}`));
      options.signal?.addEventListener('abort', onAbort, { once: true });
      socket.once('error', (error) => reject(connectError(error, serverName)));
    });
    stopped.catch(() => {});
    try {
      await Promise.race([new Promise<void>((resolve) => socket.once('connect', () => resolve())), stopped]);
      const negotiated = await Promise.race([
        negotiate(socket, receiver, queue, {
          exportName: options.exportName,
          metaContexts: options.metaContexts,
          serverName,
        }),
        stopped,
      ]);
      return new NbdConnection(socket, receiver, queue, negotiated, options);
    } catch (error) {
      socket.destroy();
      // The socket's own error (ECONNREFUSED, ENOENT, ECONNRESET) says more than "closed".
      if (socketError && (!SyncproxyError.isInstance(error) || error.code === 'network')) {
        throw connectError(socketError, serverName);
      }
      throw toSyncproxyError(error, { operation: `NBD handshake with ${serverName}` });
    } finally {
      clearTimeout(timer);
      if (onAbort) options.signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Requests sent or waiting: how busy this connection is. */
  get load(): number {
    return this.inFlight.size + this.waiting.length;
  }

  /** Some caller still waits for a reply (abandoned requests do not count: DISC lets the server finish them). */
  private get isBusy(): boolean {
    if (this.waiting.length > 0) return true;
    for (const pending of this.inFlight.values()) if (!pending.abandoned) return true;
    return false;
  }

  /** Why the connection stopped, once it has. */
  get error(): SyncproxyError | undefined {
    return this.failure;
  }

  /** False once the connection failed or is shutting down: send nothing more on it. */
  get isUsable(): boolean {
    return this.failure === undefined && !this.draining;
  }

  read(offset: number, target: Uint8Array, signal?: AbortSignal): Promise<void> {
    // A READ settles with no descriptors: no `.then` to map it (one microtask turn less per request).
    return this.request(Command.READ, offset, target.length, {
      target,
      signal,
    }) as Promise<unknown> as Promise<void>;
  }

  write(offset: number, data: Uint8Array, flags: number, signal?: AbortSignal): Promise<void> {
    return this.request(Command.WRITE, offset, data.length, { payload: data, flags, signal }).then(
      () => undefined,
    );
  }

  writeZeroes(offset: number, length: number, flags: number, signal?: AbortSignal): Promise<void> {
    return this.request(Command.WRITE_ZEROES, offset, length, { flags, signal }).then(() => undefined);
  }

  trim(offset: number, length: number, signal?: AbortSignal): Promise<void> {
    return this.request(Command.TRIM, offset, length, { signal }).then(() => undefined);
  }

  flush(signal?: AbortSignal): Promise<void> {
    return this.request(Command.FLUSH, 0, 0, { signal }).then(() => undefined);
  }

  async blockStatus(
    offset: number,
    length: number,
    contextId: number,
    signal?: AbortSignal,
  ): Promise<BlockStatusDescriptor[]> {
    return (await this.request(Command.BLOCK_STATUS, offset, length, { contextId, signal })) ?? [];
  }

  /**
   * Waits for the requests already queued, then sends DISC and closes. A
   * connection that already failed just closes.
   */
  async close(): Promise<void> {
    this.draining = true;
    if (this.failure === undefined && this.isBusy) {
      await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    }
    if (this.failure === undefined && !this.socket.destroyed) {
      this.disconnect();
      // A server that never closes its side must not hold the caller.
      const timer = setTimeout(() => this.socket.destroy(), 5000);
      await this.closed;
      clearTimeout(timer);
    } else {
      this.socket.destroy();
      await this.closed;
    }
  }

  /** Hard disconnect: fails everything in flight with `error`. */
  destroy(error: SyncproxyError): void {
    this.fail(error);
  }

  private request(
    type: CommandType,
    offset: number,
    length: number,
    options: RequestOptions,
  ): Promise<BlockStatusDescriptor[] | undefined> {
    const command = COMMAND_NAMES[type]!;
    if (this.failure) return Promise.reject(this.failure);
    if (this.draining) {
      return Promise.reject(
        new SyncproxyError(`NBD ${command} refused: the connection to ${this.serverName} is closing`, {
          code: 'network',
        }),
      );
    }
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(abortError(signal, `NBD ${command}`));
    return new Promise((resolve, reject) => {
      const pending: PendingRequest = {
        type,
        flags: options.flags ?? 0,
        offset,
        length,
        cookie: this.nextCookie,
        payload: options.payload,
        target: options.target,
        contextId: options.contextId,
        covered: [],
        descriptors: undefined,
        error: undefined,
        abandoned: false,
        resolve,
        reject,
        cleanup: undefined,
        deadline: 0,
      };
      // Cookies are opaque to the server; 2^32 wrapping is safe with far fewer requests in flight.
      this.nextCookie = this.nextCookie === 0xffffffff ? 1 : this.nextCookie + 1;
      if (signal) {
        const onAbort = () => {
          if (pending.abandoned) return;
          pending.abandoned = true;
          // A queued request is simply dropped; one on the wire must still have its reply read.
          const at = this.waiting.indexOf(pending);
          if (at !== -1) this.waiting.splice(at, 1);
          reject(abortError(signal, `NBD ${command}`));
          if (!this.isBusy) this.wakeIdleWaiters();
        };
        pending.cleanup = listenForAbort(signal, onAbort);
      }
      if (this.inFlight.size < this.maxRequestsInFlight) this.send(pending);
      else this.waiting.push(pending);
    });
  }

  private send(pending: PendingRequest): void {
    pending.deadline = performance.now() + this.requestTimeoutMs;
    this.inFlight.set(pending.cookie, pending);
    if (isLargeRead(pending)) this.largeReadsInFlight++;
    if (this.inFlight.size === 1) this.socket.setTimeout(this.requestTimeoutMs);
    this.deadlineTimer ??= setTimeout(() => this.checkDeadlines(), this.requestTimeoutMs);
    const header = this.header(pending.type, pending.flags, pending.cookie, pending.offset, pending.length);
    // Requests issued in one tick leave in one writev: a syscall per 28-byte header costs more than the read it asks for.
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    this.socket.write(header);
    if (pending.payload) this.socket.write(pending.payload);
  }

  private header(type: number, flags: number, cookie: number, offset: number, length: number): Buffer {
    const header = Buffer.allocUnsafe(REQUEST_HEADER_BYTES);
    header.writeUInt32BE(REQUEST_MAGIC, 0);
    header.writeUInt16BE(flags, 4);
    header.writeUInt16BE(type, 6);
    header.writeUInt32BE(0, 8);
    header.writeUInt32BE(cookie, 12);
    header.writeBigUInt64BE(BigInt(offset), 16);
    header.writeUInt32BE(length, 24);
    return header;
  }

  private settle(
    pending: PendingRequest,
    error: SyncproxyError | undefined,
    value?: BlockStatusDescriptor[],
  ): void {
    this.inFlight.delete(pending.cookie);
    pending.cleanup?.();
    if (!pending.abandoned) {
      if (error) pending.reject(error);
      else pending.resolve(value);
    }
    while (
      this.waiting.length > 0 &&
      this.inFlight.size < this.maxRequestsInFlight &&
      this.failure === undefined
    ) {
      this.send(this.waiting.shift()!);
    }
    if (this.inFlight.size === 0) {
      this.socket.setTimeout(0);
      clearTimeout(this.deadlineTimer);
      this.deadlineTimer = undefined;
    }
    if (!this.isBusy) {
      // Soft disconnect after ESHUTDOWN (proto.md) once nothing is left to wait for.
      if (this.draining && this.failure === undefined && this.inFlight.size === 0) this.disconnect();
      this.wakeIdleWaiters();
    }
  }

  private disconnect(): void {
    if (this.discSent || this.socket.destroyed) return;
    this.discSent = true;
    this.socket.end(this.header(Command.DISC, 0, 0, 0, 0));
  }

  private wakeIdleWaiters(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const wake of waiters) wake();
  }

  /**
   * The socket's idle timeout restarts on every byte, so a server that
   * trickles a reply (one byte every few seconds) would hold a request
   * forever: each request also has a total deadline, `requestTimeoutMs`
   * after it was sent. Requests leave in order, so the first one still in
   * flight has the earliest deadline.
   */
  private checkDeadlines(): void {
    this.deadlineTimer = undefined;
    const oldest = this.inFlight.values().next().value as PendingRequest | undefined;
    if (oldest === undefined || this.failure !== undefined) return;
    const left = oldest.deadline - performance.now();
    if (left > 0) {
      this.deadlineTimer = setTimeout(() => this.checkDeadlines(), Math.ceil(left));
      return;
    }
    const command = COMMAND_NAMES[oldest.type]!;
    const sentAt = oldest.deadline - this.requestTimeoutMs;
    this.fail(
      new SyncproxyError(
        this.lastReceivedAt < sentAt
          ? `NBD server ${this.serverName} sent nothing for ${this.requestTimeoutMs} ms with ${this.inFlight.size} requests in flight`
          : `NBD ${command} of ${oldest.length} bytes at ${oldest.offset} on ${this.serverName} got no complete reply within ${this.requestTimeoutMs} ms`,
        { code: 'timeout' },
      ),
    );
  }

  private fail(error: SyncproxyError): void {
    if (this.failure) return;
    this.failure = error;
    clearTimeout(this.deadlineTimer);
    this.deadlineTimer = undefined;
    this.socket.destroy();
    const all = [...this.inFlight.values(), ...this.waiting];
    this.inFlight.clear();
    this.waiting.length = 0;
    this.largeReadsInFlight = 0;
    for (const pending of all) {
      pending.cleanup?.();
      if (!pending.abandoned) pending.reject(error);
    }
    this.wakeIdleWaiters();
  }

  private parse(): void {
    try {
      while (this.failure === undefined && this.step()) {
        // step() consumed something; keep going while whole pieces are queued.
      }
    } catch (error) {
      this.fail(
        SyncproxyError.isInstance(error)
          ? error
          : protocolError(`cannot parse reply from ${this.serverName}`, { cause: String(error) }),
      );
    }
  }

  /** Parses one piece of the reply stream; false when more bytes are needed. */
  private step(): boolean {
    const queue = this.queue;
    switch (this.state) {
      case ParseState.Header: {
        if (queue.length < 4) return false;
        const magic = queue.uint32At(0);
        if (magic === STRUCTURED_REPLY_MAGIC) {
          if (queue.length < STRUCTURED_REPLY_HEADER_BYTES) return false;
          this.onChunkHeader(queue.take(STRUCTURED_REPLY_HEADER_BYTES));
          return true;
        }
        if (magic === SIMPLE_REPLY_MAGIC) {
          if (queue.length < SIMPLE_REPLY_HEADER_BYTES) return false;
          this.onSimpleReply(queue.take(SIMPLE_REPLY_HEADER_BYTES));
          return true;
        }
        throw protocolError(
          `${this.serverName} sent bad reply magic 0x${magic.toString(16).padStart(8, '0')}`,
        );
      }
      case ParseState.DataOffset: {
        if (queue.length < 8) return false;
        const pending = this.current!;
        const offset = Number(queue.take(8).readBigUInt64BE(0));
        const size = this.chunkLength - 8;
        this.cover(pending, offset, size, 'OFFSET_DATA');
        this.dataAt = offset - pending.offset;
        this.dataLeft = size;
        this.state = ParseState.Data;
        return true;
      }
      case ParseState.Data: {
        if (queue.length === 0) return false;
        const pending = this.current!;
        const copied = queue.copyTo(pending.target!, this.dataAt, this.dataLeft);
        this.dataAt += copied;
        this.dataLeft -= copied;
        if (this.dataLeft > 0) return false;
        this.endChunk();
        return true;
      }
      case ParseState.Payload: {
        if (queue.length < this.chunkLength) return false;
        this.onChunkPayload(queue.take(this.chunkLength));
        return true;
      }
    }
  }

  private lookup(cookieHigh: number, cookieLow: number): PendingRequest {
    const pending = cookieHigh === 0 ? this.inFlight.get(cookieLow) : undefined;
    if (!pending) {
      throw protocolError(`${this.serverName} replied to unknown cookie ${cookieHigh * 2 ** 32 + cookieLow}`);
    }
    return pending;
  }

  private onSimpleReply(header: Buffer): void {
    const errno = header.readUInt32BE(4);
    const pending = this.lookup(header.readUInt32BE(8), header.readUInt32BE(12));
    if (errno !== 0) {
      this.onErrno(pending, errno, undefined);
      this.finish(pending);
      return;
    }
    if (pending.type === Command.READ) {
      if (this.export.structuredReplies) {
        throw protocolError(
          `${this.serverName} sent a simple reply to READ after structured replies were agreed`,
        );
      }
      pending.covered.push([0, pending.length]);
      this.current = pending;
      this.chunkFlags = REPLY_FLAG_DONE;
      this.dataAt = 0;
      this.dataLeft = pending.length;
      this.state = pending.length > 0 ? ParseState.Data : ParseState.Header;
      if (pending.length === 0) this.finish(pending);
      return;
    }
    if (pending.type === Command.BLOCK_STATUS) {
      throw protocolError(`${this.serverName} sent a simple reply to BLOCK_STATUS`);
    }
    this.finish(pending);
  }

  private onChunkHeader(header: Buffer): void {
    const flags = header.readUInt16BE(4);
    const type = header.readUInt16BE(6);
    const pending = this.lookup(header.readUInt32BE(8), header.readUInt32BE(12));
    const length = header.readUInt32BE(16);
    const command = COMMAND_NAMES[pending.type]!;
    this.current = pending;
    this.chunkFlags = flags;
    this.chunkType = type;
    this.chunkLength = length;
    switch (type) {
      case ChunkType.NONE:
        if (length !== 0) throw protocolError(`${this.serverName} sent a NONE chunk of ${length} bytes`);
        if ((flags & REPLY_FLAG_DONE) === 0)
          throw protocolError(`${this.serverName} sent a NONE chunk without DONE`);
        this.endChunk();
        return;
      case ChunkType.OFFSET_DATA:
        if (pending.type !== Command.READ)
          throw protocolError(`${this.serverName} sent OFFSET_DATA in reply to ${command}`);
        if (length < 9)
          throw protocolError(`${this.serverName} sent an OFFSET_DATA chunk of ${length} bytes`);
        if (length - 8 > pending.length) {
          throw protocolError(
            `${this.serverName} sent ${length - 8} bytes of data for a READ of ${pending.length} bytes (oversize reply)`,
          );
        }
        this.state = ParseState.DataOffset;
        return;
      case ChunkType.OFFSET_HOLE:
        if (pending.type !== Command.READ)
          throw protocolError(`${this.serverName} sent OFFSET_HOLE in reply to ${command}`);
        if (length !== 12)
          throw protocolError(
            `${this.serverName} sent an OFFSET_HOLE chunk of ${length} bytes (expected 12)`,
          );
        break;
      case ChunkType.BLOCK_STATUS:
        if (pending.type !== Command.BLOCK_STATUS) {
          throw protocolError(`${this.serverName} sent BLOCK_STATUS in reply to ${command}`);
        }
        if (length < 12 || (length - 4) % 8 !== 0 || length > MAX_CHUNK_PAYLOAD) {
          throw protocolError(
            `${this.serverName} sent a BLOCK_STATUS chunk of ${length} bytes (oversize or malformed reply)`,
          );
        }
        break;
      default:
        if ((type & CHUNK_ERROR_BIT) === 0) {
          // proto.md: a client must hard-disconnect on an unknown non-error chunk type.
          throw protocolError(`${this.serverName} sent unknown reply chunk type ${type}`, {
            chunkType: type,
          });
        }
        if (length < 6 || length > MAX_ERROR_CHUNK) {
          throw protocolError(
            `${this.serverName} sent an error chunk of ${length} bytes (oversize or malformed reply)`,
          );
        }
    }
    this.state = ParseState.Payload;
  }

  private onChunkPayload(payload: Buffer): void {
    const pending = this.current!;
    switch (this.chunkType) {
      case ChunkType.OFFSET_HOLE: {
        const offset = Number(payload.readBigUInt64BE(0));
        const size = payload.readUInt32BE(8);
        if (size === 0) throw protocolError(`${this.serverName} sent an empty OFFSET_HOLE`);
        this.cover(pending, offset, size, 'OFFSET_HOLE');
        pending.target!.fill(0, offset - pending.offset, offset - pending.offset + size);
        break;
      }
      case ChunkType.BLOCK_STATUS: {
        const contextId = payload.readUInt32BE(0);
        if (pending.descriptors !== undefined) {
          throw protocolError(`${this.serverName} sent two BLOCK_STATUS chunks for one request`);
        }
        if (contextId !== pending.contextId) {
          throw protocolError(
            `${this.serverName} answered BLOCK_STATUS for meta context ${contextId}, not ${pending.contextId}`,
          );
        }
        const descriptors: BlockStatusDescriptor[] = [];
        for (let at = 4; at < payload.length; at += 8) {
          const length = payload.readUInt32BE(at);
          if (length === 0)
            throw protocolError(`${this.serverName} sent a zero-length extent in BLOCK_STATUS`);
          descriptors.push({ length, flags: payload.readUInt32BE(at + 4) });
        }
        pending.descriptors = descriptors;
        break;
      }
      default: {
        // An error chunk (ERROR, ERROR_OFFSET or one this client does not know, which it treats as ERROR).
        const errno = payload.readUInt32BE(0);
        const messageLength = payload.readUInt16BE(4);
        if (6 + messageLength > payload.length) {
          throw protocolError(`${this.serverName} sent an error chunk whose message overruns it`);
        }
        this.onErrno(pending, errno, sanitize(payload.toString('utf8', 6, 6 + messageLength)));
      }
    }
    this.endChunk();
  }

  /** Checks a data or hole chunk lies in the request and overlaps nothing before it. */
  private cover(pending: PendingRequest, offset: number, size: number, what: string): void {
    const start = offset - pending.offset;
    const end = start + size;
    if (start < 0 || end > pending.length) {
      throw protocolError(
        `${this.serverName} sent ${what} for [${offset}, ${offset + size}) outside the READ of [${pending.offset}, ${pending.offset + pending.length}) (oversize reply)`,
      );
    }
    for (const [s, e] of pending.covered) {
      if (start < e && s < end)
        throw protocolError(`${this.serverName} sent overlapping ${what} chunks for one READ`);
    }
    pending.covered.push([start, end]);
  }

  private onErrno(pending: PendingRequest, errno: number, serverMessage: string | undefined): void {
    if (errno === 0) throw protocolError(`${this.serverName} sent an error chunk with error 0`);
    pending.error ??= nbdCommandError(errno, {
      command: COMMAND_NAMES[pending.type]!,
      offset: pending.offset,
      length: pending.length,
      exportName: this.export.exportName,
      serverMessage,
    });
    // proto.md: ESHUTDOWN asks for a soft disconnect: finish what is in flight, send nothing new.
    if (errno === NbdErrno.ESHUTDOWN) this.draining = true;
  }

  private endChunk(): void {
    this.state = ParseState.Header;
    const pending = this.current!;
    this.current = undefined;
    if ((this.chunkFlags & REPLY_FLAG_DONE) !== 0) this.finish(pending);
  }

  private finish(pending: PendingRequest): void {
    if (pending.error) {
      this.settle(pending, pending.error);
      return;
    }
    if (pending.type === Command.READ) {
      const covered = pending.covered.reduce((n, [s, e]) => n + e - s, 0);
      if (covered !== pending.length) {
        // Chunks never overlap (checked), so a short sum means a gap: never hand back a partial read.
        throw protocolError(
          `${this.serverName} finished a READ of ${pending.length} bytes at offset ${pending.offset} after sending only ${covered}`,
        );
      }
    }
    if (pending.type === Command.BLOCK_STATUS && pending.descriptors === undefined) {
      throw protocolError(`${this.serverName} finished BLOCK_STATUS without a BLOCK_STATUS chunk`);
    }
    this.settle(pending, undefined, pending.descriptors);
  }
}

function isLargeRead(pending: PendingRequest): boolean {
  return pending.type === Command.READ && pending.length >= LARGE_READ_BYTES;
}

function connectError(error: Error, serverName: string): SyncproxyError {
  const code = (error as { code?: unknown }).code;
  // A missing socket file or a refused port is what a restarting server looks like: worth retrying.
  return new SyncproxyError(
    `cannot connect to NBD server ${serverName}: ${typeof code === 'string' ? code : error.message}`,
    { code: code === 'ETIMEDOUT' ? 'timeout' : 'network', retryable: true, cause: error },
  );
}

function connectionLost(error: Error | undefined, serverName: string, inFlight: number): SyncproxyError {
  const code = (error as { code?: unknown } | undefined)?.code;
  const why = typeof code === 'string' ? ` (${code})` : '';
  return new SyncproxyError(
    `NBD connection to ${serverName} was lost${why}${inFlight > 0 ? ` with ${inFlight} requests in flight` : ''}`,
    { code: 'network', retryable: true, cause: error },
  );
}
