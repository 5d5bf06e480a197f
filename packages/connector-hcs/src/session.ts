import { randomBytes } from 'node:crypto';
import {
  type ChangedBlockReader,
  type Clock,
  type ConnectorSession,
  type CreateSnapshotOptions,
  type DeviceDirectories,
  type Disk,
  type DiskSnapshotRef,
  type Host,
  isOldEnough,
  type Logger,
  type MountSlotProvider,
  type OpenReaderOptions,
  type PlatformStatus,
  type PrecheckResult,
  planSweep,
  type SnapshotRef,
  type SweepOptions,
  type SweepReport,
  type SweptResource,
  SyncproxyError,
  type SyncWarning,
} from '@syncproxy/core';
import type { HcsConfig } from './config.js';
import type { DoradoClient, DoradoLun } from './dorado-client.js';
import { type EvsVolume, type HcsClient, PLATFORM, SUPPORTED_HCS_RELEASE } from './hcs-client.js';
import { lunNameOf } from './lun-name.js';
import { openSnapshotReader } from './snapshot-reader.js';

/** Names of what this SDK creates on a Dorado start with this; descriptions with {@link SDK_DESCRIPTION}. */
export const SDK_PREFIX = 'syncproxy-';
/** `syncproxy:<created epoch seconds>:<what it belongs to>`: how sweep recognises and dates them. */
export const SDK_DESCRIPTION = 'syncproxy:';

/** Dorado models this connector is adapted to (the products name "other Dorado models not adapted"). */
export const SUPPORTED_DORADO_MODELS: readonly RegExp[] = [
  /^OceanStor Dorado (3000|5000|6000|8000|18000) V6$/,
];

/** One disk's part of an HCS snapshot: the Dorado LUN snapshot taken of its volume's LUN. */
export interface HcsDiskSnapshotData extends Record<string, unknown> {
  volumeId: string;
  storage: string;
  lunId: string;
  snapshotId: string;
  snapshotName: string;
  /** The WWN the snapshot shows when mapped: how the proxy finds its device. */
  snapshotWwn: string;
  sizeBytes: number;
  /** When the snapshot is a member of a snapshot consistency group (and its protection group). */
  consistencyGroupId?: string;
  protectGroupId?: string;
}

export interface HcsSessionOptions {
  config: HcsConfig;
  hcs: HcsClient;
  /** One client per configured storage, in the form's order. */
  storages: DoradoClient[];
  logger: Logger;
  clock: Clock;
  /** Bytes per EVS GB: 1 GiB but in tests against a shrunk mock. */
  gbBytes: number;
  mountSlots?: MountSlotProvider;
  devices?: DeviceDirectories;
  /** How long the mapped snapshot may take to appear on the proxy. Default 120 s. */
  locateTimeoutMs?: number;
  chunkSizeBytes?: number;
  signal?: AbortSignal;
  onClose?: () => Promise<void>;
}

/** A short random name part: Dorado names are at most 31 characters. */
export function shortId(): string {
  return randomBytes(6).toString('hex');
}

export function describeAs(createdAtMs: number, owner: string): string {
  return `${SDK_DESCRIPTION}${Math.floor(createdAtMs / 1000)}:${owner}`;
}

/** The creation time a description of {@link describeAs} carries. */
export function createdAtOf(description: string | undefined): string | undefined {
  const seconds = Number(description?.split(':')[1]);
  return Number.isFinite(seconds) && seconds > 0 ? new Date(seconds * 1000).toISOString() : undefined;
}

/** A connected HCS project and its Dorado storages. */
export class HcsSession implements ConnectorSession {
  readonly #options: HcsSessionOptions;
  readonly #warnings: SyncWarning[] = [];
  #supported: Promise<string> | undefined;

  constructor(options: HcsSessionOptions) {
    this.#options = options;
  }

  get warnings(): readonly SyncWarning[] {
    return this.#warnings;
  }

  /**
   * Refuses HCS 8.2.x / 8.3.x (their APIs differ) and Dorado models other
   * than the supported ones, naming what was found. Asked once a session.
   */
  #checkSupported(): Promise<string> {
    this.#supported ??= (async () => {
      const { hcs, storages } = this.#options;
      await hcs.authenticate();
      const version = await hcs.platformVersion();
      if (version !== undefined && !version.startsWith(SUPPORTED_HCS_RELEASE)) {
        throw new SyncproxyError(
          `Huawei Cloud Stack ${version} is not supported: only HCS ${SUPPORTED_HCS_RELEASE} (the APIs of 8.2.x and 8.3.x differ)`,
          { code: 'unsupported', retryable: false, platform: PLATFORM, details: { hcsVersion: version } },
        );
      }
      if (version === undefined) {
        this.#warnings.push({
          code: 'hcs-version-unknown',
          message: `the IAM gateway did not say its HCS release: assumed ${SUPPORTED_HCS_RELEASE}`,
        });
      }
      for (const storage of storages) {
        const system = await storage.system();
        const model = system.productModeString ?? system.PRODUCTMODE ?? 'unknown';
        if (!SUPPORTED_DORADO_MODELS.some((m) => m.test(model))) {
          throw new SyncproxyError(
            `storage ${storage.url}: the model ${model}${system.PRODUCTVERSION ? ` (${system.PRODUCTVERSION})` : ''} is not supported: only OceanStor Dorado V6 (3000, 5000, 6000, 8000, 18000)`,
            {
              code: 'unsupported',
              retryable: false,
              platform: PLATFORM,
              details: { model, storage: storage.url },
            },
          );
        }
      }
      return version ?? SUPPORTED_HCS_RELEASE;
    })();
    // A refusal stays; a network failure may be tried again.
    this.#supported.catch((error: unknown) => {
      if (!SyncproxyError.hasCode(error, 'unsupported')) this.#supported = undefined;
    });
    return this.#supported;
  }

  async verify(): Promise<PlatformStatus> {
    const version = await this.#checkSupported();
    const hosts = await this.listHosts();
    return { status: 'normal', hostCount: hosts.length, platformVersion: `Huawei Cloud Stack ${version}` };
  }

  async listHosts(): Promise<Host[]> {
    const { hcs } = this.#options;
    const servers = await hcs.listServers();
    const volumes = new Map<string, EvsVolume>();
    for (const volume of await hcs.listVolumes()) volumes.set(volume.id, volume);
    const hosts = servers.map((server): Host => {
      const attached = server['os-extended-volumes:volumes_attached'] ?? [];
      const disks: Disk[] = [];
      for (const a of attached) {
        const volume = volumes.get(a.id);
        if (!volume) continue;
        const attachment = volume.attachments?.find((x) => x.server_id === server.id);
        const device = attachment?.device ?? a.device;
        disks.push({
          id: volume.id,
          name: volume.name,
          sizeBytes: volume.size * this.#options.gbBytes,
          ...(device ? { device } : {}),
          boot: a.bootIndex === '0' || volume.bootable === 'true',
          attributes: { ...(volume.wwn ? { wwn: volume.wwn } : {}), status: volume.status },
        });
      }
      disks.sort((x, y) => Number(y.boot) - Number(x.boot) || (x.device ?? '').localeCompare(y.device ?? ''));
      return {
        id: server.id,
        name: server.name,
        powerState: server.status === 'ACTIVE' ? 'on' : server.status === 'SHUTOFF' ? 'off' : 'unknown',
        disks,
        attributes: { status: server.status },
      };
    });
    return hosts.sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
  }

  async prechecks(host: Host): Promise<PrecheckResult[]> {
    const withoutWwn = host.disks.filter((d) => d.attributes?.wwn === undefined);
    return [
      {
        id: 'host-state',
        title: '1. The server is running or stopped',
        status: host.powerState === 'on' || host.powerState === 'off' ? 'pass' : 'warn',
        detail: `status: ${String(host.attributes?.status ?? 'unknown')}`,
        remedy: 'Wait until the ECS server is ACTIVE or SHUTOFF.',
      },
      {
        id: 'disks-found',
        title: '2. The server has EVS volumes',
        status: host.disks.length > 0 ? 'pass' : 'fail',
        detail: `${host.disks.length} volume(s) attached`,
      },
      {
        id: 'disks-on-dorado',
        title: '3. Every volume is a Dorado LUN (SAN volume type)',
        status: withoutWwn.length === 0 ? 'pass' : 'warn',
        detail:
          withoutWwn.length === 0
            ? 'every volume names its LUN WWN'
            : `${withoutWwn.map((d) => d.id).join(', ')} name no WWN: their LUNs are looked up by name`,
      },
    ];
  }

  /** The LUN behind a volume, on whichever configured storage holds it. */
  async #lunOf(disk: Disk): Promise<{ storage: DoradoClient; lun: DoradoLun }> {
    const wwn = typeof disk.attributes?.wwn === 'string' ? disk.attributes.wwn : undefined;
    for (const storage of this.#options.storages) {
      const lun = await storage.findLun({ ...(wwn ? { wwn } : {}), name: lunNameOf(disk.id) });
      if (lun) return { storage, lun };
    }
    throw new SyncproxyError(
      `volume ${disk.id}: no configured Dorado holds its LUN (WWN ${wwn ?? 'unknown'}, name ${lunNameOf(disk.id)})`,
      { code: 'not-found', retryable: false, platform: PLATFORM },
    );
  }

  /**
   * A LUN snapshot of every volume of the server, created inactive and then
   * activated together, per storage in one call, so they share a point in
   * time. Anything created is deleted again when a step fails.
   */
  async createSnapshot(host: Host, options: CreateSnapshotOptions = {}): Promise<SnapshotRef> {
    await this.#checkSupported();
    const { clock } = this.#options;
    const now = clock.now();
    const id = `${SDK_PREFIX}${shortId()}`;
    const createdAt = new Date(now).toISOString();
    const description = describeAs(now, `${id}:${host.id}`);
    const created: Array<HcsDiskSnapshotData & { client: DoradoClient }> = [];
    const groups: Array<{
      client: DoradoClient;
      consistencyGroupId?: string;
      protectGroupId?: string;
      lunIds: string[];
    }> = [];
    try {
      const found: Array<{ disk: Disk; storage: DoradoClient; lun: DoradoLun }> = [];
      for (const disk of host.disks) found.push({ disk, ...(await this.#lunOf(disk)) });
      for (const f of found) {
        // The reader copies the LUN's capacity: one that is not the volume's listed size is another
        // LUN, a resize since the listing, or a wrong `gbBytes`, and an image of it would be wrong.
        const lunBytes = Number(f.lun.CAPACITY) * 512;
        if (lunBytes !== f.disk.sizeBytes) {
          throw new SyncproxyError(
            `volume ${f.disk.id}: its LUN ${f.lun.ID} on ${f.storage.url} holds ${lunBytes} bytes, the volume is listed with ${f.disk.sizeBytes}: list the hosts again (was it resized?)`,
            {
              code: 'integrity',
              retryable: false,
              platform: PLATFORM,
              details: { volumeId: f.disk.id, lunId: f.lun.ID, lunBytes, listedBytes: f.disk.sizeBytes },
            },
          );
        }
      }
      for (const storage of new Set(found.map((f) => f.storage))) {
        const mine = found.filter((f) => f.storage === storage);
        const record = (
          f: (typeof mine)[number],
          snapshot: { ID: string; NAME: string; WWN: string },
          group?: (typeof groups)[number],
        ) =>
          created.push({
            client: storage,
            volumeId: f.disk.id,
            storage: storage.url,
            lunId: f.lun.ID,
            snapshotId: snapshot.ID,
            snapshotName: snapshot.NAME,
            snapshotWwn: snapshot.WWN,
            sizeBytes: Number(f.lun.CAPACITY) * 512,
            ...(group?.consistencyGroupId ? { consistencyGroupId: group.consistencyGroupId } : {}),
            ...(group?.protectGroupId ? { protectGroupId: group.protectGroupId } : {}),
          });
        if (mine.length > 1 && (await storage.hasConsistencyGroups())) {
          // Where the array has them: one snapshot consistency group, activated as one.
          const group: (typeof groups)[number] = { client: storage, lunIds: mine.map((f) => f.lun.ID) };
          groups.push(group);
          const members = await storage.createConsistencyGroup({
            name: `${SDK_PREFIX}${shortId()}`,
            description,
            lunIds: group.lunIds,
            created: group,
          });
          for (const f of mine) {
            const member = members.get(f.lun.ID);
            if (!member) {
              throw new SyncproxyError(
                `Dorado ${storage.url}: the consistency group has no snapshot of LUN ${f.lun.ID}`,
                {
                  code: 'protocol',
                  platform: PLATFORM,
                },
              );
            }
            record(f, member, group);
          }
          await storage.activateConsistencyGroup(group.consistencyGroupId!);
          continue;
        }
        // Otherwise one snapshot per LUN, created inactive and activated in one call.
        for (const f of mine) {
          const name = `${SDK_PREFIX}${shortId()}`;
          record(f, {
            ...(await storage.createSnapshot({ name, description, lunId: f.lun.ID })),
            NAME: name,
          });
        }
        await storage.activateSnapshots(created.filter((c) => c.client === storage).map((c) => c.snapshotId));
      }
    } catch (error) {
      for (const group of groups) {
        await group.client.deleteConsistencyGroup(group).catch((cleanup: unknown) =>
          this.#options.logger.error(
            {
              consistencyGroupId: group.consistencyGroupId,
              error: (cleanup as Error).message,
            },
            'hcs: a consistency group could not be removed',
          ),
        );
      }
      await this.#deleteSnapshots(created.filter((c) => c.consistencyGroupId === undefined));
      throw error;
    }
    this.#options.logger.info(
      {
        hostId: host.id,
        snapshot: id,
        disks: created.length,
        label: options.label,
      },
      'hcs: snapshots activated',
    );
    return {
      id,
      platform: PLATFORM,
      hostId: host.id,
      createdAt,
      disks: created.map(
        ({ client: _client, ...data }): DiskSnapshotRef => ({
          diskId: data.volumeId,
          sizeBytes: data.sizeBytes,
          data,
        }),
      ),
    };
  }

  #storageOf(url: string): DoradoClient {
    const found = this.#options.storages.find((s) => s.url === url);
    if (!found) {
      throw new SyncproxyError(`the snapshot names storage ${url}, which is not in this platform’s config`, {
        code: 'config',
        retryable: false,
        details: { field: 'storages' },
      });
    }
    return found;
  }

  /** Deletes the disks' snapshots: a consistency group as a whole, other snapshots one by one. */
  async #deleteSnapshots(disks: HcsDiskSnapshotData[]): Promise<void> {
    const failures: unknown[] = [];
    const groupsDone = new Set<string>();
    for (const d of disks) {
      try {
        const storage = this.#storageOf(d.storage);
        if (d.consistencyGroupId !== undefined) {
          if (groupsDone.has(d.consistencyGroupId)) continue;
          groupsDone.add(d.consistencyGroupId);
          await storage.deleteConsistencyGroup({
            consistencyGroupId: d.consistencyGroupId,
            ...(d.protectGroupId ? { protectGroupId: d.protectGroupId } : {}),
            lunIds: disks.filter((x) => x.consistencyGroupId === d.consistencyGroupId).map((x) => x.lunId),
          });
        } else await storage.deleteSnapshot(d.snapshotId);
      } catch (error) {
        if (!SyncproxyError.hasCode(error, 'not-found')) failures.push(error);
      }
    }
    if (failures.length > 0) throw failures[0];
  }

  async openReader(disk: Disk, options: OpenReaderOptions): Promise<ChangedBlockReader> {
    const o = this.#options;
    const reader = await openSnapshotReader({
      config: o.config,
      storageOf: (url) => this.#storageOf(url),
      logger: o.logger,
      clock: o.clock,
      disk,
      snapshot: options.snapshot,
      ...(options.base ? { base: options.base } : {}),
      ...(options.previousManifest ? { previousManifest: options.previousManifest } : {}),
      ...(o.mountSlots ? { mountSlots: o.mountSlots } : {}),
      ...(o.devices ? { devices: o.devices } : {}),
      ...(o.locateTimeoutMs !== undefined ? { locateTimeoutMs: o.locateTimeoutMs } : {}),
      chunkSizeBytes: options.previousManifest?.chunkSizeBytes ?? o.chunkSizeBytes ?? 4 * 1024 * 1024,
      ...((options.signal ?? o.signal) ? { signal: options.signal ?? o.signal } : {}),
    });
    for (const warning of reader.warnings ?? []) {
      if (!this.#warnings.some((w) => w.code === warning.code)) this.#warnings.push(warning);
    }
    return reader;
  }

  async deleteSnapshot(snapshot: SnapshotRef): Promise<void> {
    const disks = snapshot.disks.map((d) => d.data as HcsDiskSnapshotData);
    // Deleting what is already gone must say so: the caller may hold a stale reference.
    let found = 0;
    for (const d of disks) {
      try {
        await this.#storageOf(d.storage).getSnapshot(d.snapshotId);
        found++;
      } catch (error) {
        if (!SyncproxyError.hasCode(error, 'not-found')) throw error;
      }
    }
    if (found === 0) {
      throw new SyncproxyError(`snapshot ${snapshot.id} is not on the storage (deleted already?)`, {
        code: 'not-found',
        retryable: false,
        platform: PLATFORM,
      });
    }
    await this.#deleteSnapshots(disks);
  }

  /**
   * Removes what this SDK left on every storage: mapping views named
   * `syncproxy-...` (their associations first), then the snapshot entries of
   * LUN groups named so and the groups, then snapshots whose description
   * starts `syncproxy:`, unless kept.
   */
  async sweep(options: SweepOptions = {}): Promise<SweepReport> {
    const plan = planSweep(options);
    const resources: SweptResource[] = [];
    const note = (kind: string, id: string, createdAt: string | undefined, deleted: boolean) =>
      resources.push({ kind, id, ...(createdAt ? { createdAt } : {}), deleted });
    for (const storage of this.#options.storages) {
      const ours = <T extends { NAME: string; DESCRIPTION?: string }>(items: T[]) =>
        items.filter((i) => i.NAME.startsWith(SDK_PREFIX) && i.DESCRIPTION?.startsWith(SDK_DESCRIPTION));
      const lunGroups = ours(await storage.listNamed('lungroup'));
      for (const view of ours(await storage.listNamed('mappingview'))) {
        const createdAt = createdAtOf(view.DESCRIPTION);
        if (!isOldEnough(plan, createdAt)) continue;
        if (!plan.dryRun)
          await removeMappingView(
            storage,
            view.ID,
            lunGroups.map((g) => g.ID),
          );
        note('mapping-view', `${storage.url}/${view.ID}`, createdAt, !plan.dryRun);
      }
      for (const group of lunGroups) {
        const createdAt = createdAtOf(group.DESCRIPTION);
        if (!isOldEnough(plan, createdAt)) continue;
        for (const snapshot of await storage.snapshotsOfLunGroup(group.ID)) {
          if (!plan.dryRun) await storage.removeSnapshotFromLunGroup(group.ID, snapshot.ID);
          note('lun-group-entry', `${storage.url}/${group.ID}/${snapshot.ID}`, createdAt, !plan.dryRun);
        }
        if (!plan.dryRun) await storage.remove('lungroup', group.ID);
        note('lun-group', `${storage.url}/${group.ID}`, createdAt, !plan.dryRun);
      }
      // Consistency groups go whole (their member snapshots with them), before single snapshots.
      const members = new Set<string>();
      const groups = (await storage.hasConsistencyGroups())
        ? ours(await storage.listConsistencyGroups())
        : [];
      for (const group of groups) {
        const createdAt = createdAtOf(group.DESCRIPTION);
        const snapshots = await storage.membersOfConsistencyGroup(group.ID);
        for (const m of snapshots) members.add(m.ID);
        if (!isOldEnough(plan, createdAt)) continue;
        const owner = group.DESCRIPTION?.split(':')[2] ?? '';
        const deleted = !plan.dryRun && !plan.isKept(group.ID) && !plan.isKept(owner);
        if (deleted) {
          await storage.deleteConsistencyGroup({
            consistencyGroupId: group.ID,
            ...(group.PARENTID ? { protectGroupId: group.PARENTID } : {}),
            lunIds: snapshots.map((m) => m.PARENTID),
          });
        }
        note('snapshot-consistency-group', `${storage.url}/${group.ID}`, createdAt, deleted);
      }
      for (const snapshot of await storage.listSnapshots()) {
        if (!snapshot.DESCRIPTION?.startsWith(SDK_DESCRIPTION) || members.has(snapshot.ID)) continue;
        const createdAt = createdAtOf(snapshot.DESCRIPTION);
        if (!isOldEnough(plan, createdAt)) continue;
        const owner = snapshot.DESCRIPTION.split(':')[2] ?? '';
        const deleted = !plan.dryRun && !plan.isKept(snapshot.ID) && !plan.isKept(owner);
        if (deleted) await storage.deleteSnapshot(snapshot.ID);
        note('snapshot', `${storage.url}/${snapshot.ID}`, createdAt, deleted);
      }
    }
    return { resources };
  }

  async close(): Promise<void> {
    const failures: unknown[] = [];
    for (const storage of this.#options.storages) {
      try {
        await storage.logout();
      } catch (error) {
        failures.push(error);
      }
    }
    await this.#options.onClose?.();
    if (failures.length > 0) throw failures[0];
  }
}

/**
 * Takes a mapping view apart: its LUN group and host group associations
 * (any of `lunGroupIds`, and every host group), then the view.
 */
export async function removeMappingView(
  storage: DoradoClient,
  viewId: string,
  lunGroupIds: string[],
): Promise<void> {
  const tolerate = async (run: () => Promise<void>) => {
    try {
      await run();
    } catch (error) {
      if (!SyncproxyError.hasCode(error, 'not-found')) throw error;
    }
  };
  const groups = await storage.call<Array<{ ID: string }> | undefined>(
    'QueryLunGroupsOfMappingView',
    'GET',
    `/lungroup/associate?ASSOCIATEOBJTYPE=245&ASSOCIATEOBJID=${viewId}`,
  );
  for (const g of groups ?? [])
    if (lunGroupIds.length === 0 || lunGroupIds.includes(g.ID))
      await tolerate(() => storage.dissociateMappingView(viewId, 256, g.ID));
  const hostGroups = await storage.call<Array<{ ID: string }> | undefined>(
    'QueryHostGroupsOfMappingView',
    'GET',
    `/hostgroup/associate?ASSOCIATEOBJTYPE=245&ASSOCIATEOBJID=${viewId}`,
  );
  for (const g of hostGroups ?? []) await tolerate(() => storage.dissociateMappingView(viewId, 14, g.ID));
  await tolerate(() => storage.remove('mappingview', viewId));
}
