import type { Socket } from 'node:net';
import { SyncproxyError } from '@syncproxy/core';
import type { ByteQueue } from './byte-queue.js';
import { protocolError } from './nbd-error.js';
import {
  CLISERV_MAGIC,
  DEFAULT_MAX_PAYLOAD,
  DEFAULT_PREFERRED_BLOCK,
  FLAG_C_FIXED_NEWSTYLE,
  FLAG_C_NO_ZEROES,
  FLAG_FIXED_NEWSTYLE,
  FLAG_NO_ZEROES,
  IHAVEOPT,
  Info,
  NBDMAGIC,
  OPTION_REPLY_MAGIC,
  Option,
  REP_ERROR_BIT,
  Reply,
} from './protocol.js';
import type { SocketReceiver } from './socket-receiver.js';

/** What the handshake learned about an export. */
export interface NegotiatedExport {
  exportName: string;
  size: number;
  /** Raw transmission flags. */
  flags: number;
  structuredReplies: boolean;
  /** Selected meta contexts: name -> the id this connection's replies carry. */
  metaContexts: Map<string, number>;
  minBlockSize: number;
  preferredBlockSize: number;
  maxPayload: number;
}

export interface HandshakeOptions {
  exportName: string;
  /** Meta contexts to select, e.g. `base:allocation`. */
  metaContexts: readonly string[];
  /** Names the server in messages. */
  serverName: string;
}

/** Option replies carry names and short messages; anything bigger is a broken or hostile server. */
const MAX_OPTION_REPLY_BYTES = 1024 * 1024;
const MAX_SERVER_MESSAGE_CHARS = 500;

/** The server hung up before the handshake finished; what that means depends on the step. */
class ClosedDuringHandshake extends Error {}

/**
 * Bytes of a socket, awaited n at a time. Used only while negotiating; the
 * transmission phase parses from the same queue with its own listener.
 */
class HandshakeInput {
  private waiter: { need: number; resolve: () => void; reject: (error: Error) => void } | undefined;
  private failure: Error | undefined;
  private readonly onData = (chunk: Buffer) => {
    // The receiver reuses its buffer after this call: keep a copy.
    this.queue.push(Buffer.from(chunk));
    if (this.waiter && this.queue.length >= this.waiter.need) {
      const { resolve } = this.waiter;
      this.waiter = undefined;
      resolve();
    }
  };
  private readonly onEnd = () => this.fail(new ClosedDuringHandshake());
  private readonly onError = (error: Error) => this.fail(error);

  constructor(
    private readonly socket: Socket,
    private readonly receiver: SocketReceiver,
    private readonly queue: ByteQueue,
  ) {
    receiver.onChunk = this.onData;
    socket.on('end', this.onEnd);
    socket.on('close', this.onEnd);
    socket.on('error', this.onError);
  }

  /** Why reading stopped, once it has. */
  get error(): Error | undefined {
    return this.failure;
  }

  async read(n: number): Promise<Buffer> {
    if (this.queue.length < n) {
      if (this.failure) throw this.failure;
      await new Promise<void>((resolve, reject) => {
        this.waiter = { need: n, resolve, reject };
      });
    }
    return this.queue.take(n);
  }

  fail(error: Error): void {
    this.failure ??= error;
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.reject(this.failure);
  }

  detach(): void {
    this.receiver.onChunk = () => {};
    this.socket.off('end', this.onEnd);
    this.socket.off('close', this.onEnd);
    this.socket.off('error', this.onError);
  }
}

interface OptionReply {
  type: number;
  data: Buffer;
}

/**
 * Fixed-newstyle negotiation: STRUCTURED_REPLY, SET_META_CONTEXT, then GO with
 * a request for block-size constraints (falling back to EXPORT_NAME for servers
 * without GO). Leaves the socket in the transmission phase. Errors are typed:
 * `protocol` for a server that breaks the protocol, `not-found` for an unknown
 * export, `network` when the connection drops.
 */
export async function negotiate(
  socket: Socket,
  receiver: SocketReceiver,
  queue: ByteQueue,
  options: HandshakeOptions,
): Promise<NegotiatedExport> {
  const input = new HandshakeInput(socket, receiver, queue);
  try {
    return await runHandshake(socket, input, options);
  } catch (error) {
    if (error instanceof ClosedDuringHandshake) {
      throw new SyncproxyError(
        `NBD server ${options.serverName} closed the connection during the handshake`,
        {
          code: 'network',
        },
      );
    }
    throw error;
  } finally {
    input.detach();
  }
}

async function runHandshake(
  socket: Socket,
  input: HandshakeInput,
  options: HandshakeOptions,
): Promise<NegotiatedExport> {
  const { serverName } = options;
  const greeting = await input.read(18);
  const magic = greeting.readBigUInt64BE(0);
  if (magic !== NBDMAGIC) {
    throw protocolError(`${serverName} is not an NBD server (bad greeting magic 0x${magic.toString(16)})`);
  }
  const second = greeting.readBigUInt64BE(8);
  if (second === CLISERV_MAGIC) {
    throw new SyncproxyError(
      `NBD server ${serverName} speaks the oldstyle protocol, which this client does not support`,
      {
        code: 'unsupported',
      },
    );
  }
  if (second !== IHAVEOPT)
    throw protocolError(`${serverName} sent bad newstyle magic 0x${second.toString(16)}`);
  const serverFlags = greeting.readUInt16BE(16);
  if ((serverFlags & FLAG_FIXED_NEWSTYLE) === 0) {
    throw new SyncproxyError(
      `NBD server ${serverName} does not speak fixed newstyle, which this client needs`,
      {
        code: 'unsupported',
      },
    );
  }
  const noZeroes = (serverFlags & FLAG_NO_ZEROES) !== 0;
  const clientFlags = Buffer.alloc(4);
  clientFlags.writeUInt32BE(FLAG_C_FIXED_NEWSTYLE | (noZeroes ? FLAG_C_NO_ZEROES : 0));
  socket.write(clientFlags);

  const exportName = Buffer.from(options.exportName, 'utf8');
  if (exportName.length > 4096) {
    throw new SyncproxyError(`NBD export name is ${exportName.length} bytes; the protocol allows 4096`, {
      code: 'config',
    });
  }

  // Structured replies: needed for sparse reads and BLOCK_STATUS.
  let structuredReplies = false;
  const structured = await sendOption(socket, input, Option.STRUCTURED_REPLY, Buffer.alloc(0), serverName);
  if (structured.type === Reply.ACK) structuredReplies = true;
  else if (structured.type !== Reply.ERR_UNSUP)
    throw optionError(Option.STRUCTURED_REPLY, structured, options);

  const metaContexts = new Map<string, number>();
  if (structuredReplies && options.metaContexts.length > 0) {
    const queries = options.metaContexts.map((name) => Buffer.from(name, 'utf8'));
    const data = Buffer.alloc(4 + exportName.length + 4 + queries.reduce((n, q) => n + 4 + q.length, 0));
    let at = data.writeUInt32BE(exportName.length, 0);
    at += exportName.copy(data, at);
    at = data.writeUInt32BE(queries.length, at);
    for (const q of queries) {
      at = data.writeUInt32BE(q.length, at);
      at += q.copy(data, at);
    }
    writeOption(socket, Option.SET_META_CONTEXT, data);
    while (true) {
      const reply = await readOptionReply(input, Option.SET_META_CONTEXT, serverName);
      if (reply.type === Reply.ACK) break;
      if (reply.type === Reply.META_CONTEXT) {
        if (reply.data.length < 5)
          throw protocolError(`${serverName} sent a META_CONTEXT reply of ${reply.data.length} bytes`);
        metaContexts.set(reply.data.toString('utf8', 4), reply.data.readUInt32BE(0));
        continue;
      }
      if (reply.type === Reply.ERR_UNKNOWN) throw optionError(Option.SET_META_CONTEXT, reply, options);
      // Any other refusal (ERR_UNSUP, ERR_INVALID...) only costs the allocation map: reads still work.
      if ((reply.type & REP_ERROR_BIT) !== 0) break;
      throw protocolError(`${serverName} answered SET_META_CONTEXT with reply type ${reply.type}`);
    }
  }

  // GO: export name, then the info we ask for (block sizes; we promise to obey them).
  const go = Buffer.alloc(4 + exportName.length + 2 + 2);
  let at = go.writeUInt32BE(exportName.length, 0);
  at += exportName.copy(go, at);
  at = go.writeUInt16BE(1, at);
  go.writeUInt16BE(Info.BLOCK_SIZE, at);
  writeOption(socket, Option.GO, go);
  let size: number | undefined;
  let flags = 0;
  let minBlockSize = 1;
  let preferredBlockSize = DEFAULT_PREFERRED_BLOCK;
  let maxPayload = DEFAULT_MAX_PAYLOAD;
  while (true) {
    const reply = await readOptionReply(input, Option.GO, serverName);
    if (reply.type === Reply.ACK) break;
    if (reply.type === Reply.INFO) {
      if (reply.data.length < 2)
        throw protocolError(`${serverName} sent an INFO reply of ${reply.data.length} bytes`);
      const info = reply.data.readUInt16BE(0);
      if (info === Info.EXPORT) {
        if (reply.data.length !== 12)
          throw protocolError(`${serverName} sent INFO_EXPORT of ${reply.data.length} bytes (expected 12)`);
        size = exportSize(reply.data.readBigUInt64BE(2), serverName);
        flags = reply.data.readUInt16BE(10);
      } else if (info === Info.BLOCK_SIZE) {
        if (reply.data.length !== 14) {
          throw protocolError(
            `${serverName} sent INFO_BLOCK_SIZE of ${reply.data.length} bytes (expected 14)`,
          );
        }
        minBlockSize = reply.data.readUInt32BE(2);
        preferredBlockSize = reply.data.readUInt32BE(6);
        maxPayload = reply.data.readUInt32BE(10);
        checkBlockSizes(minBlockSize, preferredBlockSize, maxPayload, serverName);
      }
      continue;
    }
    if (reply.type === Reply.ERR_UNSUP)
      return exportNameFallback(socket, input, options, noZeroes, structuredReplies);
    throw optionError(Option.GO, reply, options);
  }
  if (size === undefined) throw protocolError(`${serverName} acknowledged GO without sending INFO_EXPORT`);
  return {
    exportName: options.exportName,
    size,
    flags,
    structuredReplies,
    metaContexts,
    minBlockSize,
    preferredBlockSize,
    maxPayload,
  };
}

/** Servers older than GO: the reply has no header and an unknown export just drops the connection. */
async function exportNameFallback(
  socket: Socket,
  input: HandshakeInput,
  options: HandshakeOptions,
  noZeroes: boolean,
  structuredReplies: boolean,
): Promise<NegotiatedExport> {
  writeOption(socket, Option.EXPORT_NAME, Buffer.from(options.exportName, 'utf8'));
  let reply: Buffer;
  try {
    reply = await input.read(noZeroes ? 10 : 134);
  } catch (error) {
    if (error instanceof ClosedDuringHandshake) {
      throw new SyncproxyError(
        `NBD server ${options.serverName} closed the connection on EXPORT_NAME: export "${options.exportName}" probably does not exist`,
        { code: 'not-found' },
      );
    }
    throw error;
  }
  return {
    exportName: options.exportName,
    size: exportSize(reply.readBigUInt64BE(0), options.serverName),
    flags: reply.readUInt16BE(8),
    structuredReplies,
    // Meta contexts were negotiated for the export GO would have opened; without GO they do not hold.
    metaContexts: new Map(),
    minBlockSize: 1,
    preferredBlockSize: DEFAULT_PREFERRED_BLOCK,
    maxPayload: DEFAULT_MAX_PAYLOAD,
  };
}

function exportSize(size: bigint, serverName: string): number {
  if (size > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new SyncproxyError(
      `NBD export on ${serverName} is ${size} bytes, beyond what this client can address`,
      {
        code: 'unsupported',
      },
    );
  }
  return Number(size);
}

function checkBlockSizes(min: number, preferred: number, max: number, serverName: string): void {
  const powerOfTwo = (n: number) => n > 0 && (n & (n - 1)) === 0;
  if (!powerOfTwo(min) || min > 65536) {
    throw protocolError(`${serverName} sent minimum block size ${min} (must be a power of two <= 65536)`);
  }
  if (!powerOfTwo(preferred) || preferred < min) {
    throw protocolError(`${serverName} sent preferred block size ${preferred} (minimum ${min})`);
  }
  if (max < min || (max !== 0xffffffff && max % min !== 0)) {
    throw protocolError(`${serverName} sent maximum payload ${max} (minimum block size ${min})`);
  }
}

function writeOption(socket: Socket, option: number, data: Buffer): void {
  const header = Buffer.alloc(16);
  header.writeBigUInt64BE(IHAVEOPT, 0);
  header.writeUInt32BE(option, 8);
  header.writeUInt32BE(data.length, 12);
  socket.write(data.length > 0 ? Buffer.concat([header, data]) : header);
}

async function sendOption(
  socket: Socket,
  input: HandshakeInput,
  option: number,
  data: Buffer,
  serverName: string,
): Promise<OptionReply> {
  writeOption(socket, option, data);
  return readOptionReply(input, option, serverName);
}

async function readOptionReply(
  input: HandshakeInput,
  option: number,
  serverName: string,
): Promise<OptionReply> {
  const header = await input.read(20);
  const magic = header.readBigUInt64BE(0);
  if (magic !== OPTION_REPLY_MAGIC)
    throw protocolError(`${serverName} sent bad option reply magic 0x${magic.toString(16)}`);
  const echoed = header.readUInt32BE(8);
  if (echoed !== option)
    throw protocolError(`${serverName} answered option ${echoed} while option ${option} was asked`);
  const type = header.readUInt32BE(12);
  const length = header.readUInt32BE(16);
  if (length > MAX_OPTION_REPLY_BYTES) {
    throw protocolError(
      `${serverName} sent an option reply of ${length} bytes (limit ${MAX_OPTION_REPLY_BYTES})`,
    );
  }
  const data = length > 0 ? Buffer.from(await input.read(length)) : Buffer.alloc(0);
  return { type, data };
}

const OPTION_NAMES: Record<number, string> = {
  [Option.EXPORT_NAME]: 'EXPORT_NAME',
  [Option.GO]: 'GO',
  [Option.STRUCTURED_REPLY]: 'STRUCTURED_REPLY',
  [Option.SET_META_CONTEXT]: 'SET_META_CONTEXT',
};

/** A typed error for an option the server refused. */
function optionError(option: number, reply: OptionReply, options: HandshakeOptions): SyncproxyError {
  const { serverName, exportName } = options;
  const name = OPTION_NAMES[option] ?? `option ${option}`;
  const text = sanitize(reply.data.toString('utf8'));
  const said = text ? ` (server said: ${text})` : '';
  const details = { option: name, reply: reply.type };
  switch (reply.type) {
    case Reply.ERR_UNKNOWN:
      return new SyncproxyError(
        `NBD export "${exportName}" not found on ${serverName}${said}: check the export name`,
        { code: 'not-found', retryable: false, details },
      );
    case Reply.ERR_POLICY:
      return new SyncproxyError(`NBD server ${serverName} refused export "${exportName}" by policy${said}`, {
        code: 'permission',
        details,
      });
    case Reply.ERR_TLS_REQD:
      return new SyncproxyError(
        `NBD server ${serverName} requires TLS, which this client does not support${said}`,
        {
          code: 'unsupported',
          details,
        },
      );
    case Reply.ERR_SHUTDOWN:
      return new SyncproxyError(`NBD server ${serverName} is shutting down${said}`, {
        code: 'network',
        details,
      });
    case Reply.ERR_PLATFORM:
      return new SyncproxyError(`NBD server ${serverName} failed ${name} for export "${exportName}"${said}`, {
        code: 'platform',
        details,
      });
    default:
      if ((reply.type & REP_ERROR_BIT) !== 0) {
        return protocolError(
          `${serverName} refused ${name} with error ${reply.type - REP_ERROR_BIT}${said}`,
          details,
        );
      }
      return protocolError(
        `${serverName} answered ${name} with unexpected reply type ${reply.type}`,
        details,
      );
  }
}

/** Server text goes into messages: keep it printable and short. */
export function sanitize(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping control characters is the point
  const clean = text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  return clean.length > MAX_SERVER_MESSAGE_CHARS ? `${clean.slice(0, MAX_SERVER_MESSAGE_CHARS)}…` : clean;
}
