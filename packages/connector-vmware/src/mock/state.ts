import { randomBytes } from 'node:crypto';
import type { DiskSnapshot, VirtualDisk } from '@syncproxy/testkit/mock';

/** Changed block tracking of one disk: an id that a reset replaces, a sequence that each snapshot advances. */
export interface MockCbt {
  /** The changeId prefix, like vSphere's `52 de 2a ... 63`; a CBT reset draws a new one. */
  uuid: string;
  /** The sequence number the next snapshot's changeId gets. */
  sequence: number;
  /** The disk content each valid changeId stands for, kept after its snapshot is deleted (as CBT does). */
  points: Map<string, DiskSnapshot>;
}

export interface MockDisk {
  key: number;
  label: string;
  /** The live disk's file; each snapshot moves the VM onto a new delta (`-000001.vmdk`). */
  fileName: string;
  disk: VirtualDisk;
  diskMode: 'persistent' | 'independent_persistent' | 'independent_nonpersistent';
  /** A physical-mode RDM (cannot be snapshotted). */
  physicalRdm: boolean;
  cbt: MockCbt;
  deltas: number;
}

export interface MockVm {
  moref: string;
  name: string;
  uuid: string;
  powerState: 'poweredOn' | 'poweredOff' | 'suspended';
  cbtEnabled: boolean;
  toolsRunning: boolean;
  host: string;
  disks: MockDisk[];
  /** Snapshot morefs, oldest first (a chain). */
  snapshots: string[];
}

export interface MockSnapshotDisk {
  key: number;
  label: string;
  fileName: string;
  capacityBytes: number;
  changeId: string | undefined;
  view: DiskSnapshot;
  diskMode: MockDisk['diskMode'];
  physicalRdm: boolean;
}

export interface MockSnapshot {
  moref: string;
  id: number;
  vm: string;
  name: string;
  description: string;
  createTime: string;
  quiesced: boolean;
  disks: MockSnapshotDisk[];
}

export interface MockTask {
  moref: string;
  name: string;
  entity: string;
  /** Polls of `info` left before the task ends; it is queued, then running, meanwhile. */
  pollsLeft: number;
  queueTime: string;
  result?: { type: string; value: string };
  error?: { faultType: string; message: string };
}

/** Counters a test can assert on. */
export interface MockVcenterStats {
  /** Calls per vim25 method. */
  calls: Record<string, number>;
  logins: number;
  /** Calls refused with NotAuthenticated. */
  notAuthenticated: number;
  /** QueryChangedDiskAreas replies sent. */
  changedAreaReplies: number;
}

/**
 * The inventory the mock vCenter serves: one datacenter, ESXi hosts, VMs with
 * testkit VirtualDisks, snapshots, tasks and sessions. `state` of the mock
 * server: a back door for arranging and asserting.
 */
/**
 * A property that RetrievePropertiesEx answers in `missingSet` with a
 * SecurityError fault instead of a value, as vCenter does for a property the
 * session may not read (NoPermission, with the privilege it lacks) or after
 * its session lapsed mid-retrieval (NotAuthenticated).
 */
export interface MockPropertyFault {
  /** Object type (`VirtualMachine`); any when omitted. */
  type?: string;
  /** The property path (`config.hardware.device`). */
  path: string;
  faultType: 'NoPermission' | 'NotAuthenticated';
  /** NoPermission: the privilege missing. Default `System.Read`. */
  privilegeId?: string;
  /** Answers with the fault this many times, then serves the property again. Default: always. */
  times?: number;
}

export class MockVcenterState {
  readonly vms = new Map<string, MockVm>();
  readonly hosts = new Map<string, string>();
  readonly snapshots = new Map<string, MockSnapshot>();
  readonly tasks = new Map<string, MockTask>();
  readonly sessions = new Set<string>();
  readonly views = new Map<string, string[]>();
  readonly pages = new Map<string, string>();
  readonly stats: MockVcenterStats = { calls: {}, logins: 0, notAuthenticated: 0, changedAreaReplies: 0 };
  /** Properties answered in `missingSet` with a SecurityError fault; see {@link MockPropertyFault}. */
  readonly propertyFaults: MockPropertyFault[] = [];
  /** pids of the nbdkit processes serving snapshot disks right now. */
  readonly nbdkitPids = new Set<number>();
  /** Areas one QueryChangedDiskAreas reply holds at most (vSphere: about 2000). */
  maxAreasPerReply: number;
  /** Bytes one reply covers at most; smaller values give empty windows the client must step over. */
  windowBytes: number;
  /** `info` polls a task stays queued/running. */
  taskPolls: number;
  /** Objects a RetrievePropertiesEx page holds at most, whatever the client's maxObjects. */
  maxObjectsPerPage: number;
  #counter = 0;

  constructor(options: {
    maxAreasPerReply: number;
    windowBytes: number;
    taskPolls: number;
    maxObjectsPerPage: number;
  }) {
    this.maxAreasPerReply = options.maxAreasPerReply;
    this.windowBytes = options.windowBytes;
    this.taskPolls = options.taskPolls;
    this.maxObjectsPerPage = options.maxObjectsPerPage;
  }

  next(prefix: string): string {
    this.#counter++;
    return `${prefix}-${this.#counter}`;
  }

  count(method: string): void {
    this.stats.calls[method] = (this.stats.calls[method] ?? 0) + 1;
  }

  /** A changeId prefix in vSphere's shape: 16 hex pairs, space-separated, split by a dash. */
  static newCbtUuid(): string {
    const pairs = [...randomBytes(16)].map((b) => b.toString(16).padStart(2, '0'));
    return `${pairs.slice(0, 8).join(' ')}-${pairs.slice(8).join(' ')}`;
  }

  /** Forgets every changeId of the VM's disks, as a CBT reset (or a disk move) does. */
  resetCbt(vmMoref: string): void {
    const vm = this.vms.get(vmMoref);
    if (vm === undefined) throw new Error(`no VM ${vmMoref} in the mock vCenter`);
    for (const disk of vm.disks) {
      disk.cbt = { uuid: MockVcenterState.newCbtUuid(), sequence: 1, points: new Map() };
    }
  }

  /** The VM and disk of a disk id `<vm>:<key>`. */
  diskById(diskId: string): { vm: MockVm; disk: MockDisk } {
    const [vmMoref, key] = diskId.split(':');
    const vm = this.vms.get(vmMoref ?? '');
    const disk = vm?.disks.find((d) => String(d.key) === key);
    if (vm === undefined || disk === undefined) throw new Error(`no disk ${diskId} in the mock vCenter`);
    return { vm, disk };
  }
}
