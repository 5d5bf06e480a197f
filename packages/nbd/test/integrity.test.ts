import { connectNbd, NbdReader } from '@syncproxy/nbd';
import { afterEach, describe, expect, it } from 'vitest';
import { caught } from './caught.js';
import { type FakeNbdServer, type FakeServerOptions, startFakeNbdServer } from './fake-nbd-server.js';

const servers: FakeNbdServer[] = [];
const timers: NodeJS.Timeout[] = [];
afterEach(async () => {
  for (const t of timers.splice(0)) clearInterval(t);
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function serve(options: FakeServerOptions): Promise<FakeNbdServer> {
  const server = await startFakeNbdServer(options);
  servers.push(server);
  return server;
}

const MULTI_CONN = 1 | 4 | 32 | 64 | 256;

describe('NBD integrity', () => {
  it('a reply trickled one byte every 500 ms times out at the request deadline', async () => {
    const disk = new Uint8Array(64 * 1024).fill(7);
    const server = await serve({
      disk,
      structuredReplies: false,
      onRequest: (request, reply) => {
        if (request.type !== 0) return false;
        const header = Buffer.alloc(16);
        header.writeUInt32BE(0x67446698, 0);
        request.cookie.copy(header, 8);
        const bytes = Buffer.concat([header, Buffer.from(disk.subarray(0, request.length))]);
        let at = 0;
        timers.push(
          setInterval(() => {
            if (at < bytes.length) reply.raw(bytes.subarray(at, ++at));
          }, 500),
        );
        return true;
      },
    });
    const client = await connectNbd({ uri: server.uri, requestTimeoutMs: 1500, reconnect: false });
    const started = Date.now();
    const error = await caught(client.read(0, 4096));
    const elapsed = Date.now() - started;
    await client.close();
    expect(error.code).toBe('timeout');
    expect(error.message).toBe(
      `NBD READ of 4096 bytes at 0 on 127.0.0.1:${server.port} got no complete reply within 1500 ms`,
    );
    // Within a few trickled bytes of the deadline, not 4112 bytes * 500 ms later.
    expect(elapsed).toBeLessThan(4000);
  });

  it('refuses more connections than the bound with a config error', async () => {
    const error = await caught(connectNbd({ uri: 'nbd://127.0.0.1:1/', connections: 100_000 }));
    expect(error.code).toBe('config');
    expect(error.message).toBe('NBD client option connections must be at most 64 (got 100000)');
  });

  it('a multi-conn server that serves fewer connections than asked: carries on with those, and warns', async () => {
    const disk = new Uint8Array(1024 * 1024);
    for (let i = 0; i < disk.length; i++) disk[i] = i & 0xff;
    const server = await serve({ disk, transmissionFlags: MULTI_CONN, maxConnections: 2 });
    const reader = await NbdReader.open({
      uri: server.uri,
      connections: 4,
      connectTimeoutMs: 1000,
      readThreads: false,
    });
    try {
      expect(reader.client.info.connections).toBe(2);
      expect(reader.warnings).toEqual([
        {
          code: 'nbd-fewer-connections',
          message: `NBD server 127.0.0.1:${server.port} offers multi-conn but opened 2 of the 4 connections asked for (2 did not finish the handshake: NBD handshake with 127.0.0.1:${server.port} did not finish within 1000 ms); reading over 2`,
        },
      ]);
      expect(Buffer.compare(await reader.read(0, disk.length), disk)).toBe(0);
    } finally {
      await reader.close();
    }
  });
});
