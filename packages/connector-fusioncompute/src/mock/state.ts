import { randomBytes } from 'node:crypto';
import type { DiskSnapshot, MockServer, VirtualDisk } from '@syncproxy/testkit/mock';

/** The errorCodes the mock answers with (see `DEFAULT_ERROR_CODES`; real codes UNCONFIRMED). */
export const MOCK_ERRORS = {
  authFailed: ['10000040', 'the user name, password or user type is incorrect'],
  sessionExpired: ['10000003', 'the session has expired or the token is invalid'],
  badVersion: ['10000006', 'the version in the Accept header is not supported'],
  badRequest: ['10000001', 'invalid request parameter'],
  notFound: ['10000022', 'the resource does not exist'],
  vmNotFound: ['10300002', 'the VM does not exist'],
  snapNotFound: ['10420002', 'the snapshot does not exist'],
  cbtInvalid: ['10420051', 'the CBT base is invalid (CBT was reset)'],
  cbtAlign: ['10420050', 'startBlock and blockNum must be multiples of 8'],
  vmBusy: ['10300055', 'the VM is running an operation that is mutually exclusive with snapshots'],
  vmState: ['10300056', 'the VM state does not allow a snapshot'],
  templateOrClone: ['10300060', 'templates and linked clones cannot be backed up'],
  sharedDisk: ['10300061', 'a VM with shared disks cannot be snapshotted'],
  toolsNotRunning: ['10300062', 'CBT backup snapshots need the VM tools running'],
  tooManySnapshots: ['10300063', 'the VM has the maximum number of snapshots (32)'],
  backupLimit: ['10420058', 'the host has reached its backup limit (8 volumes, 8 connections)'],
  tokenExpired: ['10420060', 'the backup resource token has expired or is invalid'],
  vmShutDown: ['10420061', 'the VM was shut down during the backup'],
  throttled: ['10000429', 'too many requests'],
} as const;

export type MockErrorName = keyof typeof MOCK_ERRORS;

export interface MockUser {
  name: string;
  password: string;
  /** X-Auth-UserType the user logs in with. */
  type: string;
}

export interface MockCna {
  id: string;
  urn: string;
  uri: string;
  name: string;
  ip: string;
  /** The data service of this compute node. */
  server: MockServer<MockFcState>;
  /** Backup connections (ranged reads) being served now, and the most seen at once. */
  openConnections: number;
  peakConnections: number;
  /** Reads refused because the host already served its 8 backup connections. */
  refusedConnections: number;
  /** Ranged reads served. */
  reads: number;
}

export interface MockVolume {
  id: string;
  urn: string;
  uri: string;
  name: string;
  disk: VirtualDisk;
  quantityGB: number;
  volType: 'normal' | 'share';
  indepDisk: boolean;
  storageType: string;
  vmId: string;
  /** When the volume's current CBT began; a reset restarts it. */
  cbtCreateTime: string;
  /** CBT generations: chgID -> the disk as it was then (valid until the next reset). */
  generations: Map<string, DiskSnapshot>;
}

export interface MockVolSnapshot {
  volumeId: string;
  snapUuid: string;
  chgID: string;
  volCBTCreateTime: string;
  view: DiskSnapshot;
}

export interface MockSnapshot {
  id: string;
  urn: string;
  uri: string;
  vmId: string;
  name: string;
  description: string;
  type: string;
  createTime: string;
  vols: MockVolSnapshot[];
}

export interface MockVm {
  id: string;
  urn: string;
  uri: string;
  name: string;
  /** running, stopped, hibernated, starting, shutting-down, migrating... */
  status: string;
  hostId: string;
  pvDriverStatus: 'running' | 'notRunning';
  isTemplate: boolean;
  isLinkClone: boolean;
  /** An operation exclusive with snapshots in progress (start, shutdown, disk attach/expansion, storage migration). */
  busyWith?: string;
  volumeIds: string[];
  snapshots: Map<string, MockSnapshot>;
}

export interface MockTask {
  id: string;
  urn: string;
  uri: string;
  /** Polls answered `running` before the task ends. */
  pollsLeft: number;
  /** Clock time before which the task stays running. */
  readyAt: number;
  failure?: { reason: string; reasonDes: string };
  progress: number;
  done?: 'success' | 'failed';
}

export interface MockBackupResource {
  id: string;
  volumeId: string;
  hostId: string;
  snapshotId: string;
  view: DiskSnapshot;
  token: string;
  ip: string;
  transMode: string;
  description: string;
  createdAt: number;
  delaySec: number;
  status: 'running' | 'failed';
  reason?: MockErrorName;
}

export interface MockFcStateOptions {
  siteId: string;
  users: MockUser[];
  versions: string[];
  now: () => number;
  taskPolls: number;
  taskDelayMs: number;
  sessionLifetimeMs: number;
  maxVolumesInBackupPerHost: number;
  maxConnectionsPerHost: number;
  readLatencyMs: number;
  dataTransport: 'lanssl' | 'lan';
  maxPageSize: number;
  bitmapEncoding: 'hex' | 'base64';
}

/** Everything the mock VRM and its compute nodes hold: the back door for tests. */
export class MockFcState {
  readonly options: MockFcStateOptions;
  readonly siteId: string;
  readonly hosts = new Map<string, MockCna>();
  readonly vms = new Map<string, MockVm>();
  readonly volumes = new Map<string, MockVolume>();
  readonly tasks = new Map<string, MockTask>();
  readonly backupResources = new Map<string, MockBackupResource>();
  /** token -> expiry (clock ms). */
  readonly sessions = new Map<string, number>();
  /** Logins accepted, logouts, and per-operation counts. */
  readonly counters = new Map<string, number>();
  /** The most volumes in backup at once, per host id. */
  readonly peakVolumesInBackup = new Map<string, number>();
  /** Data reads left before every backup token expires (`expireTokensAfterReads`). */
  expireTokensAfter: number | undefined;
  /** The next task fails with this reason (the mock's `failNextTask`). */
  nextTaskFailure: { operation: string; error: MockErrorName } | undefined;
  #ids = 0;
  #chg = 0;

  constructor(options: MockFcStateOptions) {
    this.options = options;
    this.siteId = options.siteId;
  }

  get siteUri(): string {
    return `/service/sites/${this.siteId}`;
  }

  now(): number {
    return this.options.now();
  }

  nextId(prefix: string): string {
    this.#ids++;
    return `${prefix}-${String(this.#ids).padStart(8, '0')}`;
  }

  nextChgId(): string {
    return String(++this.#chg);
  }

  count(name: string, by = 1): void {
    this.counters.set(name, (this.counters.get(name) ?? 0) + by);
  }

  token(): string {
    return randomBytes(24).toString('hex');
  }

  /** FusionCompute's time format, as getcbt takes it: `YYYY-MM-DD hh:mm:ss`. */
  timeString(at = this.now()): string {
    return new Date(at).toISOString().replace('T', ' ').slice(0, 19);
  }

  volumesInBackup(hostId: string): number {
    let n = 0;
    for (const r of this.backupResources.values()) if (r.hostId === hostId && r.status === 'running') n++;
    return n;
  }

  /** The most backup connections any host saw at once. */
  get peakConnections(): number {
    let peak = 0;
    for (const h of this.hosts.values()) peak = Math.max(peak, h.peakConnections);
    return peak;
  }

  /** The most volumes in backup any host saw at once. */
  get peakVolumes(): number {
    let peak = 0;
    for (const n of this.peakVolumesInBackup.values()) peak = Math.max(peak, n);
    return peak;
  }

  /** Snapshots the VRM holds, for every VM. */
  get snapshotCount(): number {
    let n = 0;
    for (const vm of this.vms.values()) n += vm.snapshots.size;
    return n;
  }

  newTask(failure?: { reason: string; reasonDes: string }): MockTask {
    const id = this.nextId('task');
    const task: MockTask = {
      id,
      urn: `urn:sites:${this.siteId}:tasks:${id}`,
      uri: `${this.siteUri}/tasks/${id}`,
      pollsLeft: this.options.taskPolls,
      readyAt: this.now() + this.options.taskDelayMs,
      progress: 0,
      ...(failure ? { failure } : {}),
    };
    this.tasks.set(id, task);
    return task;
  }

  /** Restarts CBT of every volume of a VM: what HA, a snapshot restore, a volume expansion or a host restart do. */
  resetCbt(vmId: string): void {
    const vm = this.vms.get(vmId);
    if (vm === undefined) throw new Error(`no VM ${vmId} in the FusionCompute mock`);
    // A reset in the same second as the CBT start would look unchanged: move on by a second at least.
    for (const id of vm.volumeIds) {
      const volume = this.volumes.get(id)!;
      let at = this.now();
      while (this.timeString(at) <= volume.cbtCreateTime) at += 1000;
      volume.cbtCreateTime = this.timeString(at);
      volume.generations.clear();
    }
  }
}
