import { NbdReader, NbdReadThreadPool } from '@syncproxy/nbd';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { caught } from './caught.js';
import {
  errorPayload,
  type FakeNbdServer,
  type FakeServerOptions,
  startFakeNbdServer,
} from './fake-nbd-server.js';

const servers: FakeNbdServer[] = [];
const readers: NbdReader[] = [];
const pools: NbdReadThreadPool[] = [];
afterEach(async () => {
  await Promise.all(readers.splice(0).map((r) => r.close()));
  await Promise.all(pools.splice(0).map((p) => p.close()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** HAS_FLAGS | SEND_FLUSH | SEND_WRITE_ZEROES | SEND_TRIM | CAN_MULTI_CONN. */
const MULTI_CONN = 1 | 4 | 32 | 64 | 256;
const READ = 0;

async function serve(options: Omit<FakeServerOptions, 'disk'>, size = 1024 * 1024) {
  const disk = new Uint8Array(size);
  for (let i = 0; i < size; i++) disk[i] = (i * 13 + 7) & 0xff;
  const server = await startFakeNbdServer({ transmissionFlags: MULTI_CONN, ...options, disk });
  servers.push(server);
  return { server, disk };
}

async function open(options: Parameters<typeof NbdReader.open>[0]): Promise<NbdReader> {
  const reader = await NbdReader.open(options);
  readers.push(reader);
  return reader;
}

function pool(threads: number): NbdReadThreadPool {
  const made = new NbdReadThreadPool({ threads });
  pools.push(made);
  return made;
}

/** A view of `length` bytes at `at` in a SharedArrayBuffer of its own, as the engine's chunk buffers are. */
function shared(length: number, at = 0): Uint8Array {
  return new Uint8Array(new SharedArrayBuffer(at + length), at, length);
}

describe('NBD read threads', () => {
  it('read into SharedArrayBuffers on two threads over the connections asked for, byte for byte', async () => {
    const { server, disk } = await serve({});
    const reader = await open({ uri: server.uri, connections: 4, readThreads: pool(2) });
    expect(reader.readThreads).toBe(2);
    // One connection of the reader's own (the allocation map, other reads) and two a thread.
    expect(server.connections).toBe(5);
    expect(reader.warnings).toEqual([]);
    const piece = 64 * 1024;
    const targets = Array.from({ length: 16 }, (_, i) => shared(piece, i * 512));
    await Promise.all(targets.map((t, i) => reader.readInto(t, i * piece)));
    targets.forEach((t, i) => {
      expect(Buffer.from(t).equals(Buffer.from(disk.subarray(i * piece, (i + 1) * piece)))).toBe(true);
    });
    // The threads' four connections carried them; the reader's own (the first) none.
    const reads = server.requests.filter((r) => r.type === READ);
    expect(new Set(reads.map((r) => r.connection))).toEqual(new Set([2, 3, 4, 5]));
    // A target on an ordinary buffer is read on the calling thread, over the first connection.
    const plain = new Uint8Array(4096);
    await reader.readInto(plain, 8192);
    expect(Buffer.from(plain).equals(Buffer.from(disk.subarray(8192, 12288)))).toBe(true);
    expect(server.requests.at(-1)).toMatchObject({ type: READ, offset: 8192, connection: 1 });
  });

  it('bring an NBD error back as the same typed error, code, retryable and details included', async () => {
    const { server } = await serve({
      onRequest: (request, reply) => {
        if (request.type !== READ || request.offset !== 8192) return false;
        reply.chunk(request.cookie, 1, 0x8001, errorPayload(5, 'disk said no'));
        return true;
      },
    });
    const reader = await open({ uri: server.uri, readThreads: pool(2) });
    const error = await caught(reader.readInto(shared(4096), 8192));
    expect([error.code, error.retryable]).toEqual(['io', true]);
    expect(error.details).toEqual({ nbdError: 'EIO', errno: 5, command: 'READ', offset: 8192, length: 4096 });
    expect(error.message).toMatch(
      /^NBD READ of 4096 bytes at offset 8192 on export "" failed: EIO \(.+\): disk said no$/,
    );
  });

  it('reject an aborted read at once, and the thread reads on', async () => {
    let hold: (() => void) | undefined;
    let arrived: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      arrived = resolve;
    });
    const { server, disk } = await serve({
      onRequest: (request, reply) => {
        if (request.type !== READ || request.offset !== 0 || hold) return false;
        hold = () => reply.simple(request.cookie, 5);
        arrived();
        return true;
      },
    });
    const reader = await open({ uri: server.uri, readThreads: pool(1) });
    const controller = new AbortController();
    const pending = caught(reader.readInto(shared(4096), 0, { signal: controller.signal }));
    await held;
    controller.abort();
    expect((await pending).code).toBe('aborted');
    hold?.();
    const next = shared(4096);
    await reader.readInto(next, 4096);
    expect(Buffer.from(next).equals(Buffer.from(disk.subarray(4096, 8192)))).toBe(true);
  });

  it('fail a read whose connection drops as retryable, and reconnect for the next', async () => {
    let dropped = false;
    const { server, disk } = await serve({
      onRequest: (request, reply) => {
        if (dropped || request.type !== READ) return false;
        dropped = true;
        reply.socket.destroy();
        return true;
      },
    });
    const reader = await open({ uri: server.uri, connections: 2, readThreads: pool(2) });
    const error = await caught(reader.readInto(shared(4096), 0));
    expect([error.code, error.retryable]).toEqual(['network', true]);
    expect(error.message).toBe(
      `NBD connection to 127.0.0.1:${server.port} was lost with 1 requests in flight`,
    );
    const again = shared(4096);
    await reader.readInto(again, 0);
    expect(Buffer.from(again).equals(Buffer.from(disk.subarray(0, 4096)))).toBe(true);
    expect(server.connections).toBe(4);
  });

  it('read on the calling thread, with a warning, when no thread can connect', async () => {
    const { server, disk } = await serve({ greetConnections: 1 });
    const reader = await open({
      uri: server.uri,
      connections: 2,
      readThreads: pool(2),
      connectTimeoutMs: 300,
    });
    expect(reader.readThreads).toBe(0);
    expect(reader.warnings).toEqual([
      {
        code: 'nbd-fewer-read-threads',
        message: `2 of 2 NBD read threads did not connect (NBD handshake with 127.0.0.1:${server.port} did not finish within 300 ms); reading on the calling thread`,
      },
    ]);
    const target = shared(65536);
    await reader.readInto(target, 65536);
    expect(Buffer.from(target).equals(Buffer.from(disk.subarray(65536, 131072)))).toBe(true);
  });

  it('are not started without multi-conn, with readThreads false, or for one connection', async () => {
    const { server: single } = await serve({ transmissionFlags: 1 });
    expect((await open({ uri: single.uri, readThreads: pool(2) })).readThreads).toBe(0);
    expect(single.connections).toBe(1);
    const { server } = await serve({});
    expect((await open({ uri: server.uri, readThreads: false })).readThreads).toBe(0);
    expect((await open({ uri: server.uri, connections: 1, readThreads: pool(2) })).readThreads).toBe(0);
    expect(server.connections).toBe(5);
  });

  it('refuse a pool of no threads with a config error naming the option', async () => {
    const error = await caught(Promise.resolve().then(() => new NbdReadThreadPool({ threads: 0 })));
    expect([error.code, error.message]).toEqual([
      'config',
      'NBD read thread pool option threads must be an integer from 1 to 64 (got 0)',
    ]);
  });

  it('serve the next reader on the same threads, and read on the calling thread once the pool is closed', async () => {
    const { server, disk } = await serve({});
    const threads = pool(2);
    const first = await NbdReader.open({ uri: server.uri, connections: 2, readThreads: threads });
    await first.readInto(shared(4096), 0);
    await first.close();
    const second = await open({ uri: server.uri, connections: 2, readThreads: threads });
    expect(second.readThreads).toBe(2);
    const target = shared(8192);
    await second.readInto(target, 8192);
    expect(Buffer.from(target).equals(Buffer.from(disk.subarray(8192, 16384)))).toBe(true);
    // The second reader's own connection is the fourth; its threads' are the fifth and sixth.
    expect(server.requests.at(-1)).toMatchObject({ type: READ, offset: 8192 });
    expect([5, 6]).toContain(server.requests.at(-1)!.connection);
    await threads.close();
    const after = shared(4096);
    await second.readInto(after, 4096);
    expect(Buffer.from(after).equals(Buffer.from(disk.subarray(4096, 8192)))).toBe(true);
    expect(server.requests.at(-1)).toMatchObject({ type: READ, offset: 4096, connection: 4 });
  });

  it('stop after idleTimeoutMs with no reader open, and start again for the next', async () => {
    const { server, disk } = await serve({});
    const threads = new NbdReadThreadPool({ threads: 2, idleTimeoutMs: 50 });
    pools.push(threads);
    expect(threads.running).toBe(0);
    const first = await NbdReader.open({ uri: server.uri, readThreads: threads });
    expect(threads.running).toBe(2);
    await first.close();
    await vi.waitFor(() => expect(threads.running).toBe(0));
    const second = await open({ uri: server.uri, readThreads: threads });
    expect([second.readThreads, threads.running]).toEqual([2, 2]);
    const target = shared(4096);
    await second.readInto(target, 0);
    expect(Buffer.from(target).equals(Buffer.from(disk.subarray(0, 4096)))).toBe(true);
  });

  it('close every connection of every thread on close, and refuse reads after it', async () => {
    const { server } = await serve({});
    const reader = await NbdReader.open({ uri: server.uri, connections: 4, readThreads: pool(2) });
    expect(server.openConnections).toBe(5);
    await reader.close();
    await vi.waitFor(() => expect(server.openConnections).toBe(0));
    const error = await caught(reader.readInto(shared(4096), 0));
    expect([error.code, error.message]).toEqual([
      'internal',
      `NBD client for export "" on 127.0.0.1:${server.port} is closed`,
    ]);
  });
});
