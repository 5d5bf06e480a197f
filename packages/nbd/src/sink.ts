import { type BlockSink, type SinkWriteOptions, SyncproxyError } from '@syncproxy/core';
import { NbdClient, type NbdClientOptions } from './client.js';

export interface NbdSinkOptions extends NbdClientOptions {
  /** An already connected client to write through; the sink then leaves closing it to you (it still flushes). */
  client?: NbdClient;
}

/** Zero bytes sent for servers without WRITE_ZEROES, a piece at a time. */
const ZERO_PIECE_BYTES = 4 * 1024 * 1024;

/**
 * A {@link BlockSink} that writes a disk into an NBD export: WRITE for data,
 * WRITE_ZEROES (fast-zero where offered) for zero ranges, FLUSH on close.
 */
export class NbdSink implements BlockSink {
  private readonly options: NbdSinkOptions;
  private client: NbdClient | undefined;
  private connecting: Promise<NbdClient> | undefined;
  private readonly ownsClient: boolean;
  /** Cleared when the server refuses FAST_ZERO once (ENOTSUP): later zeroing does not ask again. */
  private tryFastZero = true;
  private zeroPiece: Uint8Array | undefined;

  constructor(options: NbdSinkOptions) {
    this.options = options;
    this.client = options.client;
    this.ownsClient = options.client === undefined;
  }

  /** The export's size, once connected. */
  get size(): number | undefined {
    return this.client?.size;
  }

  /** Connects and checks the export can hold a disk of `diskSize` bytes. */
  async open(diskSize: number): Promise<void> {
    const client = await this.connected();
    if (client.info.readOnly) {
      throw new SyncproxyError(`NBD export "${client.exportName}" is read-only: it cannot be a sink`, {
        code: 'permission',
        retryable: false,
      });
    }
    if (client.size < diskSize) {
      throw new SyncproxyError(
        `NBD export "${client.exportName}" is ${client.size} bytes, smaller than the ${diskSize}-byte disk`,
        { code: 'config', retryable: false, details: { exportSize: client.size, diskSize } },
      );
    }
  }

  async write(offset: number, data: Uint8Array, options: SinkWriteOptions = {}): Promise<void> {
    const client = await this.connected();
    await client.write(offset, data, options);
  }

  async writeZeroes(offset: number, length: number, options: SinkWriteOptions = {}): Promise<void> {
    const client = await this.connected();
    if (length === 0) return;
    if (!client.info.canWriteZeroes) {
      await this.writeZeroBytes(client, offset, length, options);
      return;
    }
    const fastZero = this.tryFastZero && client.info.canFastZero;
    try {
      await client.writeZeroes(offset, length, { ...options, fastZero });
    } catch (error) {
      if (!fastZero || !SyncproxyError.hasCode(error, 'unsupported')) throw error;
      // The server cannot zero this fast; it still can zero it, which beats sending the bytes.
      this.tryFastZero = false;
      await client.writeZeroes(offset, length, options);
    }
  }

  async read(offset: number, length: number, options: SinkWriteOptions = {}): Promise<Uint8Array> {
    const client = await this.connected();
    return client.read(offset, length, options);
  }

  /** Reads `target.length` bytes of the export at `offset` into `target`. */
  async readInto(offset: number, target: Uint8Array, options: SinkWriteOptions = {}): Promise<void> {
    const client = await this.connected();
    await client.readInto(target, offset, options);
  }

  async flush(): Promise<void> {
    if (!this.client) return;
    await this.client.flush();
  }

  /** Flushes, then disconnects (when the sink opened the connection). */
  async close(): Promise<void> {
    const client = this.client ?? (await this.connecting?.catch(() => undefined));
    if (!client) return;
    try {
      await client.flush();
    } finally {
      if (this.ownsClient) await client.close();
    }
  }

  private async writeZeroBytes(
    client: NbdClient,
    offset: number,
    length: number,
    options: SinkWriteOptions,
  ): Promise<void> {
    this.zeroPiece ??= new Uint8Array(Math.min(ZERO_PIECE_BYTES, length));
    const pieces: Promise<void>[] = [];
    for (let at = offset; at < offset + length; at += ZERO_PIECE_BYTES) {
      const n = Math.min(ZERO_PIECE_BYTES, offset + length - at);
      if (this.zeroPiece.length < n) this.zeroPiece = new Uint8Array(ZERO_PIECE_BYTES);
      pieces.push(client.write(at, this.zeroPiece.subarray(0, n), options));
    }
    await Promise.all(pieces);
  }

  private async connected(): Promise<NbdClient> {
    if (this.client) return this.client;
    this.connecting ??= NbdClient.connect(this.options).then(
      (client) => {
        this.client = client;
        return client;
      },
      (error) => {
        this.connecting = undefined;
        throw error;
      },
    );
    return this.connecting;
  }
}
