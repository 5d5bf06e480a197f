import { OpenstackClient } from '@syncproxy/connector-openstack-ceph';
import { type MockOpenstack, startMockOpenstack } from '@syncproxy/connector-openstack-ceph/mock';
import { Redactor, SyncproxyError } from '@syncproxy/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

// The client against the mock OpenStack; no Ceph is touched (volumes are arranged through `state`).
let mock: MockOpenstack;
let clock = Date.parse('2026-01-01T00:00:00Z');
const snapshotsMade: string[] = [];

beforeEach(async () => {
  clock = Date.parse('2026-01-01T00:00:00Z');
  snapshotsMade.length = 0;
  mock = await startMockOpenstack({
    ceph: { monHost: '127.0.0.1:1', pool: 'volumes', conf: '/nonexistent', user: 'cinder', key: 'unused' },
    now: () => clock,
    tokenTtlSec: 3600,
    maxPageSize: 2,
  });
  mock.state.ceph = {
    createSnapshot: async (volumeId, snapshotId) => {
      snapshotsMade.push(`volume-${volumeId}@snapshot-${snapshotId}`);
    },
    deleteSnapshot: async () => {},
  };
  for (let i = 0; i < 5; i++) {
    mock.state.servers.set(`srv-${i}`, {
      id: `srv-${i}`,
      name: `vm-${i}`,
      status: 'ACTIVE',
      volumeIds: [`vol-${i}`],
    });
    mock.state.volumes.set(`vol-${i}`, {
      id: `vol-${i}`,
      name: `disk-${i}`,
      sizeBytes: 2 * 1024 ** 3,
      status: i === 4 ? 'available' : 'in-use',
      volumeType: 'ceph-ssd',
      serverId: `srv-${i}`,
      device: '/dev/vda',
      bootable: true,
    });
  }
});

afterEach(async () => {
  await mock.close();
});

function client(overrides: Partial<ConstructorParameters<typeof OpenstackClient>[0]> = {}): OpenstackClient {
  const config = mock.config();
  return new OpenstackClient({
    authUrl: config.authUrl,
    userDomainId: 'default',
    user: config.user,
    password: config.password,
    projectDomainId: 'default',
    projectName: config.projectName,
    region: 'RegionOne',
    interface: 'public',
    redactor: new Redactor([config.password]),
    now: () => clock,
    ...overrides,
  });
}

const tokenCalls = () => mock.server.calls.filter((c) => c.path === '/identity/v3/auth/tokens').length;

describe('OpenstackClient', () => {
  it('takes the token from X-Subject-Token and sends it as X-Auth-Token', async () => {
    const c = client();
    const servers = [];
    for await (const s of c.listServers()) servers.push(s);
    await c.close();
    const nova = mock.server.calls.find((call) => call.path === '/compute/v2.1/servers/detail')!;
    expect(mock.state.tokens.has(String(nova.headers['x-auth-token']))).toBe(true);
    expect(servers.map((s) => s.id)).toEqual(['srv-0', 'srv-1', 'srv-2', 'srv-3', 'srv-4']);
  });

  it('pages Nova servers through servers_links until no next link', async () => {
    const c = client();
    for await (const _ of c.listServers(2));
    await c.close();
    expect(
      mock.server.calls
        .filter((call) => call.path === '/compute/v2.1/servers/detail')
        .map((call) => call.query),
    ).toEqual(['?limit=2', '?limit=2&marker=srv-1', '?limit=2&marker=srv-3']);
  });

  it('finds Cinder under volumev3 in older catalogs', async () => {
    mock.state.volumeServiceType = 'volumev3';
    const c = client();
    const volumes = [];
    for await (const v of c.listVolumes()) volumes.push(v.id);
    await c.close();
    expect(volumes).toEqual(['vol-0', 'vol-1', 'vol-2', 'vol-3', 'vol-4']);
  });

  it('re-authenticates before the token expires', async () => {
    const c = client({ tokenRefreshMarginSec: 120 });
    await c.authenticate();
    clock += 3600_000 - 119_000;
    for await (const _ of c.listServers());
    await c.close();
    expect(tokenCalls()).toBe(2);
  });

  it('keeps the token while it is far from expiry', async () => {
    const c = client();
    await c.authenticate();
    clock += 1000_000;
    for await (const _ of c.listServers());
    await c.close();
    expect(tokenCalls()).toBe(1);
  });

  it('re-authenticates once when a call gets 401, and the call then succeeds', async () => {
    const c = client();
    await c.authenticate();
    mock.state.tokens.clear();
    const servers = [];
    for await (const s of c.listServers()) servers.push(s);
    await c.close();
    expect(servers).toHaveLength(5);
    expect(tokenCalls()).toBe(2);
  });

  it('rejects a wrong password with a non-retryable auth error that does not contain it', async () => {
    const c = client({ password: 'not-the-password-123', redactor: new Redactor(['not-the-password-123']) });
    const error = await c.authenticate().catch((e) => e);
    await c.close();
    expect(SyncproxyError.hasCode(error, 'auth')).toBe(true);
    expect(error.retryable).toBe(false);
    expect(error.message).toBe(
      `Keystone CreateToken failed: HTTP 401 Unauthorized from POST ${mock.url}/identity/v3/auth/tokens: The request you have made requires authentication.`,
    );
    expect(JSON.stringify(error.toJSON())).not.toContain('not-the-password-123');
  });

  it('names the region when the catalog has no endpoint there', async () => {
    const c = client({ region: 'RegionTwo' });
    const error = await (async () => {
      for await (const _ of c.listServers());
    })().catch((e) => e);
    await c.close();
    expect(error).toMatchObject({
      code: 'config',
      message:
        'the Keystone catalog has no compute endpoint with interface public in region RegionTwo (check the region)',
    });
  });

  it('snapshots an in-use volume with force, polls it to available, and deletes it to 404', async () => {
    mock.state.pollsUntilAvailable = 2;
    const c = client();
    const created = await c.createSnapshot('vol-0', 'nightly');
    expect(created.status).toBe('creating');
    expect(snapshotsMade).toEqual([`volume-vol-0@snapshot-${created.id}`]);
    expect((await c.getSnapshot(created.id)).status).toBe('creating');
    expect((await c.getSnapshot(created.id)).status).toBe('available');
    await c.deleteSnapshot(created.id);
    const gone = await c.getSnapshot(created.id).catch((e) => e);
    await c.close();
    expect(gone).toMatchObject({ code: 'not-found', platformCode: 'itemNotFound', retryable: false });
  });

  it('lists only the snapshots whose metadata matches, across pages, asking Cinder 3.22 to filter', async () => {
    const c = client();
    const managed = [];
    for (let i = 0; i < 3; i++)
      managed.push((await c.createSnapshot(`vol-${i}`, 'sync', { 'syncproxy:managed': 'true' })).id);
    await c.createSnapshot('vol-3', 'sync', { 'syncproxy:managed': 'false' });
    await c.createSnapshot('vol-4', 'syncproxy 2026-01-01T00:00:00.000Z');
    const listed = [];
    for await (const s of c.listSnapshots({ 'syncproxy:managed': 'true' }, 2)) listed.push(s);
    await c.close();
    expect(listed.map((s) => s.id).sort()).toEqual(managed.sort());
    expect(listed[0]).toMatchObject({
      metadata: { 'syncproxy:managed': 'true' },
      created_at: '2026-01-01T00:00:00.000000',
    });
  });

  it('maps Cinder 413 overLimit to a retryable throttled error', async () => {
    mock.server.faults.add({
      kind: 'status',
      status: 413,
      path: /\/volumes\/detail$/,
      body: { overLimit: { code: 413, message: 'This request was rate-limited.', retryAfter: '1' } },
    });
    const c = client();
    const error = await (async () => {
      for await (const _ of c.listVolumes());
    })().catch((e) => e);
    await c.close();
    expect(error).toMatchObject({
      code: 'throttled',
      retryable: true,
      status: 413,
      platformCode: 'overLimit',
    });
  });
});

describe('the mock Cinder', () => {
  it('refuses to snapshot an in-use volume without force (400 badRequest)', async () => {
    const c = client();
    await c.authenticate();
    const token = [...mock.state.tokens.keys()][0]!;
    const res = await fetch(`${mock.url}/volume/v3/${mock.state.projectId}/snapshots`, {
      method: 'POST',
      headers: { 'x-auth-token': token, 'content-type': 'application/json' },
      body: JSON.stringify({ snapshot: { volume_id: 'vol-0', name: 'x' } }),
    });
    await c.close();
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({
      badRequest: {
        code: 400,
        message: 'Invalid volume: Volume vol-0 status must be available, but current status is: in-use.',
      },
    });
  });
});
