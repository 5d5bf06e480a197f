import type { FileHandle } from 'node:fs/promises';
import { localdisk, ManifestReader } from '@syncproxy/connector-localdisk';
import { createLocalDiskPlatform, type LocalDiskPlatform } from '@syncproxy/connector-localdisk/mock';
import { type ConnectorSession, DiskManifest, type Host, SyncproxyError } from '@syncproxy/core';
import { afterEach, describe, expect, it } from 'vitest';

const KIB = 1024;
let platform: LocalDiskPlatform | undefined;
let session: ConnectorSession | undefined;
afterEach(async () => {
  await session?.close();
  await platform?.close();
  session = undefined;
  platform = undefined;
});

async function setup(
  sizeBytes = 512 * KIB,
): Promise<{ session: ConnectorSession; host: Host; platform: LocalDiskPlatform }> {
  platform = await createLocalDiskPlatform();
  await platform.createHost({ name: 'pm-1', disks: [{ sizeBytes }] });
  session = await localdisk.connect(platform.config());
  const [host] = await session.listHosts();
  return { session, host: host!, platform };
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

describe('connector-localdisk', () => {
  it('a full read names only the chunks holding data; an incremental only the chunks whose hash changed', async () => {
    const { session, host, platform } = await setup();
    await platform.writeDisk('disk-0', 70 * KIB, Uint8Array.of(1));
    const s1 = await session.createSnapshot(host);
    const full = await session.openReader(host.disks[0]!, { snapshot: s1 });
    expect(await collect(full.extents())).toEqual([{ offset: 64 * KIB, length: 64 * KIB, kind: 'data' }]);
    expect(full.granularity).toBe(64 * KIB);
    await full.close();

    await platform.writeZeroes('disk-0', 70 * KIB, 1);
    await platform.writeDisk('disk-0', 512 * KIB - 1, Uint8Array.of(2));
    const s2 = await session.createSnapshot(host);
    const incremental = await session.openReader(host.disks[0]!, { snapshot: s2, base: s1 });
    expect(await collect(incremental.extents())).toEqual([
      { offset: 64 * KIB, length: 64 * KIB, kind: 'zero' },
      { offset: 448 * KIB, length: 64 * KIB, kind: 'data' },
    ]);
    expect(incremental.warnings?.map((w) => w.code)).toEqual(['hash-diff']);
    await incremental.close();
  });

  it('declares a full read without a base and an incremental with one (hints.incremental)', () => {
    const manifest = DiskManifest.create({ diskSize: 64 * KIB, chunkSizeBytes: 64 * KIB });
    const options = { file: {} as FileHandle, path: 'disk.img', snapshotId: 's', manifest };
    expect(new ManifestReader(options).hints?.incremental).toBe(false);
    expect(new ManifestReader({ ...options, base: manifest }).hints?.incremental).toBe(true);
  });

  it('a disk written after its snapshot fails the read with an integrity error, not a torn image', async () => {
    const { session, host, platform } = await setup();
    await platform.writeDisk('disk-0', 0, Uint8Array.of(1, 2, 3));
    const snapshot = await session.createSnapshot(host);
    await platform.writeDisk('disk-0', 1, Uint8Array.of(9));
    const reader = await session.openReader(host.disks[0]!, { snapshot });
    const error = await reader.read(0, 64 * KIB).catch((e: unknown) => e);
    expect(SyncproxyError.hasCode(error, 'integrity')).toBe(true);
    expect((error as SyncproxyError).retryable).toBe(false);
    expect((error as SyncproxyError).message).toBe(
      `disk ${platform.dir}/disk-0.img changed since snapshot ${snapshot.id} (chunk at offset 0): nothing may write to a local disk while it is synced; take a new snapshot, or read a frozen LVM/VSS snapshot device`,
    );
    await reader.close();
  });

  it('reads any sub-range exactly, across chunk boundaries', async () => {
    const { session, host, platform } = await setup();
    const bytes = Uint8Array.from({ length: 200 * KIB }, (_, i) => (i * 7) % 251);
    await platform.writeDisk('disk-0', 10 * KIB, bytes);
    const snapshot = await session.createSnapshot(host);
    const reader = await session.openReader(host.disks[0]!, { snapshot });
    expect(await reader.read(60 * KIB, 100 * KIB)).toEqual(bytes.subarray(50 * KIB, 150 * KIB));
    await reader.close();
  });

  it('refuses a snapshot id that could leave the state directory', async () => {
    const { session, host } = await setup();
    const snapshot = await session.createSnapshot(host);
    const error = await session
      .openReader(host.disks[0]!, { snapshot: { ...snapshot, id: '../../etc' } })
      .catch((e: unknown) => e);
    expect(SyncproxyError.hasCode(error, 'config')).toBe(true);
    expect((error as Error).message).toBe('invalid snapshot id "../../etc"');
  });

  it('rejects a chunk size that is not a multiple of 4096, naming the field', async () => {
    platform = await createLocalDiskPlatform();
    await platform.createHost({ name: 'pm-1', disks: [{ sizeBytes: 64 * KIB }] });
    const config = { ...(platform.config() as object), chunkSizeBytes: 65 * KIB + 1 };
    const error = await localdisk.connect(config).catch((e: unknown) => e);
    expect(SyncproxyError.hasCode(error, 'config')).toBe(true);
    expect((error as Error).message).toBe(
      'invalid localdisk config: chunkSizeBytes: must be a multiple of 4096',
    );
  });

  it('refuses two disks with one id (or one path without ids), naming the field', async () => {
    const base = { hostName: 'pm-1', stateDir: '/tmp/state' };
    for (const [disks, message] of [
      [
        [
          { path: '/d/a.img', id: 'root' },
          { path: '/d/b.img', id: 'root' },
        ],
        'invalid localdisk config: disks.1.id: names a disk already listed (each disk id, or path without one, once)',
      ],
      [
        [{ path: '/d/a.img' }, { path: '/d/a.img' }],
        'invalid localdisk config: disks.1.path: names a disk already listed (each disk id, or path without one, once)',
      ],
    ] as const) {
      const error = await localdisk.connect({ ...base, disks }).catch((e: unknown) => e);
      expect(SyncproxyError.hasCode(error, 'config')).toBe(true);
      expect((error as Error).message).toBe(message);
    }
  });

  it('a missing disk file is not-found, naming the path', async () => {
    platform = await createLocalDiskPlatform();
    const error = await localdisk
      .connect({
        hostName: 'pm-1',
        disks: [{ path: `${platform.dir}/none.img` }],
        stateDir: `${platform.dir}/state`,
      })
      .then((s) => {
        session = s;
        return s.listHosts();
      })
      .catch((e: unknown) => e);
    expect(SyncproxyError.hasCode(error, 'not-found')).toBe(true);
    expect((error as Error).message).toBe(`open disk ${platform.dir}/none.img failed: not found (ENOENT)`);
  });
});
