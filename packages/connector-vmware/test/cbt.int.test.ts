import { createVmwareConnector } from '@syncproxy/connector-vmware';
import { type MockVcenter, mockDataPath, startMockVcenter } from '@syncproxy/connector-vmware/mock';
import type { ChangedBlockReader, Extent } from '@syncproxy/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

const KIB = 1024;
const MIB = 1024 * KIB;
let vcenter: MockVcenter;
const connector = createVmwareConnector({ taskPollMs: 1, dataPath: mockDataPath(() => vcenter) });

async function extentsOf(reader: ChangedBlockReader): Promise<Extent[]> {
  const out: Extent[] = [];
  for await (const e of reader.extents()) out.push({ ...e });
  return out;
}

beforeEach(async () => {
  vcenter = await startMockVcenter();
});
afterEach(async () => {
  await vcenter.close();
  // Every nbdkit a reader started was stopped with its reader.
  expect(vcenter.state.nbdkitPids.size).toBe(0);
});

describe('QueryChangedDiskAreas', () => {
  it('changeId * yields only the allocated areas, and their bytes come through nbdkit', async () => {
    const vm = vcenter.addVm({ name: 'db-01', disks: [{ sizeBytes: 4 * MIB }] });
    const disk = vm.disks[0]!.disk;
    disk.write(128 * KIB, new Uint8Array(64 * KIB).fill(7));
    disk.write(3 * MIB, new Uint8Array(100 * KIB).fill(9));
    const session = await connector.connect(vcenter.config());
    try {
      const [host] = await session.listHosts();
      const snapshot = await session.createSnapshot(host!);
      const reader = await session.openReader(host!.disks[0]!, { snapshot });
      try {
        expect(await extentsOf(reader)).toEqual([
          { offset: 128 * KIB, length: 64 * KIB, kind: 'data' },
          { offset: 3 * MIB, length: 128 * KIB, kind: 'data' },
        ]);
        expect(vcenter.state.nbdkitPids.size).toBe(1);
        expect(new Uint8Array(await reader.read(3 * MIB + 99 * KIB, 2 * KIB))).toEqual(
          Uint8Array.from({ length: 2 * KIB }, (_, i) => (i < KIB ? 9 : 0)),
        );
      } finally {
        await reader.close();
      }
      expect(vcenter.state.nbdkitPids.size).toBe(0);
      await session.deleteSnapshot(snapshot);
    } finally {
      await session.close();
    }
  });

  it('pages through a disk larger than one reply: windows, empty windows and the 2000-area cap', async () => {
    vcenter.state.maxAreasPerReply = 3;
    vcenter.state.windowBytes = 1 * MIB;
    const vm = vcenter.addVm({ name: 'fs-01', disks: [{ sizeBytes: 8 * MIB, blockSizeBytes: 64 * KIB }] });
    const disk = vm.disks[0]!.disk;
    // Eight separate blocks in the first MiB (more than 3 per reply), nothing in MiB 1..6, one block in the last.
    for (let i = 0; i < 8; i++) disk.write(i * 128 * KIB, new Uint8Array(64 * KIB).fill(i + 1));
    disk.write(8 * MIB - 64 * KIB, new Uint8Array(64 * KIB).fill(0xee));
    const session = await connector.connect(vcenter.config());
    try {
      const [host] = await session.listHosts();
      const snapshot = await session.createSnapshot(host!);
      const reader = await session.openReader(host!.disks[0]!, { snapshot });
      try {
        expect(await extentsOf(reader)).toEqual([
          ...Array.from({ length: 8 }, (_, i) => ({ offset: i * 128 * KIB, length: 64 * KIB, kind: 'data' })),
          { offset: 8 * MIB - 64 * KIB, length: 64 * KIB, kind: 'data' },
        ]);
      } finally {
        await reader.close();
      }
      // One reply when the reader opened (offset 0) + the rest of the loop: 3+3+2 areas in MiB 0, then 7 windows.
      expect(vcenter.state.stats.changedAreaReplies).toBe(10);
      await session.deleteSnapshot(snapshot);
    } finally {
      await session.close();
    }
  });

  it('a CBT reset gives a cbt-reset error for the incremental, and a full sync recovers', async () => {
    const vm = vcenter.addVm({ name: 'app-01', disks: [{ sizeBytes: 2 * MIB }] });
    const disk = vm.disks[0]!.disk;
    disk.write(0, new Uint8Array(64 * KIB).fill(1));
    const session = await connector.connect(vcenter.config());
    try {
      const [host] = await session.listHosts();
      const base = await session.createSnapshot(host!);
      disk.write(MIB, new Uint8Array(64 * KIB).fill(2));
      vcenter.resetCbt(vm.moref);
      const next = await session.createSnapshot(host!);
      const error = await session
        .openReader(host!.disks[0]!, { snapshot: next, base })
        .catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'cbt-reset', retryable: false, platform: 'vmware' });
      expect((error as Error).message).toBe(
        'QueryChangedDiskAreas failed: FileFault: Error caused by file [datastore1] app-01/app-01-000001-ctk.vmdk (the changed-block tracking data of the base changeId is gone (CBT was reset or the disk moved): run a full sync)',
      );
      expect(vcenter.state.nbdkitPids.size).toBe(0);
      const full = await session.openReader(host!.disks[0]!, { snapshot: next });
      try {
        expect(await extentsOf(full)).toEqual([
          { offset: 0, length: 64 * KIB, kind: 'data' },
          { offset: MIB, length: 64 * KIB, kind: 'data' },
        ]);
        expect(new Uint8Array(await full.read(MIB, 64 * KIB))).toEqual(new Uint8Array(64 * KIB).fill(2));
      } finally {
        await full.close();
      }
      await session.deleteSnapshot(base);
      await session.deleteSnapshot(next);
    } finally {
      await session.close();
    }
  });

  it('an incremental yields exactly the blocks written since the base snapshot', async () => {
    const vm = vcenter.addVm({ name: 'inc-01', disks: [{ sizeBytes: 2 * MIB }] });
    const disk = vm.disks[0]!.disk;
    disk.write(0, new Uint8Array(256 * KIB).fill(1));
    const session = await connector.connect(vcenter.config());
    try {
      const [host] = await session.listHosts();
      const base = await session.createSnapshot(host!);
      disk.write(64 * KIB + 10, new Uint8Array(5).fill(3));
      disk.writeZeroes(192 * KIB, 64 * KIB);
      const next = await session.createSnapshot(host!);
      const reader = await session.openReader(host!.disks[0]!, { snapshot: next, base });
      try {
        expect(await extentsOf(reader)).toEqual([
          { offset: 64 * KIB, length: 64 * KIB, kind: 'data' },
          { offset: 192 * KIB, length: 64 * KIB, kind: 'data' },
        ]);
        expect(new Uint8Array(await reader.read(192 * KIB, 64 * KIB))).toEqual(new Uint8Array(64 * KIB));
      } finally {
        await reader.close();
      }
      await session.deleteSnapshot(base);
      await session.deleteSnapshot(next);
    } finally {
      await session.close();
    }
  });
});
