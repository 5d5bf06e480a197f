import { type ErrorCode, type PrecheckResult, SyncproxyError } from '@syncproxy/core';
import type { FcHost, FcVm } from './client.js';
import { MAX_BACKUP_CONNECTIONS_PER_HOST, MAX_VOLUMES_IN_BACKUP_PER_HOST } from './host-limits.js';

/** FusionCompute keeps at most 32 snapshots per VM (product documentation). */
export const MAX_SNAPSHOTS_PER_VM = 32;
/** VM states in which a snapshot can be taken (product documentation). */
export const SNAPSHOT_STATES = ['running', 'hibernated', 'stopped'] as const;

/** What the rules look at: the VM's detail, its snapshot count and the compute nodes. */
export interface RuleInput {
  vm: FcVm;
  snapshotCount: number;
  hosts: FcHost[];
  cnaDataPort: number;
}

/** A precheck, and for the enforced ones the error `createSnapshot` raises when it fails. */
interface Rule {
  id: string;
  title: string;
  check(input: RuleInput): Omit<PrecheckResult, 'id' | 'title'>;
  /** Enforced: `createSnapshot` refuses the VM with this error code when the check fails. */
  enforced?: { code: ErrorCode; retryable: boolean };
}

const pass = (detail: string): Omit<PrecheckResult, 'id' | 'title'> => ({ status: 'pass', detail });

/**
 * The product's 4 prerequisites (P1-P4) and 9 limits (L1-L9), numbered as the
 * products number their agent pre-checks. The failing ones that make a
 * snapshot impossible are enforced again by `createSnapshot`, with the same
 * words.
 */
const RULES: Rule[] = [
  {
    id: 'P1-tools-running',
    title: 'P1. VM tools installed and running',
    enforced: { code: 'unsupported', retryable: false },
    check: ({ vm }) =>
      vm.pvDriverStatus === 'running'
        ? pass(`the VM tools of ${vm.name} are running`)
        : {
            status: 'fail',
            detail: `the VM tools of ${vm.name} are not running (${vm.pvDriverStatus ?? 'unknown'}); CBT backup snapshots need them`,
            remedy: 'install the VM tools in the guest and start them, then sync again',
          },
  },
  {
    id: 'P2-snapshot-count',
    title: `P2. At most ${MAX_SNAPSHOTS_PER_VM} snapshots per VM`,
    enforced: { code: 'no-capacity', retryable: false },
    check: ({ vm, snapshotCount }) =>
      snapshotCount < MAX_SNAPSHOTS_PER_VM
        ? pass(`${vm.name} has ${snapshotCount} of ${MAX_SNAPSHOTS_PER_VM} snapshots`)
        : {
            status: 'fail',
            detail: `${vm.name} has ${snapshotCount} snapshots, the most FusionCompute allows is ${MAX_SNAPSHOTS_PER_VM}`,
            remedy: 'delete at least one snapshot of the VM, then sync again',
          },
  },
  {
    id: 'P3-vm-state',
    title: 'P3. The VM is running, hibernated or stopped',
    enforced: { code: 'conflict', retryable: true },
    check: ({ vm }) =>
      (SNAPSHOT_STATES as readonly string[]).includes(vm.status)
        ? pass(`${vm.name} is ${vm.status}`)
        : {
            status: 'fail',
            detail: `${vm.name} is ${vm.status}; a snapshot needs it running, hibernated or stopped`,
            remedy: 'wait until the VM is running, hibernated or stopped, then sync again',
          },
  },
  {
    id: 'P4-no-shutdown-during-backup',
    title: 'P4. The VM is not shut down during a backup',
    check: ({ vm }) =>
      vm.status === 'running'
        ? {
            status: 'warn',
            detail: `${vm.name} is running: shutting it down while a sync reads its disks fails that sync`,
            remedy: 'keep the VM running, hibernated or stopped until the sync ends',
          }
        : pass(`${vm.name} is ${vm.status}; do not start or shut it down while a sync reads its disks`),
  },
  {
    id: 'L1-no-shared-disks',
    title: 'L1. No shared disks',
    enforced: { code: 'unsupported', retryable: false },
    check: ({ vm }) => {
      const shared = disksOf(vm).filter((d) => d.volType === 'share');
      return shared.length === 0
        ? pass(`${vm.name} has no shared disk`)
        : {
            status: 'fail',
            detail: `${vm.name} has shared disk(s) ${shared.map((d) => d.volumeUrn).join(', ')}; FusionCompute cannot snapshot shared disks`,
            remedy: 'detach the shared disks from the VM, or protect them another way',
          };
    },
  },
  {
    id: 'L2-no-independent-disks',
    title: 'L2. No independent disks',
    enforced: { code: 'unsupported', retryable: false },
    check: ({ vm }) => {
      const independent = disksOf(vm).filter((d) => d.indepDisk === true);
      return independent.length === 0
        ? pass(`${vm.name} has no independent disk`)
        : {
            status: 'fail',
            detail: `${vm.name} has independent disk(s) ${independent.map((d) => d.volumeUrn).join(', ')}, which snapshots leave out and cannot be backed up`,
            remedy: 'make the disks dependent (not independent) in the VM configuration',
          };
    },
  },
  {
    id: 'L3-cbt-reset',
    title: 'L3. CBT resets force a full sync',
    check: () =>
      pass(
        'HA, a snapshot restore, a volume expansion or a compute-node restart resets CBT: the next sync then reads the disks in full, with warning cbt-reset',
      ),
  },
  {
    id: 'L4-exclusive-operations',
    title: 'L4. Snapshots are exclusive with other VM operations',
    check: () =>
      pass(
        'starting or shutting down the VM, attaching a disk online, expanding a disk or migrating storage blocks snapshots: such a sync fails with conflict and is retried',
      ),
  },
  {
    id: 'L5-no-linked-clone-or-template',
    title: 'L5. Not a linked clone or a template',
    enforced: { code: 'unsupported', retryable: false },
    check: ({ vm }) =>
      vm.isTemplate === true
        ? {
            status: 'fail',
            detail: `${vm.name} is a template; templates cannot be backed up`,
            remedy: 'sync a VM deployed from the template instead',
          }
        : vm.isLinkClone === true
          ? {
              status: 'fail',
              detail: `${vm.name} is a linked clone; linked clones cannot be backed up`,
              remedy: 'convert the VM to a full clone first',
            }
          : pass(`${vm.name} is neither a linked clone nor a template`),
  },
  {
    id: 'L6-same-storage-type',
    title: 'L6. Restore to the same storage type',
    check: ({ vm }) => {
      const types = [...new Set(disksOf(vm).map((d) => d.storageType ?? 'unknown'))];
      return pass(
        `the disks of ${vm.name} are on ${types.join(', ')} storage; a restore must target the same storage type`,
      );
    },
  },
  {
    id: 'L7-volumes-in-backup',
    title: `L7. At most ${MAX_VOLUMES_IN_BACKUP_PER_HOST} volumes in backup per host`,
    check: ({ vm }) =>
      pass(
        `${vm.name} has ${disksOf(vm).length} disk(s); at most ${MAX_VOLUMES_IN_BACKUP_PER_HOST} volumes of its host are backed up at once, the others wait`,
      ),
  },
  {
    id: 'L8-storage-io',
    title: 'L8. Backups add storage I/O',
    check: ({ vm }) => ({
      status: 'warn',
      detail: `reading the disks of ${vm.name} adds I/O on their datastores, which slows the VMs on them`,
      remedy: 'schedule syncs outside the busy hours of the storage',
    }),
  },
  {
    id: 'L9-backup-connections',
    title: `L9. At most ${MAX_BACKUP_CONNECTIONS_PER_HOST} backup connections per host`,
    check: ({ vm, hosts, cnaDataPort }) => {
      const host = hosts.find((h) => h.urn === vm.hostUrn);
      return pass(
        `the proxy opens at most ${MAX_BACKUP_CONNECTIONS_PER_HOST} backup connections to ${host ? `${host.name} (${host.ip}:${cnaDataPort})` : 'the VM’s host'}, across all its syncs`,
      );
    },
  },
];

function disksOf(vm: FcVm) {
  return vm.vmConfig?.disks ?? [];
}

/** Every precheck for a VM, numbered P1-P4 then L1-L9, and the reachability list of the compute nodes. */
export function precheckResults(input: RuleInput): PrecheckResult[] {
  const results = RULES.map((rule) => ({ id: rule.id, title: rule.title, ...rule.check(input) }));
  results.push({
    id: 'N1-cna-data-port',
    title: `N1. Compute nodes reachable on ${input.cnaDataPort}`,
    status: 'pass',
    detail: `the proxy must reach every compute node on ${input.cnaDataPort} for backup data: ${input.hosts.map((h) => `${h.name} ${h.ip}`).join(', ') || 'no host listed'}`,
  });
  return results;
}

/** Throws the first enforced rule the VM breaks, with its precheck's words. */
export function enforceSnapshotRules(input: RuleInput): void {
  for (const rule of RULES) {
    if (rule.enforced === undefined) continue;
    const result = rule.check(input);
    if (result.status !== 'fail') continue;
    throw new SyncproxyError(`${rule.title} failed: ${result.detail} (${result.remedy})`, {
      code: rule.enforced.code,
      retryable: rule.enforced.retryable,
      platform: 'fusioncompute',
      details: { precheck: rule.id, vm: input.vm.urn },
    });
  }
}
