import { randomUUID } from 'node:crypto';
import type { DiskSnapshot, VirtualDisk } from '@syncproxy/testkit/mock';

export const GIB = 1024 ** 3;

export interface MockServer {
  id: string;
  name: string;
  status: 'ACTIVE' | 'SHUTOFF';
  availabilityZone: string;
  /** Attached volume ids, in attach order (the first is the system disk). */
  volumeIds: string[];
}

export interface MockVolume {
  id: string;
  name: string;
  sizeGb: number;
  disk: VirtualDisk;
  availabilityZone: string;
  status: 'available' | 'in-use' | 'creating' | 'deleting';
  bootable: boolean;
  metadata: Record<string, string>;
  createdAt: string;
  /** The server it is attached to, and the device name there. */
  attachment?: { serverId: string; device: string };
  /** Where the mock exposes it when attached to the proxy (a file, and a by-id symlink). */
  devicePath?: string;
  byIdPath?: string;
}

export interface MockVolumeBackup {
  id: string;
  volumeId: string;
  sizeGb: number;
  snapshot: DiskSnapshot;
  status: 'available';
}

/** A server backup (one per checkpoint and server), with one child per volume. */
export interface MockBackup {
  id: string;
  checkpointId: string;
  vaultId: string;
  serverId: string;
  name: string;
  description: string;
  createdAt: string;
  children: MockVolumeBackup[];
}

export interface MockCheckpoint {
  id: string;
  vaultId: string;
  createdAt: string;
  /** Polls left while `protecting`. */
  pollsLeft: number;
  status: 'protecting' | 'available' | 'error';
}

export interface MockJob {
  id: string;
  /** Polls left while RUNNING; the effect runs when it turns SUCCESS. */
  pollsLeft: number;
  status: 'RUNNING' | 'SUCCESS' | 'FAIL';
  entities: Record<string, string>;
  failReason?: string;
  complete: () => Promise<void> | void;
}

export interface MockExportedObject {
  key: string;
  volumeId: string;
  offset: number;
  length: number;
  source: DiskSnapshot;
  lastModified: string;
}

export interface MockExport {
  id: string;
  volumeBackupId: string;
  bucket: string;
  prefix: string;
  status: 'exporting' | 'success' | 'failed';
  pollsLeft: number;
  keys: string[];
  failReason?: string;
}

/** Counters a test reads to prove what a sync did and left behind. */
export interface MockHuaweiStats {
  checkpointsCreated: number;
  exportsStarted: number;
  volumesCreated: number;
  attachments: number;
  detachments: number;
  objectsWritten: number;
  objectsDeleted: number;
  rangedGets: number;
  bytesServed: number;
  signatureFailures: number;
}

/** The mock platform's state: the back door for arranging and asserting. */
export class MockHuaweiState {
  readonly projectId: string;
  readonly region: string;
  readonly servers = new Map<string, MockServer>();
  readonly volumes = new Map<string, MockVolume>();
  readonly vaults = new Map<string, { id: string; name: string; serverIds: Set<string> }>();
  readonly checkpoints = new Map<string, MockCheckpoint>();
  readonly backups = new Map<string, MockBackup>();
  readonly jobs = new Map<string, MockJob>();
  readonly exports = new Map<string, MockExport>();
  /** Buckets by name: their objects by key. */
  readonly buckets = new Map<string, Map<string, MockExportedObject>>();
  readonly delegatedBuckets = new Set<string>();
  readonly stats: MockHuaweiStats = {
    checkpointsCreated: 0,
    exportsStarted: 0,
    volumesCreated: 0,
    attachments: 0,
    detachments: 0,
    objectsWritten: 0,
    objectsDeleted: 0,
    rangedGets: 0,
    bytesServed: 0,
    signatureFailures: 0,
  };
  /** White-list mode: false makes the export and the bucket delegation refuse, as for accounts not white-listed. */
  exportEnabled = true;
  /** The next export fails after writing this many objects (a fault of the export itself). */
  failNextExportAfterObjects: number | undefined;
  /** Attached volumes appear under the by-id directory; false simulates a device that never shows up. */
  exposeDevices = true;
  constructor(region: string) {
    this.region = region;
    this.projectId = randomUUID().replaceAll('-', '');
  }

  /** A UUID-shaped id, as ECS, EVS and CBR ids are. */
  newId(): string {
    return randomUUID();
  }

  /** Objects in a bucket (all buckets when none is named). */
  objectCount(bucket?: string): number {
    if (bucket !== undefined) return this.buckets.get(bucket)?.size ?? 0;
    let n = 0;
    for (const objects of this.buckets.values()) n += objects.size;
    return n;
  }

  /** Volumes the connector made from backups (those the mock did not start with). */
  createdVolumes(): MockVolume[] {
    return [...this.volumes.values()].filter((v) => v.metadata.syncproxy_managed === 'true');
  }

  /** Volumes attached to a server other than the one they belong to (on the proxy). */
  attachmentsTo(serverId: string): MockVolume[] {
    return [...this.volumes.values()].filter(
      (v) => v.attachment?.serverId === serverId && v.metadata.syncproxy_managed === 'true',
    );
  }

  backupsOfServer(serverId: string): MockBackup[] {
    return [...this.backups.values()].filter((b) => b.serverId === serverId);
  }

  findVolumeBackup(id: string): { backup: MockBackup; child: MockVolumeBackup } | undefined {
    for (const backup of this.backups.values()) {
      const child = backup.children.find((c) => c.id === id);
      if (child) return { backup, child };
    }
    return undefined;
  }
}
