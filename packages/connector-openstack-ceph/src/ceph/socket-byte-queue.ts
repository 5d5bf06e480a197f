import { SyncproxyError } from '@syncproxy/core';
import { ByteQueue } from './export-diff.js';

/** Bytes per read while no caller's buffer waits: record headers, and the first read after a request. */
const SCRATCH_BYTES = 64 * 1024;

/** What the queue needs of its socket: flow control, events, and an end. */
export interface QueueSocket {
  pause(): unknown;
  resume(): unknown;
  destroy(): unknown;
  /** 'end' and 'close' end the queue; 'error' (with the error) fails it. */
  on(event: 'end' | 'close' | 'error', listener: (error?: Error) => void): unknown;
}

interface DirectRead {
  /** The part of the caller's buffer this read fills, from its start. */
  view: Uint8Array;
  filled: number;
  resolve(filled: number): void;
  reject(error: unknown): void;
}

/**
 * A {@link ByteQueue} over the Unix socket `rbd export-diff` writes to, read with net's `onread`
 * (give {@link SocketByteQueue.onread} to `net.connect`): while the parser waits for the data of a
 * `w` record, each socket read goes straight into the caller's buffer, so the kernel copies every
 * byte once. Unlike a pipe, whose lock makes the writer and the reader take turns copying, rbd
 * writes into the socket while the previous bytes are read out of it.
 *
 * Record headers, and the first read after each request (chosen before the request was known),
 * land in a 64 KiB scratch buffer. Reading is driven by demand: after a scratch read or a filled
 * request the socket pauses until the parser asks again, so scratch bytes are never overwritten
 * before they are taken, and what rbd writes meanwhile waits in the socket (rbd blocks when it is
 * full).
 */
export class SocketByteQueue extends ByteQueue {
  readonly #scratch = new Uint8Array(SCRATCH_BYTES);
  #socket: QueueSocket | undefined;
  /** Bytes read into the scratch buffer that nobody has taken yet (the socket is paused meanwhile). */
  #held: Uint8Array | undefined;
  /** The caller's buffer the socket reads into, until it is full. */
  #direct: DirectRead | undefined;
  /** The last view of {@link #direct} handed to the socket as its next read's buffer. */
  #directView: Uint8Array | undefined;
  #waiter: { resolve(chunk: Uint8Array | undefined): void; reject(error: unknown): void } | undefined;
  #eof = false;
  #failure: unknown;
  protected override readonly directMinBytes = 4096;

  /** net's `onread` option: the buffer each read goes into, and the callback after it. */
  readonly onread = {
    buffer: (): Uint8Array => {
      const direct = this.#direct;
      if (direct === undefined) return this.#scratch;
      this.#directView = direct.view.subarray(direct.filled);
      return this.#directView;
    },
    callback: (bytes: number, buffer: Uint8Array): boolean => this.#received(bytes, buffer),
  };

  /** The socket the reads come from: its end and errors end the queue, and reads resume on demand. */
  attach(socket: QueueSocket): void {
    this.#socket = socket;
    socket.on('end', () => this.#end());
    socket.on('close', () => this.#end());
    socket.on('error', (error) =>
      this.#fail(
        new SyncproxyError(`reading rbd export-diff from its socket failed: ${error?.message}`, {
          code: 'protocol',
          retryable: false,
          cause: error,
        }),
      ),
    );
    if (this.#direct !== undefined || this.#waiter !== undefined) socket.resume();
  }

  protected nextChunk(): Promise<Uint8Array | undefined> {
    const held = this.#held;
    if (held !== undefined) {
      this.#held = undefined;
      return Promise.resolve(held);
    }
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    if (this.#eof) return Promise.resolve(undefined);
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject };
      this.#socket?.resume();
    });
  }

  protected override readDirect(target: Uint8Array, at: number, length: number): Promise<number> | undefined {
    // Bytes already read come first, through the chunk.
    if (this.#held !== undefined) return undefined;
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    if (this.#eof) return Promise.resolve(0);
    return new Promise((resolve, reject) => {
      this.#direct = { view: target.subarray(at, at + length), filled: 0, resolve, reject };
      this.#socket?.resume();
    });
  }

  protected async release(): Promise<void> {
    this.#socket?.destroy();
    this.#end();
  }

  /** One socket read of `bytes` into `buffer`; false pauses the socket. */
  #received(bytes: number, buffer: Uint8Array): boolean {
    if (buffer === this.#scratch) return this.#receivedScratch(this.#scratch.subarray(0, bytes));
    const direct = this.#direct;
    if (direct === undefined || buffer !== this.#directView) {
      // A direct view is handed out only while its request waits, and only data, the end or a failure
      // settles a request (after which no read comes): anything else is a bug, not data to place.
      this.#fail(
        new SyncproxyError('rbd export-diff bytes arrived in a buffer no read waits for', {
          code: 'internal',
          retryable: false,
        }),
      );
      return false;
    }
    direct.filled += bytes;
    if (direct.filled < direct.view.length) return true;
    this.#direct = undefined;
    direct.resolve(direct.filled);
    return false;
  }

  #receivedScratch(chunk: Uint8Array): boolean {
    const direct = this.#direct;
    if (direct !== undefined) {
      const count = Math.min(chunk.length, direct.view.length - direct.filled);
      direct.view.set(chunk.subarray(0, count), direct.filled);
      direct.filled += count;
      if (count < chunk.length) this.#held = chunk.subarray(count);
      if (direct.filled < direct.view.length) return true;
      this.#direct = undefined;
      direct.resolve(direct.filled);
      return false;
    }
    const waiter = this.#waiter;
    if (waiter !== undefined) {
      this.#waiter = undefined;
      waiter.resolve(chunk);
    } else {
      this.#held = chunk;
    }
    return false;
  }

  #end(): void {
    if (this.#eof) return;
    this.#eof = true;
    const direct = this.#direct;
    this.#direct = undefined;
    // What a read got before the end counts; the next read then sees the end (0) and the parser says
    // what was cut short.
    direct?.resolve(direct.filled);
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.resolve(undefined);
  }

  #fail(error: unknown): void {
    if (this.#failure !== undefined || this.#eof) return;
    this.#failure = error;
    this.#socket?.destroy();
    const direct = this.#direct;
    this.#direct = undefined;
    direct?.reject(error);
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.reject(error);
  }
}
