import { createServer, type Server, type Socket } from 'node:net';

// A small NBD server on 127.0.0.1 for protocol tests: correct by default, and
// told how to misbehave per test. Only what the client under test uses.

const NBDMAGIC = 0x4e42444d41474943n;
const IHAVEOPT = 0x49484156454f5054n;
const REPLY_MAGIC = 0x3e889045565a9n;

export const REP_ACK = 1;
export const REP_INFO = 3;
export const REP_META_CONTEXT = 4;
export const REP_ERR_UNSUP = 0x80000001;
export const REP_ERR_UNKNOWN = 0x80000006;

export interface FakeRequest {
  flags: number;
  type: number;
  cookie: Buffer;
  offset: number;
  length: number;
  payload?: Buffer;
  /** Which connection sent it: 1 for the first the server accepted, and so on. */
  connection: number;
}

export interface ReplyWriter {
  simple(cookie: Buffer, errno: number, data?: Uint8Array): void;
  chunk(cookie: Buffer, flags: number, type: number, payload: Uint8Array): void;
  raw(bytes: Uint8Array): void;
  socket: Socket;
}

export interface FakeServerOptions {
  /** The disk of the default export. */
  disk: Uint8Array;
  /** Export names the server knows (default: only ""). */
  exportNames?: string[];
  /** Transmission flags (default: HAS_FLAGS | SEND_FLUSH | SEND_WRITE_ZEROES | SEND_TRIM). */
  transmissionFlags?: number;
  /** [minimum, preferred, maximum payload]; omitted = no INFO_BLOCK_SIZE. */
  blockSize?: [number, number, number];
  structuredReplies?: boolean;
  baseAllocation?: boolean;
  /** Sent instead of the proper greeting. */
  greeting?: Buffer;
  /** Replace the server's answer to a request; return false to fall back to the default. */
  onRequest?(request: FakeRequest, reply: ReplyWriter, disk: Uint8Array): boolean;
  /** Split READ replies into chunks of at most this many bytes, sent last first (default: one chunk). */
  readChunkBytes?: number;
  /** At most this many descriptors per BLOCK_STATUS reply (default: all). */
  maxExtentsPerReply?: number;
  /** Block-status granularity when describing the disk (default 4096). */
  extentBytes?: number;
  /** Called with an option's reply before it is written, to replace it. */
  onOption?(option: number, reply: ReplyWriter): boolean;
  /**
   * Connections served at once; later ones are accepted by the kernel but
   * never greeted, as a server out of worker slots leaves them (default: all).
   */
  maxConnections?: number;
  /** Connections greeted over the server's life; later ones are accepted but never greeted (default: all). */
  greetConnections?: number;
}

export interface FakeNbdServer {
  uri: string;
  port: number;
  /** Every request received, in order. */
  requests: FakeRequest[];
  connections: number;
  /** Connections open now. */
  openConnections: number;
  close(): Promise<void>;
}

export async function startFakeNbdServer(options: FakeServerOptions): Promise<FakeNbdServer> {
  const sockets = new Set<Socket>();
  const requests: FakeRequest[] = [];
  const state = { connections: 0 };
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    state.connections++;
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    if (options.maxConnections !== undefined && sockets.size > options.maxConnections) return;
    if (options.greetConnections !== undefined && state.connections > options.greetConnections) return;
    serve(socket, options, requests, state.connections);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    uri: `nbd://127.0.0.1:${port}/`,
    port,
    requests,
    get connections() {
      return state.connections;
    },
    get openConnections() {
      return sockets.size;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function serve(
  socket: Socket,
  options: FakeServerOptions,
  requests: FakeRequest[],
  connection: number,
): void {
  let buffered = Buffer.alloc(0);
  let waiter: { n: number; resolve: (b: Buffer) => void } | undefined;
  let ended = false;
  socket.on('data', (d: Buffer) => {
    buffered = Buffer.concat([buffered, d]);
    pump();
  });
  socket.on('close', () => {
    ended = true;
  });
  const pump = () => {
    if (waiter && buffered.length >= waiter.n) {
      const { n, resolve } = waiter;
      waiter = undefined;
      const out = buffered.subarray(0, n);
      buffered = buffered.subarray(n);
      resolve(out);
    }
  };
  const read = (n: number) =>
    new Promise<Buffer>((resolve) => {
      waiter = { n, resolve };
      pump();
    });
  const writer: ReplyWriter = {
    socket,
    raw: (bytes) => {
      if (!socket.destroyed) socket.write(bytes);
    },
    simple: (cookie, errno, data) => {
      const h = Buffer.alloc(16);
      h.writeUInt32BE(0x67446698, 0);
      h.writeUInt32BE(errno, 4);
      cookie.copy(h, 8);
      writer.raw(data ? Buffer.concat([h, data]) : h);
    },
    chunk: (cookie, flags, type, payload) => {
      const h = Buffer.alloc(20);
      h.writeUInt32BE(0x668e33ef, 0);
      h.writeUInt16BE(flags, 4);
      h.writeUInt16BE(type, 6);
      cookie.copy(h, 8);
      h.writeUInt32BE(payload.length, 16);
      writer.raw(Buffer.concat([h, payload]));
    },
  };
  const optionReply = (option: number, type: number, data: Uint8Array = new Uint8Array(0)) => {
    const h = Buffer.alloc(20);
    h.writeBigUInt64BE(REPLY_MAGIC, 0);
    h.writeUInt32BE(option, 8);
    h.writeUInt32BE(type, 12);
    h.writeUInt32BE(data.length, 16);
    writer.raw(Buffer.concat([h, data]));
  };

  void (async () => {
    if (options.greeting) {
      writer.raw(options.greeting);
      return;
    }
    const greeting = Buffer.alloc(18);
    greeting.writeBigUInt64BE(NBDMAGIC, 0);
    greeting.writeBigUInt64BE(IHAVEOPT, 8);
    greeting.writeUInt16BE(3, 16);
    writer.raw(greeting);
    await read(4);
    const disk = options.disk;
    let structured = false;
    let contextId: number | undefined;
    const known = options.exportNames ?? [''];
    while (!ended) {
      const header = await read(16);
      const option = header.readUInt32BE(8);
      const data = await read(header.readUInt32BE(12));
      if (options.onOption?.(option, writer)) {
        if (option === 7 || option === 1) return;
        continue;
      }
      if (option === 8) {
        if (options.structuredReplies === false) optionReply(option, REP_ERR_UNSUP);
        else {
          structured = true;
          optionReply(option, REP_ACK);
        }
      } else if (option === 10) {
        if (options.baseAllocation !== false) {
          contextId = 7;
          const name = Buffer.from('base:allocation');
          const payload = Buffer.alloc(4 + name.length);
          payload.writeUInt32BE(contextId, 0);
          name.copy(payload, 4);
          optionReply(option, REP_META_CONTEXT, payload);
        }
        optionReply(option, REP_ACK);
      } else if (option === 7) {
        const name = data.toString('utf8', 4, 4 + data.readUInt32BE(0));
        if (!known.includes(name)) {
          optionReply(option, REP_ERR_UNKNOWN, Buffer.from(`export '${name}' does not exist`));
          continue;
        }
        const info = Buffer.alloc(12);
        info.writeUInt16BE(0, 0);
        info.writeBigUInt64BE(BigInt(disk.length), 2);
        info.writeUInt16BE(options.transmissionFlags ?? 1 | 4 | 32 | 64, 10);
        optionReply(option, REP_INFO, info);
        if (options.blockSize) {
          const bs = Buffer.alloc(14);
          bs.writeUInt16BE(3, 0);
          bs.writeUInt32BE(options.blockSize[0], 2);
          bs.writeUInt32BE(options.blockSize[1], 6);
          bs.writeUInt32BE(options.blockSize[2], 10);
          optionReply(option, REP_INFO, bs);
        }
        optionReply(option, REP_ACK);
        break;
      } else {
        optionReply(option, REP_ERR_UNSUP);
      }
    }
    while (!ended) {
      const h = await read(28);
      const request: FakeRequest = {
        flags: h.readUInt16BE(4),
        type: h.readUInt16BE(6),
        cookie: Buffer.from(h.subarray(8, 16)),
        offset: Number(h.readBigUInt64BE(16)),
        length: h.readUInt32BE(24),
        connection,
      };
      if (request.type === 1) request.payload = Buffer.from(await read(request.length));
      requests.push(request);
      if (request.type === 2) {
        socket.end();
        return;
      }
      if (options.onRequest?.(request, writer, disk)) continue;
      answer(request, writer, disk, options, structured, contextId);
    }
  })();
}

function answer(
  request: FakeRequest,
  reply: ReplyWriter,
  disk: Uint8Array,
  options: FakeServerOptions,
  structured: boolean,
  contextId: number | undefined,
): void {
  const { offset, length, cookie } = request;
  if (offset + length > disk.length) {
    if (structured) reply.chunk(cookie, 1, 0x8001, errorPayload(22, 'out of range'));
    else reply.simple(cookie, 22);
    return;
  }
  switch (request.type) {
    case 0: {
      if (!structured) {
        reply.simple(cookie, 0, disk.subarray(offset, offset + length));
        return;
      }
      const piece = options.readChunkBytes ?? length;
      const chunks: Array<[number, number]> = [];
      for (let at = offset; at < offset + length; at += piece)
        chunks.push([at, Math.min(piece, offset + length - at)]);
      chunks.reverse();
      for (const [at, n] of chunks) {
        const bytes = disk.subarray(at, at + n);
        if (bytes.every((b) => b === 0)) {
          const p = Buffer.alloc(12);
          p.writeBigUInt64BE(BigInt(at), 0);
          p.writeUInt32BE(n, 8);
          reply.chunk(cookie, 0, 2, p);
        } else {
          const p = Buffer.alloc(8 + n);
          p.writeBigUInt64BE(BigInt(at), 0);
          p.set(bytes, 8);
          reply.chunk(cookie, 0, 1, p);
        }
      }
      reply.chunk(cookie, 1, 0, new Uint8Array(0));
      return;
    }
    case 1:
      disk.set(request.payload!, offset);
      reply.simple(cookie, 0);
      return;
    case 6:
      disk.fill(0, offset, offset + length);
      reply.simple(cookie, 0);
      return;
    case 3:
    case 4:
      reply.simple(cookie, 0);
      return;
    case 7: {
      const unit = options.extentBytes ?? 4096;
      const descriptors: Array<[number, number]> = [];
      let at = offset;
      while (
        at < offset + length &&
        descriptors.length < (options.maxExtentsPerReply ?? Number.POSITIVE_INFINITY)
      ) {
        const end = Math.min(disk.length, (Math.floor(at / unit) + 1) * unit);
        const zero = disk.subarray(at, end).every((b) => b === 0);
        const flags = zero ? 3 : 0;
        const last = descriptors[descriptors.length - 1];
        if (last && last[1] === flags) last[0] += end - at;
        else descriptors.push([end - at, flags]);
        at = end;
      }
      const p = Buffer.alloc(4 + 8 * descriptors.length);
      p.writeUInt32BE(contextId ?? 0, 0);
      descriptors.forEach(([n, f], i) => {
        p.writeUInt32BE(n, 4 + 8 * i);
        p.writeUInt32BE(f, 8 + 8 * i);
      });
      reply.chunk(cookie, 1, 5, p);
      return;
    }
    default:
      reply.simple(cookie, 22);
  }
}

export function errorPayload(errno: number, message: string): Buffer {
  const m = Buffer.from(message);
  const p = Buffer.alloc(6 + m.length);
  p.writeUInt32BE(errno, 0);
  p.writeUInt16BE(m.length, 4);
  m.copy(p, 6);
  return p;
}
