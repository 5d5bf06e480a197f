import { join } from 'node:path';
import { syncHost } from '@syncproxy/core';
import { expect, it } from 'vitest';
import { imageEquals, type Rig, startRig, writePattern } from './helpers.js';

it('through syncHost: full, then CBT reset by HA -> full with the cbt-reset warning, exact; no leftovers', async () => {
  const rig: Rig = await startRig();
  try {
    const { vm, volumes } = rig.fc.addVm({ name: 'sh', volumes: [{}, {}] });
    for (const v of volumes) writePattern(v, 21, 2);
    const session = await rig.connect();
    const target = join(rig.dir, 'target');
    const first = await syncHost({ session, platform: 'fusioncompute', hostId: vm.urn, target });
    expect(first.ok).toBe(true);
    for (const [i, d] of first.disks.entries()) expect(await imageEquals(d.path, volumes[i]!)).toBe(true);
    rig.fc.resetCbt(vm.id, 'ha');
    volumes[0]!.disk.writeZeroes(0, volumes[0]!.disk.sizeBytes);
    writePattern(volumes[0]!, 22, 1);
    const second = await syncHost({ session, platform: 'fusioncompute', hostId: vm.urn, target });
    expect(second.ok).toBe(true);
    expect(second.warnings.map((w) => w.code)).toEqual(['cbt-reset', 'cbt-reset']);
    expect(second.disks.map((d) => d.mode)).toEqual(['full', 'full']);
    for (const [i, d] of second.disks.entries())
      expect(await imageEquals(d.path, rig.fc.state.volumes.get(volumes[i]!.id)!)).toBe(true);
    expect(rig.fc.backupResourceCount).toBe(0);
    expect([...rig.fc.state.vms.get(vm.id)!.snapshots.values()].map((s) => s.urn)).toEqual([
      second.snapshotId,
    ]);
  } finally {
    await rig.close();
  }
});
