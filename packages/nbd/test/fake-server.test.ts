import { connectNbd, NbdReader } from '@syncproxy/nbd';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { caught } from './caught.js';
import {
  errorPayload,
  type FakeNbdServer,
  type FakeServerOptions,
  startFakeNbdServer,
} from './fake-nbd-server.js';

const servers: FakeNbdServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function serve(options: FakeServerOptions): Promise<FakeNbdServer> {
  const server = await startFakeNbdServer(options);
  servers.push(server);
  return server;
}

/** A disk with data, zero runs and a recognisable byte at each position. */
function patternDisk(size: number): Uint8Array {
  const disk = new Uint8Array(size);
  for (let i = 0; i < size; i++) disk[i] = (i * 7 + 3) & 0xff || 1;
  disk.fill(0, size / 4, size / 2);
  return disk;
}

describe('handshake against a misbehaving server', () => {
  it('rejects a server whose greeting has bad magic with a protocol error', async () => {
    const server = await serve({
      disk: new Uint8Array(0),
      greeting: Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n'),
    });
    const started = Date.now();
    const error = await caught(connectNbd({ uri: server.uri, connectTimeoutMs: 5000 }));
    expect(Date.now() - started).toBeLessThan(5000);
    expect(error.code).toBe('protocol');
    expect(error.retryable).toBe(false);
    expect(error.message).toBe(
      `NBD protocol error: 127.0.0.1:${server.port} is not an NBD server (bad greeting magic 0x485454502f312e31)`,
    );
  });

  it('reports an export the server refuses as not-found, naming it', async () => {
    const server = await serve({ disk: new Uint8Array(4096), exportNames: ['disk0'] });
    const error = await caught(connectNbd({ uri: `${server.uri}disk9`, connectTimeoutMs: 5000 }));
    expect(error.code).toBe('not-found');
    expect(error.retryable).toBe(false);
    expect(error.message).toBe(
      `NBD export "disk9" not found on 127.0.0.1:${server.port} (server said: export 'disk9' does not exist): check the export name`,
    );
  });

  it('refuses an option reply larger than 1 MiB', async () => {
    const server = await serve({
      disk: new Uint8Array(4096),
      onOption: (option, reply) => {
        if (option !== 8) return false;
        const h = Buffer.alloc(20);
        h.writeBigUInt64BE(0x3e889045565a9n, 0);
        h.writeUInt32BE(8, 8);
        h.writeUInt32BE(1, 12);
        h.writeUInt32BE(0x7fffffff, 16);
        reply.raw(h);
        return true;
      },
    });
    const error = await caught(connectNbd({ uri: server.uri, connectTimeoutMs: 5000 }));
    expect(error.code).toBe('protocol');
    expect(error.message).toBe(
      `NBD protocol error: 127.0.0.1:${server.port} sent an option reply of 2147483647 bytes (limit 1048576)`,
    );
  });

  it('times out a server that accepts and then says nothing', async () => {
    const server = await serve({ disk: new Uint8Array(0), greeting: Buffer.alloc(0) });
    const error = await caught(connectNbd({ uri: server.uri, connectTimeoutMs: 200 }));
    expect(error.code).toBe('timeout');
    expect(error.message).toBe(`NBD handshake with 127.0.0.1:${server.port} did not finish within 200 ms`);
  });

  it('reports a connection the server drops mid-handshake as a retryable network error', async () => {
    const server = await serve({
      disk: new Uint8Array(4096),
      onOption: (_option, reply) => {
        reply.socket.destroy();
        return true;
      },
    });
    const error = await caught(connectNbd({ uri: server.uri, connectTimeoutMs: 5000 }));
    expect(error.code).toBe('network');
    expect(error.retryable).toBe(true);
  });

  it('reports a refused connection as a retryable network error', async () => {
    const server = await serve({ disk: new Uint8Array(0) });
    await server.close();
    const error = await caught(connectNbd({ uri: server.uri }));
    expect(error.code).toBe('network');
    expect(error.retryable).toBe(true);
    expect(error.message).toBe(`cannot connect to NBD server 127.0.0.1:${server.port}: ECONNREFUSED`);
  });

  it('falls back to simple replies when the server has no structured replies', async () => {
    const disk = patternDisk(64 * 1024);
    const server = await serve({ disk, structuredReplies: false });
    const client = await connectNbd({ uri: server.uri });
    expect(client.info.structuredReplies).toBe(false);
    expect(client.info.canBlockStatus).toBe(false);
    expect(Buffer.from(await client.read(1000, 30000))).toEqual(Buffer.from(disk.subarray(1000, 31000)));
    const reader = await NbdReader.open({ client });
    expect(reader.warnings).toEqual([
      {
        code: 'no-allocation-map',
        message: 'NBD export "" offers no base:allocation map: the whole disk is read',
      },
    ]);
    const extents = [];
    for await (const e of reader.extents()) extents.push(e);
    expect(extents).toEqual([{ offset: 0, length: 64 * 1024, kind: 'data' }]);
    await client.close();
  });

  it('hints the engine to keep 8 MiB of reads in flight, or what its options say', async () => {
    const server = await serve({ disk: patternDisk(64 * 1024) });
    const client = await connectNbd({ uri: server.uri });
    const reader = await NbdReader.open({ client });
    expect(reader.hints).toEqual({ readBytesInFlight: 8 * 1024 * 1024, incremental: false });
    const shallow = await NbdReader.open({ client, readBytesInFlight: 2 * 1024 * 1024 });
    expect(shallow.hints).toEqual({ readBytesInFlight: 2 * 1024 * 1024, incremental: false });
    await client.close();
  });

  it('declares the allocation map a full read and given changed extents an incremental, so transferDisk needs no full', async () => {
    const server = await serve({ disk: patternDisk(64 * 1024) });
    const client = await connectNbd({ uri: server.uri });
    const full = await NbdReader.open({ client });
    const changed = await NbdReader.open({
      client,
      changedExtents: [{ offset: 4096, length: 4096, kind: 'data' }],
    });
    expect(full.hints?.incremental).toBe(false);
    expect(changed.hints?.incremental).toBe(true);
    await client.close();
  });
});

describe('replies during transmission', () => {
  it('assembles READ replies sent as data and hole chunks in reverse order, byte for byte', async () => {
    const disk = patternDisk(256 * 1024);
    const server = await serve({ disk, readChunkBytes: 4096 });
    const client = await connectNbd({ uri: server.uri, maxRequestBytes: 32 * 1024 });
    await fc.assert(
      fc.asyncProperty(
        fc
          .integer({ min: 0, max: disk.length - 1 })
          .chain((offset) =>
            fc.tuple(
              fc.constant(offset),
              fc.integer({ min: 1, max: Math.min(100_000, disk.length - offset) }),
            ),
          ),
        async ([offset, length]) => {
          const got = await client.read(offset, length);
          expect(Buffer.from(got).equals(Buffer.from(disk.subarray(offset, offset + length)))).toBe(true);
        },
      ),
      { numRuns: 60 },
    );
    await client.close();
  });

  it('reads large payloads straight into the destination, byte for byte, with either reply style', async () => {
    const disk = patternDisk(4 * 1024 * 1024);
    for (const structuredReplies of [true, false]) {
      const server = await serve({ disk, readChunkBytes: 100_000, structuredReplies });
      const client = await connectNbd({ uri: server.uri, maxRequestBytes: 512 * 1024 });
      const reads = [
        [0, disk.length],
        [12345, 1_500_000],
        [disk.length - 700_001, 700_001],
      ] as const;
      const results = await Promise.all(reads.map(([offset, length]) => client.read(offset, length)));
      reads.forEach(([offset, length], i) => {
        expect(Buffer.from(results[i]!).equals(Buffer.from(disk.subarray(offset, offset + length)))).toBe(
          true,
        );
      });
      await client.close();
    }
  });

  it('matches many replies in flight to their requests by cookie', async () => {
    const disk = patternDisk(1024 * 1024);
    const held: Array<() => void> = [];
    const server = await serve({
      disk,
      onRequest: (request, reply) => {
        if (request.type !== 0) return false;
        // Answer in reverse order once 16 reads are waiting.
        held.push(() => {
          const p = Buffer.alloc(8 + request.length);
          p.writeBigUInt64BE(BigInt(request.offset), 0);
          p.set(disk.subarray(request.offset, request.offset + request.length), 8);
          reply.chunk(request.cookie, 1, 1, p);
        });
        if (held.length === 16) for (const send of held.splice(0).reverse()) send();
        return true;
      },
    });
    const client = await connectNbd({ uri: server.uri });
    const reads = Array.from({ length: 16 }, (_, i) => client.read(i * 65536, 65536));
    const results = await Promise.all(reads);
    results.forEach((r, i) => {
      expect(Buffer.from(r).equals(Buffer.from(disk.subarray(i * 65536, (i + 1) * 65536)))).toBe(true);
    });
    await client.close();
  });

  it('hard-disconnects on an unknown chunk type and fails every request in flight', async () => {
    const server = await serve({
      disk: patternDisk(65536),
      onRequest: (request, reply) => {
        if (request.offset !== 0) return true; // the other read is never answered
        reply.chunk(request.cookie, 1, 77, new Uint8Array(4));
        return true;
      },
    });
    const client = await connectNbd({ uri: server.uri, reconnect: false });
    const started = Date.now();
    const [first, second] = await Promise.all([
      caught(client.read(0, 4096)),
      caught(client.read(4096, 4096)),
    ]);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(first.code).toBe('protocol');
    expect(first.message).toBe(
      `NBD protocol error: 127.0.0.1:${server.port} sent unknown reply chunk type 77`,
    );
    expect(second).toBe(first);
    const after = await caught(client.read(0, 4096));
    expect(after).toBe(first);
    await client.close();
  });

  it('refuses OFFSET_DATA carrying more bytes than the READ asked for', async () => {
    const server = await serve({
      disk: patternDisk(65536),
      onRequest: (request, reply) => {
        const p = Buffer.alloc(8 + request.length * 2, 1);
        p.writeBigUInt64BE(BigInt(request.offset), 0);
        reply.chunk(request.cookie, 1, 1, p);
        return true;
      },
    });
    const client = await connectNbd({ uri: server.uri });
    const error = await caught(client.read(0, 4096));
    expect(error.code).toBe('protocol');
    expect(error.message).toBe(
      `NBD protocol error: 127.0.0.1:${server.port} sent 8192 bytes of data for a READ of 4096 bytes (oversize reply)`,
    );
    await client.close();
  });

  it('refuses a BLOCK_STATUS chunk beyond the descriptor limit without buffering it', async () => {
    const server = await serve({
      disk: patternDisk(65536),
      onRequest: (request, reply) => {
        const h = Buffer.alloc(20);
        h.writeUInt32BE(0x668e33ef, 0);
        h.writeUInt16BE(1, 4);
        h.writeUInt16BE(5, 6);
        request.cookie.copy(h, 8);
        h.writeUInt32BE(0xfffffff4, 16);
        reply.raw(h);
        return true;
      },
    });
    const client = await connectNbd({ uri: server.uri });
    const error = await caught(client.blockStatus(0, 65536));
    expect(error.code).toBe('protocol');
    expect(error.message).toBe(
      `NBD protocol error: 127.0.0.1:${server.port} sent a BLOCK_STATUS chunk of 4294967284 bytes (oversize or malformed reply)`,
    );
    await client.close();
  });

  it('refuses data chunks outside the requested range', async () => {
    const server = await serve({
      disk: patternDisk(65536),
      onRequest: (request, reply) => {
        const p = Buffer.alloc(8 + request.length, 1);
        p.writeBigUInt64BE(BigInt(request.offset + 512), 0);
        reply.chunk(request.cookie, 1, 1, p);
        return true;
      },
    });
    const client = await connectNbd({ uri: server.uri });
    const error = await caught(client.read(4096, 4096));
    expect(error.code).toBe('protocol');
    expect(error.message).toBe(
      `NBD protocol error: 127.0.0.1:${server.port} sent OFFSET_DATA for [4608, 8704) outside the READ of [4096, 8192) (oversize reply)`,
    );
    await client.close();
  });

  it('never reports a READ complete when its chunks leave a gap', async () => {
    const server = await serve({
      disk: patternDisk(65536),
      onRequest: (request, reply) => {
        const p = Buffer.alloc(8 + request.length / 2, 1);
        p.writeBigUInt64BE(BigInt(request.offset), 0);
        reply.chunk(request.cookie, 1, 1, p);
        return true;
      },
    });
    const client = await connectNbd({ uri: server.uri });
    const error = await caught(client.read(0, 4096));
    expect(error.code).toBe('protocol');
    expect(error.message).toBe(
      `NBD protocol error: 127.0.0.1:${server.port} finished a READ of 4096 bytes at offset 0 after sending only 2048`,
    );
    await client.close();
  });

  it('refuses bad reply magic in the transmission phase', async () => {
    const server = await serve({
      disk: patternDisk(65536),
      onRequest: (_request, reply) => {
        reply.raw(Buffer.from('deadbeefdeadbeefdeadbeef', 'hex'));
        return true;
      },
    });
    const client = await connectNbd({ uri: server.uri });
    const error = await caught(client.flush());
    expect(error.code).toBe('protocol');
    expect(error.message).toBe(
      `NBD protocol error: 127.0.0.1:${server.port} sent bad reply magic 0xdeadbeef`,
    );
    await client.close();
  });

  it('reports a reply to a cookie never sent', async () => {
    const server = await serve({
      disk: patternDisk(65536),
      onRequest: (_request, reply) => {
        reply.simple(Buffer.from('0000000000abcdef', 'hex'), 0);
        return true;
      },
    });
    const client = await connectNbd({ uri: server.uri });
    const error = await caught(client.flush());
    expect(error.message).toBe(
      `NBD protocol error: 127.0.0.1:${server.port} replied to unknown cookie 11259375`,
    );
    await client.close();
  });

  it('fails requests in flight with a retryable network error when the server goes away', async () => {
    const server = await serve({
      disk: patternDisk(65536),
      onRequest: (_request, reply) => {
        reply.socket.destroy();
        return true;
      },
    });
    const client = await connectNbd({ uri: server.uri, reconnect: false });
    const error = await caught(client.read(0, 4096));
    expect(error.code).toBe('network');
    expect(error.retryable).toBe(true);
    expect(error.message).toBe(
      `NBD connection to 127.0.0.1:${server.port} was lost with 1 requests in flight`,
    );
    await client.close();
  });

  it('reconnects on the next request after a lost connection', async () => {
    const disk = patternDisk(65536);
    let dropped = false;
    const server = await serve({
      disk,
      onRequest: (_request, reply) => {
        if (dropped) return false;
        dropped = true;
        reply.socket.destroy();
        return true;
      },
    });
    const client = await connectNbd({ uri: server.uri });
    expect((await caught(client.read(0, 4096))).code).toBe('network');
    expect(Buffer.from(await client.read(0, 4096)).equals(Buffer.from(disk.subarray(0, 4096)))).toBe(true);
    expect(server.connections).toBe(2);
    await client.close();
  });

  it('drops a connection that stays silent past requestTimeoutMs', async () => {
    const server = await serve({ disk: patternDisk(65536), onRequest: () => true });
    const client = await connectNbd({ uri: server.uri, requestTimeoutMs: 200, reconnect: false });
    const error = await caught(client.read(0, 4096));
    expect(error.code).toBe('timeout');
    expect(error.message).toBe(
      `NBD server 127.0.0.1:${server.port} sent nothing for 200 ms with 1 requests in flight`,
    );
    await client.close();
  });

  it('rejects an aborted request at once and keeps the connection usable', async () => {
    const disk = patternDisk(65536);
    let hold: (() => void) | undefined;
    let received: () => void = () => {};
    const arrived = new Promise<void>((resolve) => {
      received = resolve;
    });
    const server = await serve({
      disk,
      onRequest: (request, reply) => {
        if (request.offset !== 0 || hold) return false;
        hold = () => reply.simple(request.cookie, 5);
        received();
        return true;
      },
    });
    const client = await connectNbd({ uri: server.uri });
    const controller = new AbortController();
    const pending = caught(client.read(0, 4096, { signal: controller.signal }));
    await arrived;
    controller.abort();
    expect((await pending).code).toBe('aborted');
    hold?.();
    expect(Buffer.from(await client.read(4096, 4096)).equals(Buffer.from(disk.subarray(4096, 8192)))).toBe(
      true,
    );
    await client.close();
  });
});

describe('closing', () => {
  it('closes without waiting for the reply to an abandoned request', async () => {
    const server = await serve({ disk: patternDisk(65536), onRequest: (request) => request.type !== 2 });
    const client = await connectNbd({ uri: server.uri });
    const controller = new AbortController();
    const pending = caught(client.read(0, 4096, { signal: controller.signal }));
    controller.abort();
    expect((await pending).code).toBe('aborted');
    await client.close();
    expect(server.requests.map((r) => r.type)).toEqual([0, 2]);
  });

  it('refuses requests after close with a typed error', async () => {
    const server = await serve({ disk: patternDisk(65536) });
    const client = await connectNbd({ uri: server.uri });
    await client.close();
    const error = await caught(client.read(0, 512));
    expect(error.code).toBe('internal');
    expect(error.message).toBe(`NBD client for export "" on 127.0.0.1:${server.port} is closed`);
  });
});

describe('NBD errors', () => {
  const cases: Array<[string, number, string, boolean]> = [
    ['EPERM', 1, 'permission', false],
    ['EIO', 5, 'io', true],
    ['ENOMEM', 12, 'io', true],
    ['EINVAL', 22, 'protocol', false],
    ['ENOSPC', 28, 'io', false],
    ['EOVERFLOW', 75, 'protocol', false],
    ['ENOTSUP', 95, 'unsupported', false],
    ['ESHUTDOWN', 108, 'network', true],
  ];
  for (const [name, errno, code, retryable] of cases) {
    it(`maps ${name} in an error chunk to code ${code}, retryable ${retryable}`, async () => {
      const server = await serve({
        disk: patternDisk(65536),
        onRequest: (request, reply) => {
          reply.chunk(request.cookie, 1, 0x8001, errorPayload(errno, 'disk\nsaid no'));
          return true;
        },
      });
      const client = await connectNbd({ uri: server.uri });
      const error = await caught(client.write(8192, new Uint8Array(4096)));
      expect(error.code).toBe(code);
      expect(error.retryable).toBe(retryable);
      expect(error.details).toEqual({ nbdError: name, errno, command: 'WRITE', offset: 8192, length: 4096 });
      expect(error.message).toMatch(
        new RegExp(
          `^NBD WRITE of 4096 bytes at offset 8192 on export "" failed: ${name} \\(.+\\): disk said no`,
        ),
      );
      await client.close();
    });
  }

  it('maps a simple error reply the same way', async () => {
    const server = await serve({
      disk: patternDisk(65536),
      onRequest: (request, reply) => {
        reply.simple(request.cookie, 28);
        return true;
      },
    });
    const client = await connectNbd({ uri: server.uri });
    const error = await caught(client.writeZeroes(0, 4096));
    expect(error.message).toBe(
      'NBD WRITE_ZEROES of 4096 bytes at offset 0 on export "" failed: ENOSPC (no space left on device)',
    );
    await client.close();
  });

  it('soft-disconnects after ESHUTDOWN and reconnects for the next request', async () => {
    const disk = patternDisk(65536);
    let shutdown = false;
    const server = await serve({
      disk,
      onRequest: (request, reply) => {
        if (shutdown || request.type !== 0) return false;
        shutdown = true;
        reply.simple(request.cookie, 108);
        return true;
      },
    });
    const client = await connectNbd({ uri: server.uri });
    const error = await caught(client.read(0, 4096));
    expect(error.code).toBe('network');
    expect(Buffer.from(await client.read(0, 4096)).equals(Buffer.from(disk.subarray(0, 4096)))).toBe(true);
    // The first connection ended with DISC, not a reset.
    expect(server.requests.map((r) => r.type)).toEqual([0, 2, 0]);
    await client.close();
  });

  it('refuses writes to a read-only export without sending them', async () => {
    const server = await serve({ disk: patternDisk(65536), transmissionFlags: 1 | 2 });
    const client = await connectNbd({ uri: server.uri });
    const error = await caught(client.write(0, new Uint8Array(512)));
    expect(error.code).toBe('permission');
    expect(error.message).toBe(`NBD WRITE refused: export "" on 127.0.0.1:${server.port} is read-only`);
    expect(server.requests).toEqual([]);
    await client.close();
  });
});

describe('block-size constraints and the allocation map', () => {
  it('reads unaligned ranges with requests aligned to the minimum block size and no larger than the maximum', async () => {
    const disk = patternDisk(512 * 1024);
    const server = await serve({ disk, blockSize: [4096, 4096, 65536] });
    const client = await connectNbd({ uri: server.uri });
    expect(client.info).toMatchObject({
      minBlockSize: 4096,
      preferredBlockSize: 4096,
      maxPayloadBytes: 65536,
    });
    await fc.assert(
      fc.asyncProperty(
        fc
          .integer({ min: 0, max: disk.length - 1 })
          .chain((offset) =>
            fc.tuple(
              fc.constant(offset),
              fc.integer({ min: 1, max: Math.min(300_000, disk.length - offset) }),
            ),
          ),
        async ([offset, length]) => {
          server.requests.length = 0;
          const got = await client.read(offset, length);
          expect(Buffer.from(got).equals(Buffer.from(disk.subarray(offset, offset + length)))).toBe(true);
          for (const r of server.requests) {
            expect(r.offset % 4096).toBe(0);
            expect(r.length % 4096).toBe(0);
            expect(r.length).toBeLessThanOrEqual(65536);
          }
        },
      ),
      { numRuns: 50 },
    );
    await client.close();
  });

  it('refuses an unaligned write with a typed error', async () => {
    const server = await serve({ disk: patternDisk(65536), blockSize: [512, 4096, 65536] });
    const client = await connectNbd({ uri: server.uri });
    const error = await caught(client.write(100, new Uint8Array(512)));
    expect(error.code).toBe('internal');
    expect(error.message).toBe(
      "NBD WRITE of 512 bytes at offset 100 is not aligned to the export's minimum block size 512",
    );
    await client.close();
  });

  it('re-queries block status where the server stops short and yields exact, merged extents', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 1, max: 8 })), { minLength: 1, maxLength: 30 }),
        fc.integer({ min: 1, max: 3 }),
        async (runs, perReply) => {
          const unit = 4096;
          const size = runs.reduce((n, [, blocks]) => n + blocks * unit, 0);
          const disk = new Uint8Array(size);
          const expected: Array<{ offset: number; length: number; kind: string }> = [];
          let at = 0;
          for (const [isData, blocks] of runs) {
            if (isData) disk.fill(0xab, at, at + blocks * unit);
            const kind = isData ? 'data' : 'zero';
            const last = expected[expected.length - 1];
            if (last && last.kind === kind) last.length += blocks * unit;
            else expected.push({ offset: at, length: blocks * unit, kind });
            at += blocks * unit;
          }
          const server = await startFakeNbdServer({ disk, maxExtentsPerReply: perReply, extentBytes: unit });
          try {
            const reader = await NbdReader.open({ uri: server.uri });
            const got = [];
            for await (const e of reader.extents()) got.push(e);
            expect(got).toEqual(expected);
            await reader.close();
          } finally {
            await server.close();
          }
        },
      ),
      { numRuns: 40 },
    );
  });

  it('clips the last extent where the server runs past the range asked', async () => {
    const disk = new Uint8Array(64 * 1024).fill(1);
    const server = await serve({
      disk,
      onRequest: (request, reply) => {
        if (request.type !== 7) return false;
        const p = Buffer.alloc(12);
        p.writeUInt32BE(7, 0);
        p.writeUInt32BE(1024 * 1024, 4);
        p.writeUInt32BE(0, 8);
        reply.chunk(request.cookie, 1, 5, p);
        return true;
      },
    });
    const client = await connectNbd({ uri: server.uri });
    const extents = [];
    for await (const e of client.allocationMap(4096, 8192)) extents.push(e);
    expect(extents).toEqual([{ offset: 4096, length: 8192, flags: 0 }]);
    await client.close();
  });

  it('yields given changed extents as they are and refuses unsorted ones', async () => {
    const server = await serve({ disk: patternDisk(65536) });
    const given = [
      { offset: 0, length: 512, kind: 'data' as const },
      { offset: 4096, length: 8192, kind: 'data' as const },
    ];
    const reader = await NbdReader.open({ uri: server.uri, changedExtents: given });
    const got = [];
    for await (const e of reader.extents()) got.push(e);
    expect(got).toEqual(given);
    await reader.close();

    const bad = await NbdReader.open({ uri: server.uri, changedExtents: [given[1]!, given[0]!] });
    const iterate = async () => {
      for await (const _ of bad.extents()) {
        // drain
      }
    };
    const error = await caught(iterate());
    expect(error.code).toBe('config');
    expect(error.message).toBe(
      'changed extent {offset: 0, length: 512, kind: data} is not sorted, non-overlapping and inside the 65536-byte disk',
    );
    await bad.close();
  });
});

describe('multi-conn', () => {
  it('opens several connections only when the server offers CAN_MULTI_CONN, and spreads requests', async () => {
    const disk = patternDisk(1024 * 1024);
    const single = await serve({ disk });
    const one = await connectNbd({ uri: single.uri, connections: 4 });
    expect(one.info.connections).toBe(1);
    await one.close();

    const multi = await serve({ disk, transmissionFlags: 1 | 4 | 64 | 256 });
    const four = await connectNbd({ uri: multi.uri, connections: 4, maxRequestBytes: 65536 });
    expect(four.info.connections).toBe(4);
    expect(multi.connections).toBe(4);
    const got = await four.read(0, disk.length);
    expect(Buffer.from(got).equals(Buffer.from(disk))).toBe(true);
    await four.close();
  });
});
