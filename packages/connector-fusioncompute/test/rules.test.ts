import { FcApiError, HostLimits } from '@syncproxy/connector-fusioncompute';
import { SyncproxyError } from '@syncproxy/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hostFor, MIB, type Rig, startRig, writePattern } from './helpers.js';

let rig: Rig;
beforeEach(async () => {
  rig = await startRig({ readLatencyMs: 2 });
});
afterEach(async () => {
  await rig.close();
});

async function rejection(promise: Promise<unknown>): Promise<SyncproxyError> {
  try {
    await promise;
  } catch (error) {
    if (SyncproxyError.isInstance(error)) return error;
    throw error;
  }
  throw new Error('expected a rejection');
}

async function setup(spec: Parameters<Rig['fc']['addVm']>[0]) {
  const { vm, volumes } = rig.fc.addVm(spec);
  const session = await rig.connect();
  const host = hostFor(await session.listHosts(), vm.urn);
  const checks = await session.prechecks(host);
  const check = (id: string) => checks.find((c) => c.id === id)!;
  return { vm, volumes, session, host, checks, check };
}

describe('prechecks', () => {
  it('are numbered P1-P4, L1-L9, then N1, each with a title and a status', async () => {
    const { checks } = await setup({ name: 'web', volumes: [{ sizeBytes: MIB }] });
    expect(checks.map((c) => [c.id, c.status])).toEqual([
      ['P1-tools-running', 'pass'],
      ['P2-snapshot-count', 'pass'],
      ['P3-vm-state', 'pass'],
      ['P4-no-shutdown-during-backup', 'warn'],
      ['L1-no-shared-disks', 'pass'],
      ['L2-no-independent-disks', 'pass'],
      ['L3-cbt-reset', 'pass'],
      ['L4-exclusive-operations', 'pass'],
      ['L5-no-linked-clone-or-template', 'pass'],
      ['L6-same-storage-type', 'pass'],
      ['L7-volumes-in-backup', 'pass'],
      ['L8-storage-io', 'warn'],
      ['L9-backup-connections', 'pass'],
      ['N1-cna-data-port', 'pass'],
    ]);
  });
});

describe('the 4 prerequisites', () => {
  it('P1: tools not running fails the precheck and createSnapshot refuses, unsupported', async () => {
    const { session, host, check } = await setup({ name: 'vm-p1', toolsRunning: false, volumes: [{}] });
    expect(check('P1-tools-running')).toEqual({
      id: 'P1-tools-running',
      title: 'P1. VM tools installed and running',
      status: 'fail',
      detail: 'the VM tools of vm-p1 are not running (notRunning); CBT backup snapshots need them',
      remedy: 'install the VM tools in the guest and start them, then sync again',
    });
    const error = await rejection(session.createSnapshot(host));
    expect([error.code, error.retryable, error.message]).toEqual([
      'unsupported',
      false,
      'P1. VM tools installed and running failed: the VM tools of vm-p1 are not running (notRunning); CBT backup snapshots need them (install the VM tools in the guest and start them, then sync again)',
    ]);
    expect(rig.fc.state.snapshotCount).toBe(0);
  });

  it('P2: a VM with 32 snapshots fails the precheck and createSnapshot refuses, no-capacity', async () => {
    const { session, host } = await setup({ name: 'vm-p2', volumes: [{}] });
    for (let i = 0; i < 32; i++) await session.createSnapshot(host);
    const check = (await session.prechecks(host)).find((c) => c.id === 'P2-snapshot-count');
    expect(check).toMatchObject({
      status: 'fail',
      detail: 'vm-p2 has 32 snapshots, the most FusionCompute allows is 32',
      remedy: 'delete at least one snapshot of the VM, then sync again',
    });
    const error = await rejection(session.createSnapshot(host));
    expect([error.code, error.retryable, error.message]).toEqual([
      'no-capacity',
      false,
      'P2. At most 32 snapshots per VM failed: vm-p2 has 32 snapshots, the most FusionCompute allows is 32 (delete at least one snapshot of the VM, then sync again)',
    ]);
    expect(rig.fc.state.snapshotCount).toBe(32);
  });

  it('P3: a migrating VM fails the precheck and createSnapshot refuses, conflict and retryable', async () => {
    const { session, host, check } = await setup({ name: 'vm-p3', status: 'migrating', volumes: [{}] });
    expect(check('P3-vm-state')).toMatchObject({
      status: 'fail',
      detail: 'vm-p3 is migrating; a snapshot needs it running, hibernated or stopped',
    });
    const error = await rejection(session.createSnapshot(host));
    expect([error.code, error.retryable, error.message]).toEqual([
      'conflict',
      true,
      'P3. The VM is running, hibernated or stopped failed: vm-p3 is migrating; a snapshot needs it running, hibernated or stopped (wait until the VM is running, hibernated or stopped, then sync again)',
    ]);
  });

  it('P4: shutting the VM down during a backup fails the read, not retryable, and says why', async () => {
    const { vm, volumes, session, host, check } = await setup({ name: 'vm-p4', volumes: [{}] });
    expect(check('P4-no-shutdown-during-backup')).toMatchObject({
      status: 'warn',
      detail: 'vm-p4 is running: shutting it down while a sync reads its disks fails that sync',
      remedy: 'keep the VM running, hibernated or stopped until the sync ends',
    });
    writePattern(volumes[0]!, 1);
    const snapshot = await session.createSnapshot(host);
    const reader = await session.openReader(host.disks[0]!, { snapshot });
    try {
      await reader.read(0, 65_536);
      rig.fc.shutdown(vm.id);
      const error = await rejection(reader.read(65_536, 65_536));
      expect([error.code, error.retryable, error.message]).toEqual([
        'platform',
        false,
        `ReadBackupData failed: HTTP 409 10420061: the VM was shut down during the backup from 127.0.0.1:${rig.fc.cnas[0]!.server.port} (keep the VM running, hibernated or stopped until the sync ends)`,
      ]);
    } finally {
      await reader.close();
    }
    expect(rig.fc.backupResourceCount).toBe(0);
  });
});

describe('the 9 limits', () => {
  it('L1: shared disks fail the precheck and createSnapshot refuses, unsupported', async () => {
    const { volumes, session, host, check } = await setup({ name: 'vm-l1', volumes: [{}, { shared: true }] });
    const detail = `vm-l1 has shared disk(s) ${volumes[1]!.urn}; FusionCompute cannot snapshot shared disks`;
    expect(check('L1-no-shared-disks')).toMatchObject({ status: 'fail', detail });
    const error = await rejection(session.createSnapshot(host));
    expect([error.code, error.message]).toEqual([
      'unsupported',
      `L1. No shared disks failed: ${detail} (detach the shared disks from the VM, or protect them another way)`,
    ]);
  });

  it('L2: independent disks fail the precheck and createSnapshot refuses, unsupported', async () => {
    const { volumes, session, host, check } = await setup({
      name: 'vm-l2',
      volumes: [{}, { independent: true }],
    });
    const detail = `vm-l2 has independent disk(s) ${volumes[1]!.urn}, which snapshots leave out and cannot be backed up`;
    expect(check('L2-no-independent-disks')).toMatchObject({ status: 'fail', detail });
    const error = await rejection(session.createSnapshot(host));
    expect([error.code, error.message]).toEqual([
      'unsupported',
      `L2. No independent disks failed: ${detail} (make the disks dependent (not independent) in the VM configuration)`,
    ]);
  });

  it('L3: the precheck says which events reset CBT (the full sync with cbt-reset is in sync.test.ts)', async () => {
    const { check } = await setup({ name: 'vm-l3', volumes: [{}] });
    expect(check('L3-cbt-reset').detail).toBe(
      'HA, a snapshot restore, a volume expansion or a compute-node restart resets CBT: the next sync then reads the disks in full, with warning cbt-reset',
    );
  });

  it('L4: an operation exclusive with snapshots makes createSnapshot fail with conflict, retryable, errorCode kept', async () => {
    const { vm, session, host } = await setup({ name: 'vm-l4', volumes: [{}] });
    rig.fc.setBusy(vm.id, 'storage migration');
    const error = await rejection(session.createSnapshot(host));
    expect(FcApiError.isInstance(error)).toBe(true);
    expect([error.code, error.retryable, (error as FcApiError).errorCode, error.message]).toEqual([
      'conflict',
      true,
      '10300055',
      `CreateSnapshot failed: HTTP 409 10300055: the VM is running an operation that is mutually exclusive with snapshots: storage migration from POST ${vm.uri}/snapshots (an operation exclusive with snapshots is running on the VM; retry when it ends)`,
    ]);
    rig.fc.setBusy(vm.id, undefined);
    await expect(session.createSnapshot(host)).resolves.toMatchObject({ hostId: vm.urn });
  });

  it('L5: templates and linked clones fail the precheck and createSnapshot refuses, unsupported', async () => {
    const template = await setup({ name: 'tpl', template: true, volumes: [{}] });
    expect(template.check('L5-no-linked-clone-or-template')).toMatchObject({
      status: 'fail',
      detail: 'tpl is a template; templates cannot be backed up',
    });
    const t = await rejection(template.session.createSnapshot(template.host));
    expect([t.code, t.message]).toEqual([
      'unsupported',
      'L5. Not a linked clone or a template failed: tpl is a template; templates cannot be backed up (sync a VM deployed from the template instead)',
    ]);
    const clone = await setup({ name: 'lc', linkedClone: true, volumes: [{}] });
    const c = await rejection(clone.session.createSnapshot(clone.host));
    expect(c.message).toBe(
      'L5. Not a linked clone or a template failed: lc is a linked clone; linked clones cannot be backed up (convert the VM to a full clone first)',
    );
  });

  it('L6: the precheck names the storage types a restore must keep', async () => {
    const { check } = await setup({
      name: 'vm-l6',
      volumes: [{ storageType: 'LOCALPOME' }, { storageType: 'IPSAN' }],
    });
    expect(check('L6-same-storage-type')).toMatchObject({
      status: 'pass',
      detail:
        'the disks of vm-l6 are on LOCALPOME, IPSAN storage; a restore must target the same storage type',
    });
  });

  it('L7: the VRM refuses a 9th volume in backup on a host, no-capacity and retryable', async () => {
    const { volumes, session, host, check } = await setup({
      name: 'vm-l7',
      volumes: Array.from({ length: 9 }, () => ({})),
    });
    expect(check('L7-volumes-in-backup').detail).toBe(
      'vm-l7 has 9 disk(s); at most 8 volumes of its host are backed up at once, the others wait',
    );
    for (const v of volumes) writePattern(v, 3, 1);
    const snapshot = await session.createSnapshot(host);
    // A connector told the host takes 9 shows that the mock itself enforces 8.
    const loose = await rig.connect({ hostLimits: new HostLimits({ maxVolumes: 9 }) });
    const readers = await Promise.all(host.disks.map((d) => loose.openReader(d, { snapshot })));
    try {
      const results = await Promise.allSettled(readers.map((r) => r.read(0, 4096)));
      const refused = results
        .filter((r) => r.status === 'rejected')
        .map((r) => (r as PromiseRejectedResult).reason);
      expect(refused).toHaveLength(1);
      expect([refused[0].code, refused[0].retryable]).toEqual(['no-capacity', true]);
      expect(
        volumes.map(
          (v) =>
            `CreateBackupResource failed: HTTP 403 10420058: the host has reached its backup limit (8 volumes, 8 connections): host ${rig.fc.cnas[0]!.id} already backs up 8 volumes from POST ${v.uri}/backupresources (the host allows 8 volumes in backup and 8 backup connections at most; retry later)`,
        ),
      ).toContain(refused[0].message);
    } finally {
      for (const r of readers) await r.close();
    }
    expect(rig.fc.state.peakVolumes).toBe(8);
    expect(rig.fc.backupResourceCount).toBe(0);
  });

  it('L8: the precheck warns that backups add storage I/O', async () => {
    const { check } = await setup({ name: 'vm-l8', volumes: [{}] });
    expect(check('L8-storage-io')).toEqual({
      id: 'L8-storage-io',
      title: 'L8. Backups add storage I/O',
      status: 'warn',
      detail: 'reading the disks of vm-l8 adds I/O on their datastores, which slows the VMs on them',
      remedy: 'schedule syncs outside the busy hours of the storage',
    });
  });

  it('L9: the CNA refuses a 9th backup connection; the connector never opens one (perHostLimits declared)', async () => {
    const { volumes, session, host, check } = await setup({ name: 'vm-l9', volumes: [{}] });
    expect(check('L9-backup-connections').detail).toBe(
      `the proxy opens at most 8 backup connections to CNA01 (127.0.0.1:21064), across all its syncs`,
    );
    writePattern(volumes[0]!, 5, 2);
    const snapshot = await session.createSnapshot(host);
    let refusedCount = -1;
    // Two sessions told the host takes 32 connections (each session's pool opens 8) show the mock enforces 8.
    const limits = new HostLimits({ maxConnections: 32 });
    const readers = [
      await (await rig.connect({ hostLimits: limits })).openReader(host.disks[0]!, { snapshot }),
      await (await rig.connect({ hostLimits: limits })).openReader(host.disks[0]!, { snapshot }),
    ];
    try {
      for (const reader of readers) await reader.read(0, 4096); // the backup resources exist before the burst
      rig.fc.state.options.readLatencyMs = 50; // every read holds its connection long enough to overlap
      const results = await Promise.allSettled(
        readers.flatMap((reader) => Array.from({ length: 16 }, (_, i) => reader.read(i * 65_536, 65_536))),
      );
      const refused = results
        .filter((r) => r.status === 'rejected')
        .map((r) => (r as PromiseRejectedResult).reason);
      expect(refused.length).toBeGreaterThan(0);
      refusedCount = refused.length;
      expect([refused[0].code, refused[0].retryable, refused[0].message]).toEqual([
        'no-capacity',
        true,
        `ReadBackupData failed: HTTP 503 10420058: the host has reached its backup limit (8 volumes, 8 connections): host CNA01 serves 8 backup connections already from 127.0.0.1:${rig.fc.cnas[0]!.server.port} (the host allows 8 volumes in backup and 8 backup connections at most; retry later)`,
      ]);
    } finally {
      for (const reader of readers) await reader.close();
    }
    expect(rig.fc.cnas[0]!.peakConnections).toBeGreaterThan(8);
    expect(rig.fc.cnas[0]!.refusedConnections).toBe(refusedCount);
  });
});
