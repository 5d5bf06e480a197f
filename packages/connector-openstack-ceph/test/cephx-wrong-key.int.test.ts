import { randomBytes } from 'node:crypto';
import { RbdCli, rbdImageInfo } from '@syncproxy/connector-openstack-ceph';
import { SyncproxyError } from '@syncproxy/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CephCluster, startCephCluster, stopCephCluster } from './fixtures/ceph-cluster.js';

// Issue 15 item 11: a wrong CephX key is an immediate auth error whatever form the monitor address takes.
let cluster: CephCluster;
beforeAll(() => {
  cluster = startCephCluster();
});
afterAll(() => stopCephCluster(cluster));

/** The test cluster's monitor without its `v1:` prefix: a bare host:port on a non-default port. */
const bareMonitor = () => cluster.monHost.replace(/^v1:/, '');

async function wrongKeyError(monitors: string): Promise<unknown> {
  const wrongKey = Buffer.from(randomBytes(28)).toString('base64');
  let cli: RbdCli | undefined;
  try {
    // The default connect timeout (30 s): a wrong key must not wait for it.
    cli = await RbdCli.create({ monitors, cephx: true, user: cluster.user, keyring: wrongKey });
    return await rbdImageInfo(cli, { pool: cluster.pool, image: 'none', snapshot: 's1' }).then(
      () => undefined,
      (e: unknown) => e,
    );
  } catch (error) {
    return error;
  } finally {
    await cli?.close();
  }
}

describe('a wrong CephX key on the test cluster', () => {
  it('with a bare host:port on a non-default port: a config error at once, naming the prefix to write', async () => {
    const error = await wrongKeyError(bareMonitor());
    expect(SyncproxyError.hasCode(error, 'config')).toBe(true);
    expect((error as Error).message).toContain(`write v1:${bareMonitor()}`);
  });

  it('with the v1: prefix the user states: an auth error, not a timeout', async () => {
    const error = await wrongKeyError(`v1:${bareMonitor()}`);
    expect(error).toMatchObject({ code: 'auth', retryable: false });
  });
});
