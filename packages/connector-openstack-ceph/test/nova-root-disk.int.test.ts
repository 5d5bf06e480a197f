import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createOpenstackCephConnector } from '@syncproxy/connector-openstack-ceph';
import { type MockOpenstack, startMockOpenstack } from '@syncproxy/connector-openstack-ceph/mock';
import { type ConnectorSession, type Host, imageFileName, syncHost } from '@syncproxy/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminRbd, type CephCluster, startCephCluster, stopCephCluster } from './fixtures/ceph-cluster.js';

// An instance booted from an image with Nova images_type=rbd: its root disk is the RBD image
// `<uuid>_disk` in Nova's pool, no Cinder volume. Synced through core's syncHost on the real test Ceph.
const KiB = 1024;
const MiB = 1024 * KiB;
const NOVA_POOL = 'vms';
const GLANCE_POOL = 'images';

let cluster: CephCluster | undefined;
let mock: MockOpenstack;
let session: ConnectorSession;
let dir: string;

/** `ceph` as client.admin against the test cluster. */
function adminCeph(args: string[]): void {
  const r = spawnSync('ceph', ['-c', cluster!.conf, '--connect-timeout', '15', ...args], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (r.status !== 0) throw new Error(`ceph ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
}

beforeAll(async () => {
  cluster = startCephCluster();
  // Nova's pool, and the connector's user allowed in it as in the README (profile rbd on both pools).
  for (const pool of [NOVA_POOL, GLANCE_POOL]) {
    adminCeph(['osd', 'pool', 'create', pool, '8', '8']);
    adminCeph(['osd', 'pool', 'application', 'enable', pool, 'rbd']);
  }
  adminCeph([
    'auth',
    'caps',
    'client.cinder',
    'mon',
    'profile rbd',
    'osd',
    `profile rbd pool=${cluster.pool}, profile rbd pool=${NOVA_POOL}, profile rbd-read-only pool=${GLANCE_POOL}`,
  ]);
  mock = await startMockOpenstack({ ceph: cluster, novaPool: NOVA_POOL });
  session = await createOpenstackCephConnector({ pollDelaysMs: [0, 10, 50] }).connect(mock.config());
  dir = await mkdtemp(join(tmpdir(), 'syncproxy-nova-'));
}, 180_000);
afterAll(async () => {
  await session?.close();
  await mock?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
  stopCephCluster(cluster);
});

function pattern(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed * 2654435761 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** The synced image, and Ceph's own `rbd export` of the disk. */
async function imageAndTruth(diskId: string, sizeBytes: number, target = dir): Promise<[Buffer, Buffer]> {
  const image = await readFile(join(target, imageFileName(diskId)));
  return [image, Buffer.from(await mock.readDisk(diskId, 0, sizeBytes))];
}

async function rbdSnaps(spec: string): Promise<string[]> {
  const out = await adminRbd(cluster!, ['snap', 'ls', '--format', 'json', spec]);
  return (JSON.parse(out.toString()) as Array<{ name: string }>).map((s) => s.name).sort();
}

const SNAP_NAME = /^syncproxy-\d{13}-[0-9a-f-]{36}$/;

describe('image-booted instance, root disk in the Nova pool (real Ceph)', () => {
  let host: Host;
  let rootId: string;
  let volumeId: string;
  const rootSize = 4 * MiB;

  it('lists the root disk as <uuid>_disk in the Nova pool, with its exact size', async () => {
    const ref = await mock.createImageBootedHost({
      name: 'web-01',
      rootDiskBytes: rootSize,
      flavorDiskGiB: 1,
      volumes: [{ sizeBytes: MiB }],
    });
    rootId = `${ref.id}_disk`;
    volumeId = ref.disks[1]!.id;
    host = (await session.listHosts()).find((h) => h.id === ref.id)!;
    expect(host.attributes).toEqual({ status: 'ACTIVE', bootsFromImage: true, rootDiskOnCeph: true });
    expect(host.disks.map((d) => [d.id, d.sizeBytes, d.boot])).toEqual([
      [rootId, rootSize, true],
      [volumeId, MiB, false],
    ]);
    expect(host.disks[0]!.attributes).toEqual({
      rootDisk: 'nova-rbd',
      onCeph: true,
      cephCluster: 'ceph',
      cephClusterIndex: 0,
      pool: NOVA_POOL,
      image: rootId,
      flavorDiskGiB: 1,
    });
    const checks = await session.prechecks(host);
    expect(checks.map((c) => [c.id, c.status])).toEqual([
      ['volumes-on-ceph', 'pass'],
      ['root-disk-is-volume', 'pass'],
      ['has-volumes', 'pass'],
    ]);
  });

  it('syncs it full then incremental through syncHost, byte-exact against rbd export', async () => {
    await mock.writeDisk(rootId, 0, pattern(512 * KiB, 1));
    await mock.writeDisk(rootId, 3 * MiB + 100, pattern(200 * KiB, 2));
    await mock.writeDisk(volumeId, 4096, pattern(64 * KiB, 3));
    const full = await syncHost({
      session,
      platform: 'openstack-ceph',
      hostId: host.id,
      target: dir,
      mode: 'full',
    });
    expect([full.ok, full.mode]).toEqual([true, 'full']);
    for (const disk of host.disks) {
      const [image, truth] = await imageAndTruth(disk.id, disk.sizeBytes);
      expect(image.length).toBe(disk.sizeBytes);
      expect(image.equals(truth)).toBe(true);
    }
    const before = (await imageAndTruth(rootId, rootSize))[1];
    expect(before.subarray(0, 512 * KiB).equals(Buffer.from(pattern(512 * KiB, 1)))).toBe(true);

    // Writes after the first snapshot, and a range zeroed: the incremental must carry both.
    await mock.writeDisk(rootId, MiB + 7, pattern(300 * KiB, 4));
    await mock.writeZeroes(rootId, 64 * KiB, 128 * KiB);
    const incremental = await syncHost({
      session,
      platform: 'openstack-ceph',
      hostId: host.id,
      target: dir,
      mode: 'incremental',
    });
    expect([incremental.ok, incremental.mode, incremental.warnings]).toEqual([true, 'incremental', []]);
    const [image, truth] = await imageAndTruth(rootId, rootSize);
    expect(image.equals(truth)).toBe(true);
    expect(truth.equals(before)).toBe(false);
    const rootOutcome = incremental.disks.find((d) => d.diskId === rootId)!;
    expect(rootOutcome.mode).toBe('incremental');

    // Only the base of the next incremental is left: one RBD snapshot of ours on the root disk.
    const snaps = await rbdSnaps(`${NOVA_POOL}/${rootId}`);
    expect(snaps).toHaveLength(1);
    expect(snaps[0]).toMatch(SNAP_NAME);
    expect(await mock.snapshotCount(host.id)).toBe(2);
  });

  it('sweep deletes only its own RBD snapshots of root disks; look-alikes survive', async () => {
    const spec = `${NOVA_POOL}/${rootId}`;
    const lookAlikes = ['syncproxy-manual', `syncproxy-123-${randomUUID()}`, `nightly-${randomUUID()}`];
    for (const name of lookAlikes)
      await adminRbd(cluster!, ['snap', 'create', '--no-progress', `${spec}@${name}`]);
    const [ours] = await rbdSnaps(spec).then((s) => s.filter((n) => SNAP_NAME.test(n)));

    const dry = await session.sweep!({ dryRun: true });
    expect(
      dry.resources.filter((r) => r.id.startsWith(`${NOVA_POOL}/`)).map((r) => [r.id, r.deleted]),
    ).toEqual([[`${spec}@${ours}`, false]]);
    const kept = await session.sweep!({ keep: [ours!] });
    expect(kept.resources.find((r) => r.id === `${spec}@${ours}`)?.deleted).toBe(false);
    await session.sweep!();
    expect(await rbdSnaps(spec)).toEqual([...lookAlikes].sort());
  });

  it('an image-booted instance whose root disk is in no Nova pool lists no root disk and warns', async () => {
    const id = randomUUID();
    mock.state.servers.set(id, {
      id,
      name: 'local-01',
      status: 'ACTIVE',
      volumeIds: [],
      imageId: randomUUID(),
    });
    const listed = (await session.listHosts()).find((h) => h.id === id)!;
    expect(listed.disks).toEqual([]);
    expect(listed.attributes).toEqual({ status: 'ACTIVE', bootsFromImage: true, rootDiskOnCeph: false });
    const check = (await session.prechecks(listed)).find((c) => c.id === 'root-disk-is-volume')!;
    expect(check.status).toBe('warn');
    expect(check.detail).toBe(
      `the instance boots from an image and no Nova pool (${NOVA_POOL}) holds ${id}_disk: its root disk is ephemeral on the compute node and is not synced`,
    );
    mock.state.servers.delete(id);
  });

  it('syncs a root disk that is a copy-on-write clone of a Glance image, parent data included', async () => {
    // Glance on the same Ceph: the image is `images/<id>@snap`, protected; Nova clones it into its pool.
    const glance = `${GLANCE_POOL}/${randomUUID()}`;
    const size = 2 * MiB;
    await adminRbd(
      cluster!,
      ['import', '--no-progress', '--object-size', String(64 * KiB), '-', glance],
      Buffer.from(pattern(size, 5)),
    );
    await adminRbd(cluster!, ['snap', 'create', '--no-progress', `${glance}@snap`]);
    await adminRbd(cluster!, ['snap', 'protect', `${glance}@snap`]);
    const ref = await mock.createImageBootedHost({
      name: 'clone-01',
      rootDiskBytes: size,
      cloneOf: `${glance}@snap`,
    });
    const id = `${ref.id}_disk`;
    // A target holds the images of one host.
    const target = join(dir, 'clone-01');
    await mock.writeDisk(id, MiB + 5, pattern(100 * KiB, 6));
    const listed = (await session.listHosts()).find((h) => h.id === ref.id)!;
    expect(listed.disks.map((d) => [d.id, d.sizeBytes])).toEqual([[id, size]]);

    const full = await syncHost({
      session,
      platform: 'openstack-ceph',
      hostId: ref.id,
      target,
      mode: 'full',
    });
    expect([full.ok, full.mode]).toEqual([true, 'full']);
    let [image, truth] = await imageAndTruth(id, size, target);
    // The parent's bytes are in the image: the clone's own objects cover only the write.
    expect(truth.subarray(0, 64 * KiB).equals(Buffer.from(pattern(size, 5)).subarray(0, 64 * KiB))).toBe(
      true,
    );
    expect(image.equals(truth)).toBe(true);

    await mock.writeDisk(id, 300 * KiB, pattern(10 * KiB, 7));
    const incremental = await syncHost({
      session,
      platform: 'openstack-ceph',
      hostId: ref.id,
      target,
      mode: 'incremental',
    });
    expect([incremental.ok, incremental.mode]).toEqual([true, 'incremental']);
    [image, truth] = await imageAndTruth(id, size, target);
    expect(image.equals(truth)).toBe(true);
  });

  it('a Ceph user without the Nova pool still lists and sweeps the volumes; the precheck says why the root disk is not synced', async () => {
    adminCeph([
      'auth',
      'caps',
      'client.cinder',
      'mon',
      'profile rbd',
      'osd',
      `profile rbd pool=${cluster!.pool}`,
    ]);
    const listed = (await session.listHosts()).find((h) => h.id === host.id)!;
    expect(listed.disks.map((d) => d.id)).toEqual([volumeId]);
    expect(listed.attributes).toEqual({ status: 'ACTIVE', bootsFromImage: true, rootDiskOnCeph: false });
    const check = (await session.prechecks(listed)).find((c) => c.id === 'root-disk-is-volume')!;
    expect([check.status, check.detail]).toEqual([
      'warn',
      `the instance boots from an image and no Nova pool (${NOVA_POOL}) holds ${host.id}_disk: its root disk is ephemeral on the compute node and is not synced (pool ${NOVA_POOL} of cluster ceph is not readable by the Ceph user)`,
    ]);
    expect((await session.sweep!({ dryRun: true })).resources).toEqual([]);
  });
});
