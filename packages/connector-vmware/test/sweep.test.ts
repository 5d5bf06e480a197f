import { createVmwareConnector } from '@syncproxy/connector-vmware';
import { type MockVcenter, startMockVcenter } from '@syncproxy/connector-vmware/mock';
import type { ConnectorSession, Host, SnapshotRef } from '@syncproxy/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

const connector = createVmwareConnector({ taskPollMs: 1, dataPath: 'nbd://127.0.0.1:1/{vm}' });
const T0 = '2026-03-01T00:00:00.000Z';
const LATER = '2026-03-11T00:00:00.000Z';

let vcenter: MockVcenter;
let session: ConnectorSession;
let hosts: Host[];

beforeEach(async () => {
  vcenter = await startMockVcenter();
  vcenter.addVm({ name: 'web-01', disks: [{ sizeBytes: 1024 * 1024 }] });
  vcenter.addVm({ name: 'db-01', disks: [{ sizeBytes: 1024 * 1024 }] });
  session = await connector.connect(vcenter.config());
  hosts = await session.listHosts();
});
afterEach(async () => {
  await session.close();
  await vcenter.close();
});

const morefOf = (ref: SnapshotRef) => ref.disks[0]!.data.snapshot as string;

/** Snapshots a person took that look like ours: our name but their own description, or our description naming another VM. */
function plantLookAlikes(web: string, db: string): string[] {
  const plant = (vm: string, moref: string, name: string, description: string) => {
    vcenter.state.snapshots.set(moref, {
      moref,
      id: 90,
      vm,
      name,
      description,
      createTime: T0,
      quiesced: false,
      disks: [],
    });
    vcenter.state.vms.get(vm)!.snapshots.push(moref);
    return moref;
  };
  return [
    plant(web, 'snapshot-901', `syncproxy ${T0}`, 'before the kernel upgrade'),
    plant(db, 'snapshot-902', 'copied by hand', `syncproxy snapshot of ${web} at ${T0}`),
  ];
}

function remaining(): string[] {
  return [...vcenter.state.snapshots.keys()].sort();
}

describe('sweep', () => {
  it('removes only the snapshots it described, older than olderThan and not kept, walking every snapshot tree', async () => {
    const [web, db] = hosts as [Host, Host];
    const old = [
      await session.createSnapshot(web, { label: 'nightly' }),
      await session.createSnapshot(web),
      await session.createSnapshot(db),
    ];
    const fresh = await session.createSnapshot(web);
    for (const ref of old) vcenter.state.snapshots.get(morefOf(ref))!.createTime = T0;
    vcenter.state.snapshots.get(morefOf(fresh))!.createTime = LATER;
    const lookAlikes = plantLookAlikes(web.id, db.id);
    const oldIds = old.map(morefOf);
    const olderThan = '2026-03-02T00:00:00Z';

    const dry = await session.sweep!({ olderThan, dryRun: true });
    expect(dry.resources).toEqual(
      oldIds.map((id) => ({ kind: 'snapshot', id, createdAt: T0, deleted: false })),
    );
    expect(remaining()).toEqual([...oldIds, morefOf(fresh), ...lookAlikes].sort());

    const swept = await session.sweep!({ olderThan, keep: [old[1]!.id] });
    expect(swept.resources).toEqual(
      oldIds.map((id) => ({ kind: 'snapshot', id, createdAt: T0, deleted: id !== morefOf(old[1]!) })),
    );
    expect(remaining()).toEqual([morefOf(old[1]!), morefOf(fresh), ...lookAlikes].sort());
    expect(vcenter.state.stats.calls.RemoveSnapshot_Task).toBe(2);

    const rest = await session.sweep!();
    expect(rest.resources.map((r) => [r.id, r.deleted])).toEqual([
      [morefOf(old[1]!), true],
      [morefOf(fresh), true],
    ]);
    expect(remaining()).toEqual(lookAlikes);
  });
});
