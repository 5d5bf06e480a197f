import { createHmac, randomBytes } from 'node:crypto';
import type { VolumeDisk, VolumeSnapshotView } from './volume-disk.js';

export interface MockVolume {
  id: string;
  /** As EC2 reports it: whole GiB, rounded up from the disk's size. */
  sizeGiB: number;
  disk: VolumeDisk;
  availabilityZone: string;
  volumeType: string;
  encrypted: boolean;
  kmsKeyId?: string;
  state: 'in-use' | 'available' | 'error';
  instanceId?: string;
  device?: string;
  createTime: string;
  tags: Record<string, string>;
}

export interface MockInstance {
  id: string;
  state: 'pending' | 'running' | 'stopping' | 'stopped' | 'shutting-down' | 'terminated';
  instanceType: string;
  availabilityZone: string;
  rootDeviceName: string;
  /** Attached volumes in device order; the first is the root volume. */
  volumeIds: string[];
  launchTime: string;
  tags: Record<string, string>;
}

export interface MockSnapshot {
  id: string;
  volumeId: string;
  volumeSizeGiB: number;
  state: 'pending' | 'completed' | 'error';
  /** DescribeSnapshots calls that still see it pending. */
  pollsLeft: number;
  pollsTotal: number;
  view: VolumeSnapshotView;
  /** Base64 SHA-256 of each block served so far: a snapshot never changes, so neither do they. */
  checksums: Map<number, string>;
  startTime: string;
  description: string;
  tags: Record<string, string>;
  storageTier: 'standard' | 'archive';
  encrypted: boolean;
  kmsKeyId?: string;
}

/** Counters a test can assert on. */
export interface MockAwsStats {
  /** Requests per operation (`GetSnapshotBlock`, `DescribeInstances`...), answered or refused. */
  requests: Record<string, number>;
  blocksServed: number;
  bytesServed: number;
  /** GetSnapshotBlock answers sent with a wrong checksum. */
  corruptedBlocks: number;
  /** Requests refused for their signature. */
  authFailures: number;
  /** Block tokens refused as expired or foreign. */
  refusedBlockTokens: number;
  /** List pages sent with no block but a NextToken. */
  emptyPages: number;
}

/**
 * The AWS account the mock serves: instances, volumes and snapshots, and
 * the knobs tests turn. It is `state` of the mock server, a back door for
 * arranging and asserting.
 */
export class MockAwsState {
  readonly region: string;
  readonly regions: string[];
  readonly accountId: string;
  readonly instances = new Map<string, MockInstance>();
  readonly volumes = new Map<string, MockVolume>();
  readonly snapshots = new Map<string, MockSnapshot>();
  readonly stats: MockAwsStats = {
    requests: {},
    blocksServed: 0,
    bytesServed: 0,
    corruptedBlocks: 0,
    authFailures: 0,
    refusedBlockTokens: 0,
    emptyPages: 0,
  };
  /** GetSnapshotBlock answers still to send with a wrong `x-amz-Checksum`. */
  corruptChecksums = 0;
  blockTokenLifetimeSec: number;
  pageTokenLifetimeSec: number;
  snapshotPollsUntilCompleted: number;
  /** Block indexes one list page looks at; fewer than the volume's gives empty pages that continue. */
  maxBlocksScannedPerPage: number;
  readonly now: () => number;
  readonly #tokenKey = randomBytes(16);
  #counter = 0;

  constructor(options: {
    region: string;
    regions: string[];
    accountId: string;
    now: () => number;
    blockTokenLifetimeSec: number;
    pageTokenLifetimeSec: number;
    snapshotPollsUntilCompleted: number;
    maxBlocksScannedPerPage: number;
  }) {
    this.region = options.region;
    this.regions = options.regions;
    this.accountId = options.accountId;
    this.now = options.now;
    this.blockTokenLifetimeSec = options.blockTokenLifetimeSec;
    this.pageTokenLifetimeSec = options.pageTokenLifetimeSec;
    this.snapshotPollsUntilCompleted = options.snapshotPollsUntilCompleted;
    this.maxBlocksScannedPerPage = options.maxBlocksScannedPerPage;
  }

  /** A new id with AWS's shape: prefix and 17 hex digits. */
  nextId(prefix: 'i' | 'vol' | 'snap' | 'r'): string {
    this.#counter++;
    return `${prefix}-${this.#counter.toString(16).padStart(17, '0')}`;
  }

  count(operation: string): void {
    this.stats.requests[operation] = (this.stats.requests[operation] ?? 0) + 1;
  }

  /** Snapshots still held for the volumes of an instance. */
  snapshotsOfInstance(instanceId: string): MockSnapshot[] {
    const instance = this.instances.get(instanceId);
    const volumes = new Set(instance?.volumeIds ?? []);
    return [...this.snapshots.values()].filter((s) => volumes.has(s.volumeId));
  }

  deleteSnapshot(id: string): boolean {
    const snapshot = this.snapshots.get(id);
    if (snapshot === undefined) return false;
    this.snapshots.delete(id);
    this.volumes.get(snapshot.volumeId)?.disk.deleteSnapshot(id);
    return true;
  }

  /** An opaque token in the EBS token alphabet (`[A-Za-z0-9+/=]`), bound to its fields by an HMAC. */
  sealToken(fields: string[]): string {
    const body = fields.join('|');
    const mac = createHmac('sha256', this.#tokenKey).update(body).digest('base64').slice(0, 22);
    return Buffer.from(`${body}|${mac}`).toString('base64');
  }

  /** The fields of a token this mock sealed; undefined for anything else. */
  openToken(token: string): string[] | undefined {
    if (!/^[A-Za-z0-9+/=]{1,256}$/.test(token)) return undefined;
    const parts = Buffer.from(token, 'base64').toString('utf8').split('|');
    const mac = parts.pop();
    if (mac === undefined || this.sealToken(parts) !== token) return undefined;
    return parts;
  }
}
