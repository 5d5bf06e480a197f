import { afterEach, expect, it } from 'vitest';
import { leftovers, type Rig, startRig } from './setup.js';

let rig: Rig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

it('sweep lists, then removes, the attachments, volumes, exported objects and checkpoints this SDK made', async () => {
  rig = await startRig({ exportEnabled: true });
  // The leftovers of a crashed sync: an export reader opened and never closed.
  await rig.session.openReader(rig.host.disks[0]!, { snapshot: rig.snapshot });
  expect(leftovers(rig.cloud).objects).toBe(4);
  expect(rig.cloud.state.backups.size).toBe(1);

  const dry = await rig.session.sweep!({ dryRun: true });
  expect(dry.resources.map((r) => `${r.kind}:${r.deleted}`).sort()).toEqual([
    'object:false',
    'object:false',
    'object:false',
    'object:false',
    'snapshot:false',
  ]);
  expect(leftovers(rig.cloud).objects).toBe(4);

  const kept = await rig.session.sweep!({ keep: [rig.snapshot.id] });
  expect(kept.resources.filter((r) => r.deleted).map((r) => r.kind)).toEqual([
    'object',
    'object',
    'object',
    'object',
  ]);
  expect(rig.cloud.state.backups.size).toBe(1);

  const all = await rig.session.sweep!();
  expect(all.resources).toEqual([expect.objectContaining({ kind: 'snapshot', deleted: true })]);
  expect(rig.cloud.state.backups.size).toBe(0);
  expect(leftovers(rig.cloud)).toEqual({ objects: 0, volumes: 0, attachments: 0 });
});

it('sweep detaches and deletes a volume left attached to the proxy', async () => {
  rig = await startRig({ exportEnabled: false });
  await rig.session.openReader(rig.host.disks[0]!, { snapshot: rig.snapshot });
  expect(leftovers(rig.cloud)).toEqual({ objects: 0, volumes: 1, attachments: 1 });
  const report = await rig.session.sweep!();
  expect(report.resources.map((r) => `${r.kind}:${r.deleted}`)).toEqual([
    'attachment:true',
    'volume:true',
    'snapshot:true',
  ]);
  expect(leftovers(rig.cloud)).toEqual({ objects: 0, volumes: 0, attachments: 0 });
  expect(rig.cloud.state.volumes.size).toBe(2);
});
