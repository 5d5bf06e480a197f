import { type Logger, planSweep, SweepLedger, type SweepOptions, type SweepReport } from '@syncproxy/core';
import type { VimClient } from './client.js';
import { child, list, MoRef, readMoRef, text, type XmlNode } from './soap/xml.js';

/**
 * vSphere snapshots carry no tags: what marks one as made by this SDK is the
 * description `createSnapshot` writes, whatever name a `label` gave it.
 */
export function snapshotDescription(vm: string, createdAt: string): string {
  return `syncproxy snapshot of ${vm} at ${createdAt}`;
}

const DESCRIPTION = /^syncproxy snapshot of (\S+) at (\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z)$/;

interface TreeSnapshot {
  moref: string;
  vm: string;
  name: string;
  description: string;
  createTime: string | undefined;
}

/**
 * Walks every VM's snapshot tree (`snapshot.rootSnapshotList`, one
 * RetrievePropertiesEx over a container view) and, unless it is a dry run,
 * removes the snapshots this SDK made (its description, naming the VM the
 * snapshot belongs to) that are older than `olderThan` and not kept. Children
 * are kept: RemoveSnapshot_Task with `removeChildren=false` merges the one
 * snapshot away.
 */
export async function sweepSnapshots(
  client: VimClient,
  logger: Logger,
  options: SweepOptions | undefined,
  sessionSignal: AbortSignal | undefined,
): Promise<SweepReport> {
  const plan = planSweep(options);
  const signal = plan.signal ?? sessionSignal;
  const vms = await client.objectsOfType('VirtualMachine', ['snapshot'], signal);
  const ours = vms
    .flatMap(({ obj, props }) => flatten(obj.value, props.get('snapshot')))
    .filter((s) => DESCRIPTION.exec(s.description)?.[1] === s.vm)
    .sort((a, b) => a.moref.localeCompare(b.moref, 'en', { numeric: true }));
  const ledger = new SweepLedger(plan, logger);
  for (const snapshot of ours) {
    await ledger.consider(
      {
        kind: 'snapshot',
        id: snapshot.moref,
        ...(snapshot.createTime ? { createdAt: snapshot.createTime } : {}),
      },
      () => client.removeSnapshot(new MoRef('VirtualMachineSnapshot', snapshot.moref), signal),
    );
  }
  return ledger.report();
}

/** The snapshots of a VirtualMachineSnapshotInfo tree, depth first. */
function flatten(vm: string, info: XmlNode | undefined): TreeSnapshot[] {
  const out: TreeSnapshot[] = [];
  const walk = (nodes: XmlNode[]): void => {
    for (const node of nodes) {
      const moref = readMoRef(child(node, 'snapshot'));
      if (moref !== undefined) {
        out.push({
          moref: moref.value,
          vm: readMoRef(child(node, 'vm'))?.value ?? vm,
          name: text(child(node, 'name')) ?? '',
          description: text(child(node, 'description')) ?? '',
          createTime: text(child(node, 'createTime')),
        });
      }
      walk(list(child(node, 'childSnapshotList')));
    }
  };
  walk(list(child(info, 'rootSnapshotList')));
  return out;
}
