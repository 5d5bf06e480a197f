import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { type AddressInfo, createConnection, createServer, type Socket } from 'node:net';
import { Worker } from 'node:worker_threads';
import {
  checkNetwork,
  createDispatcher,
  normalizeThumbprint,
  SyncproxyError,
  toSyncproxyError,
} from '@syncproxy/core';
import { generate } from 'selfsigned';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

function portOf(server: { address(): AddressInfo | string | null }): number {
  return (server.address() as AddressInfo).port;
}

describe('checkNetwork', () => {
  let listener: ReturnType<typeof createServer>;
  let closedPort: number;
  let stalled: { port: number; stop: () => Promise<void> };

  beforeAll(async () => {
    listener = createServer((socket) => socket.destroy()).listen(0, '127.0.0.1');
    await once(listener, 'listening');
    // A port that was just free: nothing listens there any more.
    const probe = createServer().listen(0, '127.0.0.1');
    await once(probe, 'listening');
    closedPort = portOf(probe);
    await new Promise((r) => probe.close(r));
    stalled = await startStalledListener();
  });

  afterAll(async () => {
    await new Promise((r) => listener.close(r));
    await stalled.stop();
  });

  it('reports a listening endpoint as reachable with its latency', async () => {
    const [row] = await checkNetwork([{ host: '127.0.0.1', port: portOf(listener), purpose: 'vCenter API' }]);
    expect(row).toMatchObject({
      host: '127.0.0.1',
      port: portOf(listener),
      purpose: 'vCenter API',
      reachable: true,
    });
    expect(row!.errorCode).toBeUndefined();
    expect(row!.latencyMs).toBeGreaterThanOrEqual(0);
  });

  it('reports a closed port as refused with ECONNREFUSED', async () => {
    const [row] = await checkNetwork([{ host: '127.0.0.1', port: closedPort, purpose: 'ESXi NBD' }]);
    expect(row).toMatchObject({ reachable: false, errorCode: 'ECONNREFUSED', purpose: 'ESXi NBD' });
  });

  it('reports a listener that never accepts as ETIMEDOUT after the timeout', async () => {
    const started = performance.now();
    const [row] = await checkNetwork([{ host: '127.0.0.1', port: stalled.port, purpose: 'Ceph monitor' }], {
      timeoutMs: 300,
    });
    expect(row).toMatchObject({ reachable: false, errorCode: 'ETIMEDOUT' });
    expect(performance.now() - started).toBeGreaterThanOrEqual(290);
  });

  it('keeps rows in input order and dials host overrides', async () => {
    const rows = await checkNetwork(
      [
        { host: 'vcenter.corp.invalid', port: portOf(listener), purpose: 'API' },
        { host: '127.0.0.1', port: closedPort, purpose: 'data' },
      ],
      { hostOverrides: { 'VCENTER.corp.invalid': '127.0.0.1' } },
    );
    expect(rows.map((r) => [r.host, r.reachable, r.dialled])).toEqual([
      ['vcenter.corp.invalid', true, '127.0.0.1'],
      ['127.0.0.1', false, undefined],
    ]);
  });
});

/**
 * A TCP listener whose accept queue is full and whose owner never accepts: the
 * kernel drops further SYNs, so a connect hangs as it does towards a firewalled
 * or unroutable address. The listening socket lives in a worker whose event
 * loop is blocked.
 */
async function startStalledListener(): Promise<{ port: number; stop: () => Promise<void> }> {
  const worker = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads');
     const net = require('node:net');
     const server = net.createServer();
     server.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
       parentPort.postMessage(server.address().port);
       Atomics.wait(new Int32Array(workerData), 0, 0);
     });`,
    { eval: true, workerData: new SharedArrayBuffer(4) },
  );
  const [port] = (await once(worker, 'message')) as [number];
  // Fill the accept queue (backlog + 1 on Linux) so later SYNs are dropped.
  // Linux queues backlog + 1 = 2 established connections; wait until both are in.
  const fillers: Socket[] = [];
  let connected = 0;
  await new Promise<void>((resolve) => {
    for (let i = 0; i < 3; i++) {
      const s = createConnection({ host: '127.0.0.1', port });
      s.on('error', () => {});
      s.once('connect', () => {
        if (++connected === 2) resolve();
      });
      fillers.push(s);
    }
  });
  return {
    port,
    stop: async () => {
      for (const s of fillers) s.destroy();
      await worker.terminate();
    },
  };
}

describe('createDispatcher', () => {
  let https: HttpsServer;
  let http: HttpServer;
  let thumbprint: string;
  let httpsUrl: string;

  beforeAll(async () => {
    const pems = await generate([{ name: 'commonName', value: 'vcenter.lab.invalid' }], {
      keySize: 2048,
      algorithm: 'sha256',
      extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: 'vcenter.lab.invalid' }] }],
    });
    thumbprint = new X509Certificate(pems.cert).fingerprint256;
    https = createHttpsServer({ key: pems.private, cert: pems.cert }, (_req, res) => res.end('secure hello'));
    https.listen(0, '127.0.0.1');
    await once(https, 'listening');
    httpsUrl = `https://127.0.0.1:${portOf(https)}/sdk`;
    http = createHttpServer((req, res) => res.end(`hello ${req.headers.host}`));
    http.listen(0, '127.0.0.1');
    await once(http, 'listening');
  });

  afterAll(async () => {
    https.closeAllConnections();
    http.closeAllConnections();
    await Promise.all([new Promise((r) => https.close(r)), new Promise((r) => http.close(r))]);
  });

  it('refuses a self-signed certificate by default (TLS verification is on)', async () => {
    const dispatcher = createDispatcher();
    const error = await request(httpsUrl, { dispatcher }).catch((e: unknown) => e);
    const mapped = toSyncproxyError(error, { operation: 'RetrieveServiceContent' });
    expect(mapped.code).toBe('tls');
    expect(mapped.retryable).toBe(false);
    expect(mapped.message).toBe(
      'RetrieveServiceContent failed: TLS verification failed (DEPTH_ZERO_SELF_SIGNED_CERT)',
    );
    await dispatcher.close();
  });

  it('accepts the certificate pinned by its SHA-256 thumbprint', async () => {
    const dispatcher = createDispatcher({
      pinnedThumbprintSha256: thumbprint.replaceAll(':', '').toLowerCase(),
    });
    const response = await request(httpsUrl, { dispatcher });
    expect(response.statusCode).toBe(200);
    expect(await response.body.text()).toBe('secure hello');
    await dispatcher.close();
  });

  it('keeps accepting the pinned certificate on new connections (no resumed TLS session)', async () => {
    const dispatcher = createDispatcher({ pinnedThumbprintSha256: thumbprint });
    // The server closes every connection, so each request opens a new TLS socket.
    for (let i = 0; i < 3; i++) {
      const response = await request(httpsUrl, { dispatcher, headers: { connection: 'close' } });
      expect(await response.body.text()).toBe('secure hello');
    }
    const parallel = await Promise.all(
      Array.from({ length: 4 }, async () => (await request(httpsUrl, { dispatcher })).body.text()),
    );
    expect(parallel).toEqual(Array(4).fill('secure hello'));
    await dispatcher.close();
  });

  it('refuses a certificate whose thumbprint differs from the pin, with a typed tls error', async () => {
    const wrong = `AB:${thumbprint.slice(3)}`;
    const dispatcher = createDispatcher({ pinnedThumbprintSha256: wrong });
    const error = await request(httpsUrl, { dispatcher }).catch((e: unknown) => e);
    // The message names the error when it is not ours: this failed once in CI with no more said.
    const seen = error as { name?: unknown; code?: unknown; message?: unknown; cause?: unknown };
    expect(
      SyncproxyError.isInstance(error),
      `${String(seen?.name)} ${String(seen?.code)}: ${String(seen?.message)} (cause: ${String(seen?.cause)})`,
    ).toBe(true);
    expect(error).toMatchObject({ code: 'tls', retryable: false });
    expect((error as SyncproxyError).message).toBe(
      `TLS refused: the certificate of 127.0.0.1 has thumbprint ${thumbprint}, not the pinned ${normalizeThumbprint(wrong)}`,
    );
    await dispatcher.close();
  });

  it('rejects a malformed thumbprint as a config error', () => {
    expect(() => createDispatcher({ pinnedThumbprintSha256: 'abc' })).toThrow(
      expect.objectContaining({
        code: 'config',
        message: 'invalid SHA-256 thumbprint: expected 64 hex digits, got 3',
      }),
    );
  });

  it('reaches a loopback server by a made-up name through a host-name override', async () => {
    const dispatcher = createDispatcher({ hostOverrides: { 'fc-vrm.customer.invalid': '127.0.0.1' } });
    const response = await request(`http://fc-vrm.customer.invalid:${portOf(http)}/`, { dispatcher });
    expect(await response.body.text()).toBe(`hello fc-vrm.customer.invalid:${portOf(http)}`);
    await dispatcher.close();
  });

  it('verifies the certificate against the overridden name, and accepts it with the pin', async () => {
    const url = `https://vcenter.lab.invalid:${portOf(https)}/sdk`;
    const hostOverrides = { 'vcenter.lab.invalid': '127.0.0.1' };
    const strict = createDispatcher({ hostOverrides });
    expect(toSyncproxyError(await request(url, { dispatcher: strict }).catch((e: unknown) => e)).code).toBe(
      'tls',
    );
    const pinned = createDispatcher({ hostOverrides, pinnedThumbprintSha256: thumbprint });
    expect(await (await request(url, { dispatcher: pinned })).body.text()).toBe('secure hello');
    await Promise.all([strict.close(), pinned.close()]);
  });

  it('fails a call that gets no answer within the HTTP timeout with a retryable timeout error', async () => {
    const silent = createHttpServer(() => {
      /* never answers */
    });
    silent.listen(0, '127.0.0.1');
    await once(silent, 'listening');
    const dispatcher = createDispatcher({ httpTimeoutSec: 0.2 });
    const error = await request(`http://127.0.0.1:${portOf(silent)}/`, { dispatcher }).catch(
      (e: unknown) => e,
    );
    const mapped = toSyncproxyError(error, { operation: 'Login' });
    expect(mapped).toMatchObject({ code: 'timeout', retryable: true });
    expect(mapped.message).toBe('Login timed out (UND_ERR_HEADERS_TIMEOUT)');
    await dispatcher.close();
    silent.closeAllConnections();
    await new Promise((r) => silent.close(r));
  });
});
