import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHcsConnector, lunNameOf } from '@syncproxy/connector-hcs';
import {
  type BlockSink,
  type ChangedBlockReader,
  createLocalMountSlots,
  FileManifestStore,
  FileSink,
  syncHost,
  transferDisk,
} from '@syncproxy/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GIB, leftovers, MIB, NOTHING_LEFT, type Rig, rejection, rig } from './helpers.js';

const hasXfsIo = spawnSync('xfs_io', ['-V']).status === 0;

let r: Rig;
let dir: string;
beforeEach(async () => {
  r = await rig();
  dir = await mkdtemp(join(tmpdir(), 'hcs-reader-'));
});
afterEach(async () => {
  await r.mock.close();
  await rm(dir, { recursive: true, force: true });
});

/** A FileSink that counts what reaches it. */
class CountingSink extends FileSink implements BlockSink {
  writes: Array<{ offset: number; length: number }> = [];
  override async write(offset: number, data: Uint8Array) {
    this.writes.push({ offset, length: data.length });
    return super.write(offset, data);
  }
}

async function setup(volumesGb = [1]) {
  const { server, volumes } = r.mock.addServer({ name: 'vm-1', volumesGb });
  volumes[0]!.disk.write(0, new Uint8Array(3 * MIB).fill(7));
  volumes[0]!.disk.write(700 * MIB, new Uint8Array(MIB + 4096).fill(9));
  const slots = createLocalMountSlots({ maxMountedDisks: 4 });
  const session = await r.connector.connect(r.mock.config(), r.context({ mountSlots: slots }));
  const host = (await session.listHosts()).find((h) => h.id === server.id)!;
  return { session, host, volumes, slots };
}

describe('hcs: snapshot, map, read, unmap', () => {
  it('full then incremental: byte-exact, and the incremental writes only the changed chunks to the sink', async () => {
    const { session, host, volumes, slots } = await setup();
    const disk = host.disks[0]!;
    const image = join(dir, 'disk.img');
    const store = new FileManifestStore(`${image}.manifest`);
    try {
      const full = await session.createSnapshot(host);
      // Every LUN snapshot of the server was activated in one call.
      expect(r.mock.state.stats.activateCalls).toBe(1);
      const reader = await session.openReader(disk, { snapshot: full });
      expect(slots.inUse).toBe(1);
      expect(r.mock.state.mappingViews.size).toBe(1);
      const sink = new CountingSink(image);
      try {
        await transferDisk({ reader, sink, checkpoint: false, manifest: store, chunkSizeBytes: MIB });
      } finally {
        await reader.close();
        await sink.close();
      }
      expect(slots.inUse).toBe(0);
      expect(r.mock.state.mappingViews.size).toBe(0);

      // Two changes: inside chunk 1 and across chunks 700/701.
      volumes[0]!.disk.write(MIB + 10, new Uint8Array([1, 2, 3]));
      volumes[0]!.disk.write(701 * MIB - 2, new Uint8Array([5, 5, 5, 5]));
      const next = await session.createSnapshot(host);
      const previousManifest = await store.load();
      const incremental = await session.openReader(disk, {
        snapshot: next,
        base: full,
        ...(previousManifest ? { previousManifest } : {}),
      });
      expect(incremental.warnings?.map((w) => w.code)).toContain('hash-diff');
      // With a manifest the base snapshot is not mapped to be hashed: one device now, two ever.
      expect(r.mock.state.deviceLinks).toBe(1);
      expect(r.mock.state.stats.deviceLinks).toBe(2);
      const sink2 = new CountingSink(image);
      try {
        await transferDisk({ reader: incremental, sink: sink2, checkpoint: false, manifest: store });
      } finally {
        await incremental.close();
        await sink2.close();
      }
      // Chunks 1, 700 and 701: 3 MiB of 1 GiB. The engine takes the manifest's 1 MiB grid (the
      // reader's hints.chunkSizeBytes) and writes one call a chunk; nothing else (an incremental
      // zeroes no unlisted range).
      expect(sink2.writes).toEqual([
        { offset: MIB, length: MIB },
        { offset: 700 * MIB, length: MIB },
        { offset: 701 * MIB, length: MIB },
      ]);
      const written = await readFile(image);
      for (const [offset, length] of [
        [0, 4 * MIB],
        [699 * MIB, 4 * MIB],
        [GIB - MIB, MIB],
      ] as const) {
        expect(
          Buffer.compare(
            written.subarray(offset, offset + length),
            Buffer.from(volumes[0]!.disk.read(offset, length)),
          ),
        ).toBe(0);
      }
      await session.deleteSnapshot(full);
      await session.deleteSnapshot(next);
      expect(leftovers(r.mock)).toEqual(NOTHING_LEFT);
    } finally {
      await session.close();
    }
  });

  it('readers of two volumes opened at once (as syncHost does with parallelDisks) each read their own volume', async () => {
    const { session, host, volumes, slots } = await setup([1, 1]);
    volumes[1]!.disk.write(0, new Uint8Array(2 * MIB).fill(3));
    try {
      const snapshot = await session.createSnapshot(host);
      const readers = await Promise.all(host.disks.map((disk) => session.openReader(disk, { snapshot })));
      try {
        expect(slots.inUse).toBe(2);
        expect(r.mock.state.deviceLinks).toBe(2);
        for (const [i, reader] of readers.entries()) {
          expect(Buffer.compare(await reader.read(0, 4 * MIB), volumes[i]!.disk.read(0, 4 * MIB))).toBe(0);
        }
      } finally {
        await Promise.all(readers.map((reader) => reader.close()));
      }
      expect(slots.inUse).toBe(0);
      expect(r.mock.state.deviceLinks).toBe(0);
      await session.deleteSnapshot(snapshot);
      expect(leftovers(r.mock)).toEqual(NOTHING_LEFT);
    } finally {
      await session.close();
    }
  });

  it('one snapshot mapped by two readers at once shows one device; closing one leaves the other readable', async () => {
    const { session, host, volumes } = await setup([1]);
    try {
      const snapshot = await session.createSnapshot(host);
      const disk = host.disks[0]!;
      const [first, second] = await Promise.all([
        session.openReader(disk, { snapshot }),
        session.openReader(disk, { snapshot }),
      ]);
      try {
        expect(r.mock.state.mappingViews.size).toBe(2);
        expect(r.mock.state.deviceLinks).toBe(1);
        await first!.close();
        expect(r.mock.state.deviceLinks).toBe(1);
        expect(Buffer.compare(await second!.read(0, 3 * MIB), volumes[0]!.disk.read(0, 3 * MIB))).toBe(0);
      } finally {
        await first!.close();
        await second!.close();
      }
      expect(r.mock.state.deviceLinks).toBe(0);
      await session.deleteSnapshot(snapshot);
      expect(leftovers(r.mock)).toEqual(NOTHING_LEFT);
    } finally {
      await session.close();
    }
  });

  it('syncHost, full then incremental: byte-exact images, and the incremental maps no base snapshot (the manifest is the base)', async () => {
    const { session, host, volumes } = await setup([1, 1]);
    const target = join(dir, 'target');
    try {
      const full = await syncHost({ session, platform: 'hcs', hostId: host.id, target, mode: 'full' });
      expect([full.ok, full.mode]).toEqual([true, 'full']);
      expect(r.mock.state.stats.deviceLinks).toBe(2);
      volumes[0]!.disk.write(MIB + 10, new Uint8Array([1, 2, 3]));
      volumes[1]!.disk.write(900 * MIB, new Uint8Array([4, 5]));
      const incremental = await syncHost({
        session,
        platform: 'hcs',
        hostId: host.id,
        target,
        mode: 'incremental',
      });
      expect([incremental.ok, incremental.mode]).toEqual([true, 'incremental']);
      expect(incremental.warnings.map((w) => w.code)).toContain('hash-diff');
      // One device per disk and sync: the base snapshots were never mapped to be hashed.
      expect(r.mock.state.stats.deviceLinks).toBe(4);
      for (const [i, outcome] of incremental.disks.entries()) {
        const image = await readFile(outcome.path);
        for (const [offset, length] of [
          [0, 4 * MIB],
          [699 * MIB, 4 * MIB],
          [899 * MIB, 2 * MIB],
        ] as const) {
          expect(
            Buffer.compare(image.subarray(offset, offset + length), volumes[i]!.disk.read(offset, length)),
          ).toBe(0);
        }
      }
      expect(r.mock.state.deviceLinks).toBe(0);
    } finally {
      await session.close();
    }
  });

  it('a server with two volumes gets a snapshot consistency group, activated as one; deleting it leaves nothing', async () => {
    const { session, host } = await setup([1, 1]);
    try {
      const snapshot = await session.createSnapshot(host);
      expect(r.mock.state.stats).toMatchObject({
        consistencyGroupsCreated: 1,
        consistencyGroupActivations: 1,
        activateCalls: 0,
      });
      const data = snapshot.disks.map((d) => d.data as { consistencyGroupId?: string; snapshotId: string });
      expect(new Set(data.map((d) => d.consistencyGroupId)).size).toBe(1);
      expect([...r.mock.state.consistencyGroups.values()][0]!.snapshots).toEqual(
        new Set(data.map((d) => d.snapshotId)),
      );
      await session.deleteSnapshot(snapshot);
      expect(leftovers(r.mock)).toEqual(NOTHING_LEFT);
    } finally {
      await session.close();
    }
  });

  it('an incremental whose base snapshot is gone (and no manifest) sends every chunk, with a warning, instead of failing', async () => {
    const { session, host } = await setup([1]);
    try {
      const base = await session.createSnapshot(host);
      await session.deleteSnapshot(base);
      const next = await session.createSnapshot(host);
      const reader = await session.openReader(host.disks[0]!, { snapshot: next, base });
      try {
        expect(reader.warnings?.map((w) => w.code)).toEqual([
          // The mock's mapped image is a sparse file: without xfs_io it is read whole, and says so.
          ...(hasXfsIo ? [] : ['allocation-unknown']),
          'hash-diff',
          'hcs-base-unavailable',
        ]);
        expect(reader.warnings?.at(-1)?.message).toContain('the storage no longer holds it');
      } finally {
        await reader.close();
      }
      await session.deleteSnapshot(next);
      expect(leftovers(r.mock)).toEqual(NOTHING_LEFT);
    } finally {
      await session.close();
    }
  });

  it('a failure after the consistency group is created (activation refused) leaves no snapshot, group or protection group', async () => {
    const { session, host } = await setup([1, 1]);
    try {
      r.mock.failDorado({
        path: '/snapshot_consistency_group/activate',
        code: 1077949006,
        description: 'The system is busy.',
        times: 1,
      });
      const error = await rejection(() => session.createSnapshot(host));
      expect(error.code).toBe('throttled');
      expect(error.message).toContain(
        'ActivateSnapshotConsistencyGroup failed with error 1077949006: The system is busy.',
      );
      expect(r.mock.state.stats.snapshotsCreated).toBe(2);
      expect(leftovers(r.mock)).toEqual(NOTHING_LEFT);
    } finally {
      await session.close();
    }
  });

  it('without consistency groups: one snapshot per LUN, activated in one call; a refused activation leaves no snapshot', async () => {
    r.mock.setConsistencyGroups(false);
    const { session, host } = await setup([1, 1]);
    try {
      const snapshot = await session.createSnapshot(host);
      expect(r.mock.state.stats).toMatchObject({
        consistencyGroupsCreated: 0,
        activateCalls: 1,
        snapshotsActivated: 2,
      });
      await session.deleteSnapshot(snapshot);
      r.mock.failDorado({
        path: '/snapshot/activate',
        code: 1077949006,
        description: 'The system is busy.',
        times: 1,
      });
      const error = await rejection(() => session.createSnapshot(host));
      expect(error.code).toBe('throttled');
      expect(error.message).toContain('ActivateSnapshot failed with error 1077949006: The system is busy.');
      expect(r.mock.state.stats.snapshotsCreated).toBe(4);
      expect(leftovers(r.mock)).toEqual(NOTHING_LEFT);
    } finally {
      await session.close();
    }
  });

  it('a volume EVS lists without a WWN is found on the Dorado by the LUN name its id gives', async () => {
    r.mock.state.evsShowsWwn = false;
    const { session, host } = await setup([1]);
    try {
      expect(host.disks[0]!.attributes?.wwn).toBeUndefined();
      const snapshot = await session.createSnapshot(host);
      expect((snapshot.disks[0]!.data as { lunId: string }).lunId).toBe(
        r.mock.state.volumes.get(host.disks[0]!.id)!.lunId,
      );
      const lunQueries = r.mock.dorado.calls
        .filter((c) => c.path.endsWith('/lun'))
        .map((c) => decodeURIComponent(c.query));
      expect(lunQueries).toEqual([`?filter=NAME::${lunNameOf(host.disks[0]!.id)}&range=[0-100]`]);
      await session.deleteSnapshot(snapshot);
    } finally {
      await session.close();
    }
  });

  it('an array that ignores list filters does not get another LUN synced or another host mapped: answers are checked', async () => {
    // Another server's volume comes first in every unfiltered listing.
    r.mock.addServer({ name: 'other', volumesGb: [1] });
    const { session, host } = await setup([1]);
    try {
      r.mock.state.ignoreFilters = true;
      // Someone else's host, host group and initiator come first in every unfiltered listing.
      r.mock.state.hosts.set('800', { ID: '800', NAME: 'db-cluster', DESCRIPTION: '' });
      r.mock.state.hostGroups.set('801', {
        ID: '801',
        NAME: 'db-cluster-hg',
        DESCRIPTION: '',
        hosts: new Set(['800']),
      });
      r.mock.state.initiators.set('iqn.2000-01.com.example:db', '800');
      const snapshot = await session.createSnapshot(host);
      const lunId = (snapshot.disks[0]!.data as { lunId: string }).lunId;
      expect(lunId).toBe(r.mock.state.volumes.get(host.disks[0]!.id)!.lunId);
      const reader = await session.openReader(host.disks[0]!, { snapshot });
      const view = [...r.mock.state.mappingViews.values()][0]!;
      expect(r.mock.state.hostGroups.get([...view.hostGroups][0]!)!.NAME).toBe(
        'syncproxy-hg-syncproxy-proxy-01',
      );
      expect(r.mock.state.hostGroups.get('801')!.hosts).toEqual(new Set(['800']));
      expect(r.mock.state.initiators.get('iqn.2000-01.com.example:db')).toBe('800');
      await reader.close();
      await session.deleteSnapshot(snapshot);
    } finally {
      await session.close();
    }
  });

  it('a LUN whose capacity is not the listed size (here a wrong gbBytes) is refused with integrity, creating nothing', async () => {
    const { server } = r.mock.addServer({ name: 'vm-9', volumesGb: [1] });
    const connector = createHcsConnector({ gbBytes: 8 * MIB });
    const session = await connector.connect(r.mock.config(), r.context());
    try {
      const host = (await session.listHosts()).find((h) => h.id === server.id)!;
      expect(host.disks[0]!.sizeBytes).toBe(8 * MIB);
      const error = await rejection(() => session.createSnapshot(host));
      expect(error.code).toBe('integrity');
      expect(error.retryable).toBe(false);
      expect(error.message).toContain(
        `holds ${GIB} bytes, the volume is listed with ${8 * MIB}: list the hosts again (was it resized?)`,
      );
      expect(r.mock.state.stats.snapshotsCreated).toBe(0);
      expect(leftovers(r.mock)).toEqual(NOTHING_LEFT);
    } finally {
      await session.close();
    }
  });

  it('a failure while mapping (the LUN group association refused) leaves no mapping view, LUN group entry or snapshot, and gives the slot back', async () => {
    const { session, host, slots } = await setup();
    try {
      const snapshot = await session.createSnapshot(host);
      r.mock.failDorado({ path: '/mappingview/create_associate', skip: 1, code: 1077951812, times: 1 });
      const error = await rejection(() => session.openReader(host.disks[0]!, { snapshot }));
      expect(error.code).toBe('platform');
      expect(slots.inUse).toBe(0);
      expect(r.mock.state.mappingViews.size).toBe(0);
      expect(r.mock.state.lunGroupEntries).toBe(0);
      await session.deleteSnapshot(snapshot);
      expect(leftovers(r.mock)).toEqual(NOTHING_LEFT);
    } finally {
      await session.close();
    }
  });

  it('a failure after mapping (the device never shows on the proxy) unmaps, names the WWN, and gives the slot back', async () => {
    const empty = await mkdtemp(join(dir, 'by-id-'));
    const { server } = r.mock.addServer({ name: 'vm-2', volumesGb: [1] });
    const slots = createLocalMountSlots({ maxMountedDisks: 4 });
    // A short wait: the device never shows, and what is checked is what happens after.
    const connector = createHcsConnector({ locateTimeoutMs: 200, chunkSizeBytes: MIB });
    const session = await connector.connect(r.mock.config(), {
      devices: { byIdDir: empty, sysBlockDir: join(dir, 'no-sys') },
      mountSlots: slots,
    });
    try {
      const host = (await session.listHosts()).find((h) => h.id === server.id)!;
      const snapshot = await session.createSnapshot(host);
      const wwn = (snapshot.disks[0]!.data as { snapshotWwn: string }).snapshotWwn;
      const error = await rejection(() => session.openReader(host.disks[0]!, { snapshot }));
      expect(error.code).toBe('timeout');
      expect(error.message).toContain(wwn);
      expect(slots.inUse).toBe(0);
      expect(r.mock.state.mappingViews.size).toBe(0);
      expect(r.mock.state.lunGroupEntries).toBe(0);
      await session.deleteSnapshot(snapshot);
      expect(leftovers(r.mock)).toEqual(NOTHING_LEFT);
    } finally {
      await session.close();
    }
  });

  it('an abort while the device is awaited rejects with aborted and still unmaps, even with the session signal aborted', async () => {
    const empty = await mkdtemp(join(dir, 'by-id-'));
    const { server } = r.mock.addServer({ name: 'vm-3', volumesGb: [1] });
    const slots = createLocalMountSlots({ maxMountedDisks: 4 });
    const controller = new AbortController();
    const session = await r.connector.connect(r.mock.config(), {
      devices: { byIdDir: empty, sysBlockDir: join(dir, 'no-sys') },
      mountSlots: slots,
      signal: controller.signal,
    });
    try {
      const host = (await session.listHosts()).find((h) => h.id === server.id)!;
      const snapshot = await session.createSnapshot(host);
      setTimeout(() => controller.abort(), 300);
      const error = await rejection(() => session.openReader(host.disks[0]!, { snapshot }));
      expect(error.code).toBe('aborted');
      expect(slots.inUse).toBe(0);
      expect(r.mock.state.mappingViews.size).toBe(0);
      expect(r.mock.state.lunGroupEntries).toBe(0);
      await session.deleteSnapshot(snapshot);
      expect(leftovers(r.mock)).toEqual(NOTHING_LEFT);
    } finally {
      await session.close();
    }
    expect(r.mock.state.sessions.size).toBe(0);
  });

  it('a failure mid-read leaves nothing once the reader is closed and the snapshot deleted, and gives the slot back', async () => {
    const { session, host, slots } = await setup();
    try {
      const snapshot = await session.createSnapshot(host);
      const reader = await session.openReader(host.disks[0]!, { snapshot });
      expect(slots.inUse).toBe(1);
      expect(r.mock.state.deviceLinks).toBe(1);
      let reads = 0;
      const failing: ChangedBlockReader = new Proxy(reader, {
        get(target, property, receiver) {
          if (property === 'read' || property === 'readInto') {
            const original = Reflect.get(target, property, receiver) as (
              ...args: unknown[]
            ) => Promise<unknown>;
            return (...args: unknown[]) => {
              if (++reads > 2) return Promise.reject(new Error('injected: the path to the array went down'));
              return original.apply(target, args);
            };
          }
          return Reflect.get(target, property, receiver);
        },
      });
      const sink = new FileSink(join(dir, 'mid.img'));
      try {
        await expect(
          transferDisk({ reader: failing, sink, checkpoint: false, manifest: false, chunkSizeBytes: MIB }),
        ).rejects.toThrow();
      } finally {
        await reader.close();
        await sink.close();
      }
      expect(slots.inUse).toBe(0);
      expect(r.mock.state.mappingViews.size).toBe(0);
      expect(r.mock.state.lunGroupEntries).toBe(0);
      await session.deleteSnapshot(snapshot);
      expect(leftovers(r.mock)).toEqual(NOTHING_LEFT);
    } finally {
      await session.close();
    }
  });

  it('sweep removes the mapping views, LUN group entries and snapshots a crashed sync left, and nothing else', async () => {
    const { session, host } = await setup();
    try {
      const snapshot = await session.createSnapshot(host);
      const reader = await session.openReader(host.disks[0]!, { snapshot });
      // Someone else's objects on the array stay.
      r.mock.state.lunGroups.set('900', {
        ID: '900',
        NAME: 'oracle-prod',
        DESCRIPTION: '',
        snapshots: new Set(),
      });
      const dry = await session.sweep!({ dryRun: true });
      expect(dry.resources.every((x) => !x.deleted)).toBe(true);
      expect(r.mock.state.mappingViews.size).toBe(1);
      const report = await session.sweep!({});
      expect(report.resources.map((x) => x.kind).sort()).toEqual([
        'lun-group',
        'lun-group-entry',
        'mapping-view',
        'snapshot',
      ]);
      expect(report.resources.every((x) => x.deleted)).toBe(true);
      expect(leftovers(r.mock)).toEqual({ ...NOTHING_LEFT, lunGroups: 1 });
      expect(r.mock.state.lunGroups.has('900')).toBe(true);
      // The reader's own cleanup finds everything gone and does not fail.
      await reader.close();
    } finally {
      await session.close();
    }
  });

  it('sweep removes a consistency group a crashed sync left, with its member snapshots and protection group', async () => {
    const { session, host } = await setup([1, 1]);
    try {
      const snapshot = await session.createSnapshot(host);
      const reader = await session.openReader(host.disks[1]!, { snapshot });
      const report = await session.sweep!({});
      expect(report.resources.map((x) => x.kind).sort()).toEqual([
        'lun-group',
        'lun-group-entry',
        'mapping-view',
        'snapshot-consistency-group',
      ]);
      expect(leftovers(r.mock)).toEqual(NOTHING_LEFT);
      await reader.close();
    } finally {
      await session.close();
    }
  });

  it('sweep keeps the snapshots named in keep', async () => {
    const { session, host } = await setup();
    try {
      const snapshot = await session.createSnapshot(host);
      const report = await session.sweep!({ keep: [snapshot.id] });
      expect(report.resources).toEqual([expect.objectContaining({ kind: 'snapshot', deleted: false })]);
      expect(r.mock.state.snapshots.size).toBe(1);
    } finally {
      await session.close();
    }
  });
});
