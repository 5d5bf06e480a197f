import { randomBytes } from 'node:crypto';

/** The mock's block size: OCI tracks changes in 4 KiB blocks by default. */
export const MOCK_BLOCK_SIZE = 4096;

/**
 * A volume's bytes as a sparse map of 4 KiB blocks. Blocks are never changed
 * in place: a write replaces them, so a backup is a copy of the map and "which
 * blocks changed between two backups" is "which entries differ".
 */
export class BlockMap {
  readonly blocks: Map<number, Uint8Array>;

  constructor(blocks?: Map<number, Uint8Array>) {
    this.blocks = blocks ?? new Map();
  }

  copy(): BlockMap {
    return new BlockMap(new Map(this.blocks));
  }

  read(offset: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    let at = offset;
    while (at < offset + length) {
      const index = Math.floor(at / MOCK_BLOCK_SIZE);
      const within = at - index * MOCK_BLOCK_SIZE;
      const take = Math.min(MOCK_BLOCK_SIZE - within, offset + length - at);
      const block = this.blocks.get(index);
      if (block) out.set(block.subarray(within, within + take), at - offset);
      at += take;
    }
    return out;
  }

  write(offset: number, data: Uint8Array, zero = false): void {
    let at = offset;
    while (at < offset + data.length) {
      const index = Math.floor(at / MOCK_BLOCK_SIZE);
      const within = at - index * MOCK_BLOCK_SIZE;
      const take = Math.min(MOCK_BLOCK_SIZE - within, offset + data.length - at);
      if (zero && take === MOCK_BLOCK_SIZE) {
        this.blocks.delete(index);
      } else {
        const block = new Uint8Array(MOCK_BLOCK_SIZE);
        const old = this.blocks.get(index);
        if (old) block.set(old);
        block.set(data.subarray(at - offset, at - offset + take), within);
        this.blocks.set(index, block);
      }
      at += take;
    }
  }
}

export type LifecycleStep = { state: string; polls: number };

/** A resource whose lifecycle moves on as it is polled: `polls` GETs in each state before the next. */
export class Lifecycle {
  #steps: LifecycleStep[];
  #seen = 0;

  constructor(steps: LifecycleStep[]) {
    this.#steps = steps;
  }

  /** The state now, without moving on (lists, and the mock's own checks). */
  get state(): string {
    return this.#steps[0]!.state;
  }

  /** The state a GET sees; each GET counts towards the next state. */
  poll(): string {
    const step = this.#steps[0]!;
    if (this.#steps.length > 1 && ++this.#seen > step.polls) {
      this.#steps.shift();
      this.#seen = 0;
    }
    return this.#steps[0]!.state;
  }

  /** Jumps to a new sequence (a delete, a detach). */
  set(steps: LifecycleStep[]): void {
    this.#steps = steps;
    this.#seen = 0;
  }
}

export interface MockCompartment {
  id: string;
  parentId: string;
  name: string;
  timeCreated: string;
}

export interface MockInstance {
  id: string;
  compartmentId: string;
  availabilityDomain: string;
  displayName: string;
  lifecycleState: string;
  timeCreated: string;
}

export interface MockVolume {
  id: string;
  kind: 'boot' | 'block';
  compartmentId: string;
  availabilityDomain: string;
  displayName: string;
  sizeBytes: number;
  data: BlockMap;
  lifecycle: Lifecycle;
  freeformTags: Record<string, string>;
  timeCreated: string;
  /** Restored and delta volumes: the file their attachment exposes as a device. */
  file?: string;
  /** Restored and delta volumes: the ranges GET LBA STATUS reports as mapped (a delta's: the changed blocks). */
  mappedRanges?: Array<{ offset: number; length: number }>;
  /** Made from a backup delta (attachable over iSCSI only). */
  isDelta?: boolean;
  /** GETs while AVAILABLE before a restored volume reports `isHydrated` (OCI copies the backup in behind it). */
  hydrationPolls?: number;
  sourceDetails?: Record<string, unknown>;
}

export interface MockBackup {
  id: string;
  kind: 'boot' | 'block';
  volumeId: string;
  compartmentId: string;
  displayName: string;
  type: 'FULL' | 'INCREMENTAL';
  sizeBytes: number;
  data: BlockMap;
  lifecycle: Lifecycle;
  freeformTags: Record<string, string>;
  timeCreated: string;
  /** Order of creation, to check "no FULL backup in between". */
  sequence: number;
}

export interface MockAttachment {
  id: string;
  kind: 'boot' | 'block';
  instanceId: string;
  volumeId: string;
  compartmentId: string;
  availabilityDomain: string;
  attachmentType: 'iscsi' | 'paravirtualized';
  displayName: string;
  device?: string;
  lifecycle: Lifecycle;
  timeCreated: string;
  iqn?: string;
  ipv4?: string;
  port?: number;
  /** The symlink this attachment put under the devices directory, when it is exposed. */
  link?: string;
}

export interface MockStats {
  requests: number;
  unauthenticated: number;
  volumesCreated: number;
  volumesDeleted: number;
  attachmentsCreated: number;
  attachmentsDetached: number;
  /** Most restored and delta volumes in existence at once. */
  peakVolumes: number;
  /** Most attachments to the proxy at once. */
  peakAttachments: number;
  /** Bytes the mapped-range scans reported. */
  mappedBytesReported: number;
  iscsiLogins: number;
  iscsiLogouts: number;
}

/** Everything the mock OCI holds: a back door for tests. */
export class MockOciState {
  readonly compartments = new Map<string, MockCompartment>();
  readonly instances = new Map<string, MockInstance>();
  readonly volumes = new Map<string, MockVolume>();
  readonly backups = new Map<string, MockBackup>();
  readonly attachments = new Map<string, MockAttachment>();
  readonly stats: MockStats = {
    requests: 0,
    unauthenticated: 0,
    volumesCreated: 0,
    volumesDeleted: 0,
    attachmentsCreated: 0,
    attachmentsDetached: 0,
    peakVolumes: 0,
    peakAttachments: 0,
    mappedBytesReported: 0,
    iscsiLogins: 0,
    iscsiLogouts: 0,
  };
  /** Last unauthenticated reason, for tests that check why. */
  lastAuthProblem: string | undefined;
  #sequence = 0;
  readonly #realm: string;
  readonly #region: string;

  constructor(options: { realm?: string; regionKey?: string } = {}) {
    this.#realm = options.realm ?? 'oc1';
    this.#region = options.regionKey ?? 'iad';
  }

  /** A fresh OCID of the given resource type. */
  ocid(resourceType: string, global = false): string {
    return `ocid1.${resourceType}.${this.#realm}.${global ? '' : this.#region}.${randomBytes(20).toString('hex')}`;
  }

  nextSequence(): number {
    return ++this.#sequence;
  }

  /** Restored and delta volumes (those with a file) not being deleted. */
  liveCloneVolumes(): MockVolume[] {
    return [...this.volumes.values()].filter(
      (v) =>
        v.file !== undefined && v.lifecycle.state !== 'TERMINATING' && v.lifecycle.state !== 'TERMINATED',
    );
  }

  /** Attachments not detached. */
  liveAttachments(): MockAttachment[] {
    return [...this.attachments.values()].filter((a) => a.lifecycle.state !== 'DETACHED');
  }

  /** Backups not terminated of an instance's volumes. */
  backupsOfInstance(instanceId: string): MockBackup[] {
    const volumeIds = new Set(
      [...this.attachments.values()].filter((a) => a.instanceId === instanceId).map((a) => a.volumeId),
    );
    return [...this.backups.values()].filter(
      (b) => volumeIds.has(b.volumeId) && b.lifecycle.state !== 'TERMINATED',
    );
  }
}
