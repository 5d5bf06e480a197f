import { createOracleMockPlatform, type OracleMockPlatform } from '@syncproxy/connector-oracle/mock';
import { createDispatcher } from '@syncproxy/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectorForMocks } from './helpers.js';

describe("oracle takes the proxy's HTTP settings", () => {
  let platform: OracleMockPlatform;
  const bound = connectorForMocks();
  let config: Record<string, unknown>;

  beforeAll(async () => {
    platform = await createOracleMockPlatform();
    bound.bind(platform.oci);
    await platform.createHost({ name: 'app-1', disks: [{ sizeBytes: 1024 * 1024 }] });
    // The platform is named by a host name only the proxy's overrides resolve.
    const named = platform.oci.url.replace('127.0.0.1', 'iaas.oci-mock.invalid');
    config = {
      ...(platform.config() as Record<string, unknown>),
      endpoints: { core: named, identity: named },
    };
  });
  afterAll(() => platform.close());

  it('without ctx.dispatcher, its own dispatcher is built from ctx.hostOverrides (and the HTTP timeout)', async () => {
    const session = await bound.connector.connect(config, {
      ...platform.context(),
      hostOverrides: { 'iaas.oci-mock.invalid': '127.0.0.1' },
      httpTimeoutSec: 30,
    });
    expect((await session.verify()).hostCount).toBe(2);
    // A POST too: the SDK's doubled Content-Length is folded before undici sees it.
    const host = (await session.listHosts()).find((h) => h.name === 'app-1')!;
    const snapshot = await session.createSnapshot(host);
    await session.deleteSnapshot(snapshot);
    await session.close();
  });

  it("the product's ctx.dispatcher carries every request", async () => {
    const dispatcher = createDispatcher({ hostOverrides: { 'iaas.oci-mock.invalid': '127.0.0.1' } });
    const session = await bound.connector.connect(config, { ...platform.context(), dispatcher });
    expect((await session.verify()).hostCount).toBe(2);
    await session.close();
    await dispatcher.close();
  });

  it('an unreachable name is a network error', async () => {
    const session = await createNoRetry().connect(config, platform.context());
    // Whether it is still retryable once the client's own retries gave up is core's policy (withRetry).
    await expect(session.verify()).rejects.toMatchObject({ code: 'network' });
    await session.close();
  });

  function createNoRetry() {
    return connectorForMocks({ retry: { attempts: 1 } }).connector;
  }
});
