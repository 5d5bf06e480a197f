import { randomBytes } from 'node:crypto';
import { rm, symlink, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type * as TestkitMock from '@syncproxy/testkit/mock';
import type { DiskSnapshot, VirtualDisk } from '@syncproxy/testkit/mock';
import { lunNameOf } from '../lun-name.js';

export interface MockServerRecord {
  id: string;
  name: string;
  status: 'ACTIVE' | 'SHUTOFF';
  volumeIds: string[];
}

export interface MockVolumeRecord {
  id: string;
  name: string;
  /** Whole GB, as EVS sizes volumes; the disk holds `sizeGb * gbBytes` bytes. */
  sizeGb: number;
  wwn: string;
  serverId: string;
  device: string;
  boot: boolean;
  disk: VirtualDisk;
  lunId: string;
}

export interface MockLun {
  ID: string;
  NAME: string;
  WWN: string;
  volumeId: string;
}

export interface MockDoradoSnapshot {
  ID: string;
  NAME: string;
  DESCRIPTION: string;
  PARENTID: string;
  WWN: string;
  active: boolean;
  /** The frozen content, taken at activation. */
  data?: DiskSnapshot;
  TIMESTAMP: string;
}

export interface MockNamed {
  ID: string;
  NAME: string;
  DESCRIPTION: string;
}

export interface MockStats {
  tokensIssued: number;
  sessionsOpened: number;
  sessionsClosed: number;
  snapshotsCreated: number;
  snapshotsActivated: number;
  activateCalls: number;
  consistencyGroupsCreated: number;
  consistencyGroupActivations: number;
  deviceLinks: number;
}

/**
 * The testkit's values the state builds disks and device images with. The testkit is an optional
 * peer, so `startMockHcs` loads it and hands these down; this module only refers to its types.
 */
export type MockHcsTestkit = Pick<typeof TestkitMock, 'VirtualDisk' | 'writeImageFile'>;

/** The HCS project and its Dorado, as one mock's state: a back door for tests. */
export class MockHcsState {
  /** What `GET /v3` says; `8.2.0` or `8.3.0` provoke the refusal. */
  hcsVersion = '8.0.2';
  /** What the Dorado's `GET /system/` says as `productModeString`. */
  doradoModel = 'OceanStor Dorado 5000 V6';
  doradoVersion = 'V600R005C60';
  readonly servers = new Map<string, MockServerRecord>();
  readonly volumes = new Map<string, MockVolumeRecord>();
  readonly tokens = new Map<string, number>();
  readonly luns = new Map<string, MockLun>();
  readonly snapshots = new Map<string, MockDoradoSnapshot>();
  readonly hosts = new Map<string, MockNamed>();
  readonly hostGroups = new Map<string, MockNamed & { hosts: Set<string> }>();
  readonly lunGroups = new Map<string, MockNamed & { snapshots: Set<string> }>();
  readonly mappingViews = new Map<string, MockNamed & { hostGroups: Set<string>; lunGroups: Set<string> }>();
  /** Whether EVS lists each volume's `wwn` (SAN volume types do); without it, LUNs are found by name. */
  evsShowsWwn = true;
  /** Answer every list unfiltered (`filter=` ignored), as an array that does not filter on a field would. */
  ignoreFilters = false;
  /** Whether the array has snapshot consistency groups (a switch for the one-snapshot-per-LUN path). */
  consistencyGroupsSupported = true;
  readonly protectGroups = new Map<string, MockNamed & { luns: Set<string> }>();
  readonly consistencyGroups = new Map<
    string,
    MockNamed & { PARENTID: string; snapshots: Set<string>; active: boolean }
  >();
  /** IQN -> host id ('' when not yet added to a host). */
  readonly initiators = new Map<string, string>();
  /** iBaseToken -> session. */
  readonly sessions = new Map<string, { deviceId: string; cookie: string }>();
  readonly stats: MockStats = {
    tokensIssued: 0,
    sessionsOpened: 0,
    sessionsClosed: 0,
    snapshotsCreated: 0,
    snapshotsActivated: 0,
    activateCalls: 0,
    consistencyGroupsCreated: 0,
    consistencyGroupActivations: 0,
    deviceLinks: 0,
  };
  #nextId = 1;
  readonly #links = new Map<string, string>();
  /** The rescan in progress: the next waits for it. */
  #rescan: Promise<void> = Promise.resolve();
  readonly #testkit: MockHcsTestkit;

  constructor(
    readonly devicesDir: string,
    readonly imagesDir: string,
    /** Bytes one EVS GB holds here: 1 GiB, unless a test shrinks it (see `MockHcsOptions.gbBytes`). */
    readonly gbBytes: number,
    testkit: MockHcsTestkit,
  ) {
    this.#testkit = testkit;
  }

  nextId(): string {
    return String(this.#nextId++);
  }

  static wwn(): string {
    return `6${randomBytes(15).toString('hex').slice(1)}`;
  }

  /** LUN group entries across all groups. */
  get lunGroupEntries(): number {
    let n = 0;
    for (const g of this.lunGroups.values()) n += g.snapshots.size;
    return n;
  }

  /** Snapshots that the proxy's initiators see: in a LUN group of a view whose host group holds a host with an initiator. */
  #exposed(): Set<string> {
    const seen = new Set<string>();
    for (const view of this.mappingViews.values()) {
      const reachesProxy = [...view.hostGroups].some((g) =>
        [...(this.hostGroups.get(g)?.hosts ?? [])].some((h) => [...this.initiators.values()].includes(h)),
      );
      if (!reachesProxy) continue;
      for (const g of view.lunGroups) for (const s of this.lunGroups.get(g)?.snapshots ?? []) seen.add(s);
    }
    return seen;
  }

  /**
   * What the proxy's SCSI layer would show after a rescan: each mapped
   * snapshot as `wwn-0x<wwn>` under the devices directory, a link to an
   * image file of its frozen content; links of unmapped ones removed. A LUN
   * is one device however many views map it, as on a real host (one WWN, one
   * by-id link). Rescans run one at a time: two at once (readers of two disks
   * mapping concurrently) both saw a snapshot unlinked and the second symlink
   * failed with EEXIST.
   */
  refreshDevices(): Promise<void> {
    const run = this.#rescan.then(() => this.#refreshDevices());
    this.#rescan = run.catch(() => {});
    return run;
  }

  async #refreshDevices(): Promise<void> {
    const exposed = this.#exposed();
    for (const [id, link] of [...this.#links]) {
      if (exposed.has(id) && this.snapshots.has(id)) continue;
      await unlink(link).catch(() => {});
      await rm(join(this.imagesDir, `${id}.img`), { force: true });
      this.#links.delete(id);
    }
    for (const id of exposed) {
      if (this.#links.has(id)) continue;
      const snapshot = this.snapshots.get(id);
      if (!snapshot?.data) continue;
      const image = join(this.imagesDir, `${id}.img`);
      await this.#testkit.writeImageFile(snapshot.data, image);
      const link = join(this.devicesDir, `wwn-0x${snapshot.WWN}`);
      await symlink(image, link);
      this.#links.set(id, link);
      this.stats.deviceLinks++;
    }
  }

  /** Links present now (mapped snapshots the proxy sees). */
  get deviceLinks(): number {
    return this.#links.size;
  }

  addVolume(spec: {
    name: string;
    sizeGb: number;
    serverId: string;
    device: string;
    boot: boolean;
  }): MockVolumeRecord {
    const id = crypto.randomUUID();
    const wwn = MockHcsState.wwn();
    const lunId = this.nextId();
    const volume: MockVolumeRecord = {
      id,
      name: spec.name,
      sizeGb: spec.sizeGb,
      wwn,
      serverId: spec.serverId,
      device: spec.device,
      boot: spec.boot,
      disk: new this.#testkit.VirtualDisk({ sizeBytes: spec.sizeGb * this.gbBytes }),
      lunId,
    };
    this.volumes.set(id, volume);
    this.luns.set(lunId, { ID: lunId, NAME: lunNameOf(id), WWN: wwn, volumeId: id });
    return volume;
  }
}
