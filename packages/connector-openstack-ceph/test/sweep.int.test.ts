import { randomUUID } from 'node:crypto';
import { createOpenstackCephConnector } from '@syncproxy/connector-openstack-ceph';
import { type MockOpenstack, startMockOpenstack } from '@syncproxy/connector-openstack-ceph/mock';
import type { ConnectorSession, Host, SnapshotRef } from '@syncproxy/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminRbd, type CephCluster, startCephCluster, stopCephCluster } from './fixtures/ceph-cluster.js';

// sweep against the mock Cinder whose snapshots are RBD snapshots in a real single-node Ceph.
const T0 = Date.parse('2026-03-01T00:00:00.000Z');
const DAY = 86_400_000;

let cluster: CephCluster | undefined;
let mock: MockOpenstack;
let session: ConnectorSession;
let host: Host;
let now = T0;

beforeAll(async () => {
  cluster = startCephCluster();
  mock = await startMockOpenstack({ ceph: cluster, now: () => now });
  await mock.createHost({ name: 'app-01', disks: [{ sizeBytes: 1024 * 1024 }] });
  session = await createOpenstackCephConnector({ pollDelaysMs: [0, 10, 50] }).connect(mock.config());
  [host] = (await session.listHosts()) as [Host];
});
afterAll(async () => {
  await session?.close();
  await mock?.close();
  stopCephCluster(cluster);
});

const cinderIdOf = (ref: SnapshotRef) => ref.disks[0]!.data.cinderSnapshotId as string;

async function rbdSnaps(): Promise<string[]> {
  const volume = host.disks[0]!.id;
  const out = await adminRbd(cluster!, [
    'snap',
    'ls',
    '--format',
    'json',
    `${cluster!.pool}/volume-${volume}`,
  ]);
  return (JSON.parse(out.toString()) as Array<{ name: string }>).map((s) => s.name).sort();
}

describe('sweep (real Ceph)', () => {
  it('deletes only the Cinder snapshots carrying syncproxy:managed, and their RBD snapshots; look-alikes survive', async () => {
    const volume = host.disks[0]!.id;
    const old = [
      await session.createSnapshot(host),
      await session.createSnapshot(host, { label: 'nightly' }),
    ];
    // Look-alikes: a Cinder snapshot with our default name but no metadata, and an RBD snapshot Cinder does not know.
    const lookAlike = randomUUID();
    await mock.state.ceph.createSnapshot(volume, lookAlike);
    mock.state.snapshots.set(lookAlike, {
      id: lookAlike,
      volumeId: volume,
      name: `syncproxy ${new Date(T0).toISOString()}`,
      description: null,
      status: 'available',
      polls: 0,
      createdAt: '2026-03-01T00:00:00.000000',
      metadata: {},
    });
    await adminRbd(cluster!, [
      'snap',
      'create',
      '--no-progress',
      `${cluster!.pool}/volume-${volume}@syncproxy-manual`,
    ]);
    now = T0 + 10 * DAY;
    const fresh = await session.createSnapshot(host);
    const oldIds = old.map(cinderIdOf).sort();
    const olderThan = new Date(T0 + DAY);

    const dry = await session.sweep!({ olderThan, dryRun: true });
    expect(dry.resources).toEqual(
      oldIds.map((id) => ({ kind: 'snapshot', id, createdAt: new Date(T0).toISOString(), deleted: false })),
    );

    const kept = cinderIdOf(old[1]!);
    const swept = await session.sweep!({ olderThan, keep: [kept] });
    expect(swept.resources.map((r) => [r.id, r.deleted])).toEqual(oldIds.map((id) => [id, id !== kept]));
    expect([...mock.state.snapshots.keys()].sort()).toEqual([kept, cinderIdOf(fresh), lookAlike].sort());

    await session.sweep!();
    expect([...mock.state.snapshots.keys()]).toEqual([lookAlike]);
    expect(await rbdSnaps()).toEqual([`snapshot-${lookAlike}`, 'syncproxy-manual'].sort());
  });
});
