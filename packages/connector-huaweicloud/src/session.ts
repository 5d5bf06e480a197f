import { randomUUID } from 'node:crypto';
import {
  type ChangedBlockReader,
  type Clock,
  type ConnectorSession,
  type CreateSnapshotOptions,
  createHashDiffReader,
  type DeviceDirectories,
  type Disk,
  type DiskManifest,
  type DiskSnapshotRef,
  diskSnapshotOf,
  type Host,
  type Logger,
  type MountSlotProvider,
  type OpenReaderOptions,
  type PlatformStatus,
  type PrecheckResult,
  type SnapshotRef,
  type SweepOptions,
  type SweepReport,
  SyncproxyError,
  type SyncWarning,
  withReaderWarnings,
} from '@syncproxy/core';
import { openAttachedVolumeReader } from './attached-volume.js';
import { hashManifestOf } from './base-manifest.js';
import type { ObsBucket } from './bucket.js';
import type { CbrBackup, EcsServer, EvsVolume, HuaweiCloudApi } from './cloud-api.js';
import { type HuaweiCloudConfig, platformName, regionOf } from './config.js';
import { ExportReader } from './export-reader.js';
import { HuaweiApiError } from './huawei-api-error.js';
import { exportNotEnabledWarning, isExportNotEnabled, type SnapshotDataExporter } from './snapshot-export.js';
import { sweepPlatform } from './sweep.js';

const GIB = 1024 ** 3;

/** Marks what this connector creates on CBR (the checkpoint's description), so sweep finds it. */
export const CHECKPOINT_MARK = 'syncproxy:managed';

/** Which data path reads disks: the snapshot data export when enabled (`auto`), or one of them only. */
export type DataPath = 'auto' | 'export' | 'attach';

export interface SessionOptions {
  config: HuaweiCloudConfig;
  api: HuaweiCloudApi;
  exporter: SnapshotDataExporter;
  bucket: ObsBucket;
  logger: Logger;
  clock: Clock;
  dataPath: DataPath;
  /** The hash-diff chunk size when no previous manifest sets it. Default 4 MiB. */
  chunkSizeBytes: number;
  /** Error codes that mean "export not enabled" (the white list). */
  notEnabledCodes?: readonly string[];
  locateTimeoutMs?: number;
  signal?: AbortSignal;
  devices?: DeviceDirectories;
  mountSlots?: MountSlotProvider;
}

/** What a SnapshotRef carries for Huawei Cloud. */
interface CheckpointData {
  checkpointId: string;
  backupId: string;
  vaultId: string;
}

/** What a SnapshotRef's disk carries: its volume backup inside the server backup. */
interface VolumeBackupData {
  volumeBackupId: string;
  volumeId: string;
  sizeGb: number;
}

export class HuaweiCloudSession implements ConnectorSession {
  readonly #options: SessionOptions;
  readonly #api: HuaweiCloudApi;
  readonly #name: string;
  readonly #warnings: SyncWarning[] = [];
  #exportDisabled = false;
  #proxy: Promise<EcsServer> | undefined;

  constructor(options: SessionOptions) {
    this.#options = options;
    this.#api = options.api;
    this.#name = platformName(options.config, new Date(options.clock.now()));
  }

  get name(): string {
    return this.#name;
  }

  get warnings(): readonly SyncWarning[] {
    return this.#warnings;
  }

  get #signal(): AbortSignal | undefined {
    return this.#options.signal;
  }

  async verify(): Promise<PlatformStatus> {
    await this.#api.client.projectId(this.#signal);
    const servers = await this.#api.listServers(this.#signal);
    await this.#proxyServer();
    const hostCount = servers.filter((s) => s.id !== this.#options.config.proxy).length;
    return {
      status: 'normal',
      hostCount,
      platformVersion: 'Huawei Cloud ECS v1, EVS v2, CBR v3',
      message: `${this.#name}: ${hostCount} ECS${hostCount === 1 ? '' : 's'} in ${regionOf(this.#options.config)}`,
    };
  }

  async listHosts(): Promise<Host[]> {
    const servers = (await this.#api.listServers(this.#signal)).filter(
      (s) => s.id !== this.#options.config.proxy,
    );
    const volumes = new Map((await this.#api.listVolumes({ ...this.#sig() })).map((v) => [v.id, v]));
    return servers.map((server) => toHost(server, volumes));
  }

  async prechecks(host: Host): Promise<PrecheckResult[]> {
    const results: PrecheckResult[] = [];
    let server: EcsServer | undefined;
    try {
      server = await this.#api.getServer(host.id, this.#signal);
    } catch (error) {
      if (!SyncproxyError.hasCode(error, 'not-found')) throw error;
    }
    results.push(
      server === undefined
        ? {
            id: 'ecs-exists',
            title: 'The ECS exists',
            status: 'fail',
            detail: `ECS ${host.id} was not found`,
            remedy: 'refresh the host list',
          }
        : {
            id: 'ecs-exists',
            title: 'The ECS exists',
            status: 'pass',
            detail: `ECS ${host.id} is ${server.status}`,
          },
    );
    const vault = await this.#api.findVault(host.id, this.#signal);
    results.push(
      vault === undefined
        ? {
            id: 'cbr-vault',
            title: 'The ECS is in a CBR server backup vault',
            status: 'fail',
            detail: `no CBR server backup vault holds ECS ${host.id}: a checkpoint cannot be taken`,
            remedy: 'add the ECS to a server backup vault (CBR console, Server Backups)',
          }
        : {
            id: 'cbr-vault',
            title: 'The ECS is in a CBR server backup vault',
            status: 'pass',
            detail: `vault ${vault.name} (${vault.id}) holds ECS ${host.id}`,
          },
    );
    const proxy = await this.#proxyServer();
    const proxyZone = proxy['OS-EXT-AZ:availability_zone'];
    const serverZone = server?.['OS-EXT-AZ:availability_zone'];
    const sameZone = proxyZone === undefined || serverZone === undefined || proxyZone === serverZone;
    results.push({
      id: 'proxy-zone',
      title: 'The sync proxy can attach volumes made from this ECS’s backups',
      status: sameZone ? 'pass' : 'warn',
      detail: sameZone
        ? `proxy ${proxy.id} is in ${proxyZone ?? 'the same availability zone'}`
        : `proxy ${proxy.id} is in ${proxyZone} and ECS ${host.id} in ${serverZone}: the fallback path creates the volume in the proxy’s zone, which restores across zones`,
      ...(sameZone ? {} : { remedy: 'use a proxy in the same availability zone for faster restores' }),
    });
    results.push(
      this.#exportDisabled
        ? {
            id: 'snapshot-data-export',
            title: 'CBR snapshot data export is enabled',
            status: 'warn',
            detail: exportNotEnabledWarning(regionOf(this.#options.config), 'refused earlier in this session')
              .message,
            remedy: 'ask Huawei Cloud (ticket) to white-list the account for the CBR snapshot data export',
          }
        : {
            id: 'snapshot-data-export',
            title: 'CBR snapshot data export is enabled',
            status: 'pass',
            detail:
              this.#options.dataPath === 'attach'
                ? 'not used: the attach path is configured'
                : 'not refused so far; the first read tries it and falls back to the attach path if refused',
          },
    );
    return results;
  }

  async createSnapshot(host: Host, options: CreateSnapshotOptions = {}): Promise<SnapshotRef> {
    const signal = anySignal(this.#signal, options.signal);
    const vault = await this.#api.findVault(host.id, signal);
    if (vault === undefined) {
      throw new SyncproxyError(
        `snapshot refused: no CBR server backup vault holds ECS ${host.id} (add it to a server backup vault)`,
        { code: 'conflict', retryable: false },
      );
    }
    const createdAt = new Date(this.#options.clock.now()).toISOString();
    const checkpoint = await this.#api.createCheckpoint(
      {
        vaultId: vault.id,
        serverId: host.id,
        name: `syncproxy-${host.id.slice(0, 8)}-${createdAt.replace(/[-:.]/g, '')}`,
        description: `${CHECKPOINT_MARK} platform=${this.#name} host=${host.id}${options.label ? ` label=${options.label}` : ''}`,
      },
      signal,
    );
    let backups: CbrBackup[] = [];
    try {
      await this.#api.poll(
        `CBR checkpoint ${checkpoint.id} of ECS ${host.id}`,
        async () => {
          const now = await this.#api.getCheckpoint(checkpoint.id, signal);
          if (now.status === 'error') {
            throw new SyncproxyError(`CBR checkpoint ${checkpoint.id} of ECS ${host.id} failed`, {
              code: 'platform',
              retryable: true,
            });
          }
          return now.status === 'available' ? now : undefined;
        },
        signal,
      );
      backups = await this.#api.listBackups({ checkpointId: checkpoint.id, ...(signal ? { signal } : {}) });
      const backup = backups.find((b) => b.resource_id === host.id);
      if (backup === undefined) {
        throw new SyncproxyError(`CBR checkpoint ${checkpoint.id} holds no backup of ECS ${host.id}`, {
          code: 'protocol',
          retryable: false,
        });
      }
      const disks: DiskSnapshotRef[] = host.disks.map((disk) => {
        const child = backup.children?.find((c) => c.resource_id === disk.id);
        if (child === undefined) {
          throw new SyncproxyError(
            `CBR backup ${backup.id} of ECS ${host.id} holds no backup of volume ${disk.id} (attached since the host list?)`,
            { code: 'not-found', retryable: false },
          );
        }
        const data: VolumeBackupData = {
          volumeBackupId: child.id,
          volumeId: disk.id,
          sizeGb: child.resource_size ?? Math.ceil(disk.sizeBytes / GIB),
        };
        return { diskId: disk.id, sizeBytes: disk.sizeBytes, data: { ...data } };
      });
      const data: CheckpointData = { checkpointId: checkpoint.id, backupId: backup.id, vaultId: vault.id };
      return {
        id: checkpoint.id,
        platform: 'huaweicloud',
        hostId: host.id,
        createdAt,
        disks,
        data: { ...data, region: regionOf(this.#options.config) },
      };
    } catch (error) {
      // Never leave a half-made checkpoint: its backups go; the description mark is the safety net for sweep.
      const found =
        backups.length > 0
          ? backups
          : await this.#api.listBackups({ checkpointId: checkpoint.id }).catch(() => []);
      for (const backup of found) await this.#api.deleteBackup(backup.id).catch(() => undefined);
      throw error;
    }
  }

  async openReader(disk: Disk, options: OpenReaderOptions): Promise<ChangedBlockReader> {
    const signal = anySignal(this.#signal, options.signal);
    const target = volumeBackup(options.snapshot, disk.id, 'snapshot');
    let manifest: DiskManifest | undefined = options.previousManifest;
    if (manifest === undefined && options.base !== undefined) {
      const ref = options.base.disks.find((d) => d.diskId === disk.id);
      if (ref !== undefined) manifest = await this.#baseManifest(disk, readVolumeBackup(ref, 'base'), signal);
    }
    const full = await this.#openFull(disk, target, signal);
    try {
      return createHashDiffReader({
        reader: full,
        // Ranged GETs and device reads overlap: more chunks in flight than the default 4.
        readAhead: 16,
        ...(manifest ? { previousManifest: manifest } : { chunkSizeBytes: this.#options.chunkSizeBytes }),
      });
    } catch (error) {
      await full.close();
      throw error;
    }
  }

  async deleteSnapshot(snapshot: SnapshotRef): Promise<void> {
    const { backupId } = checkpointData(snapshot);
    try {
      await this.#api.deleteBackup(backupId, this.#signal);
    } catch (error) {
      // Already gone is what was asked.
      if (!(HuaweiApiError.isInstance(error) && error.status === 404)) throw error;
    }
  }

  sweep(options: SweepOptions = {}): Promise<SweepReport> {
    return sweepPlatform({
      api: this.#api,
      bucket: this.#options.bucket,
      checkpointMark: CHECKPOINT_MARK,
      ...options,
      ...(options.signal || this.#signal ? { signal: anySignal(this.#signal, options.signal)! } : {}),
    });
  }

  async close(): Promise<void> {
    await this.#api.client.close();
  }

  #sig(): { signal?: AbortSignal } {
    return this.#signal ? { signal: this.#signal } : {};
  }

  #proxyServer(): Promise<EcsServer> {
    this.#proxy ??= this.#api.getServer(this.#options.config.proxy, this.#signal).catch((error: unknown) => {
      this.#proxy = undefined;
      if (SyncproxyError.hasCode(error, 'not-found')) {
        throw new SyncproxyError(
          `proxy: ECS ${this.#options.config.proxy} (the sync proxy) was not found in ${regionOf(this.#options.config)}`,
          { code: 'config', retryable: false, cause: error },
        );
      }
      throw error;
    });
    return this.#proxy;
  }

  /** The manifest of the base snapshot's volume, read through the same data path. */
  async #baseManifest(
    disk: Disk,
    base: VolumeBackupData,
    signal: AbortSignal | undefined,
  ): Promise<DiskManifest> {
    const reader = await this.#openFull(disk, base, signal);
    try {
      return await hashManifestOf(reader, this.#options.chunkSizeBytes, signal);
    } finally {
      await reader.close();
    }
  }

  /** A full reader of one volume backup: the export when enabled, else an attached volume. */
  async #openFull(
    disk: Disk,
    backup: VolumeBackupData,
    signal: AbortSignal | undefined,
  ): Promise<ChangedBlockReader> {
    // A deleted snapshot is a not-found before anything is created for it.
    await this.#api.getBackup(backup.volumeBackupId, signal);
    const { dataPath } = this.#options;
    if (dataPath !== 'attach' && !this.#exportDisabled) {
      try {
        return await this.#openExport(disk, backup, signal);
      } catch (error) {
        if (!isExportNotEnabled(error, this.#options.notEnabledCodes)) throw error;
        const region = regionOf(this.#options.config);
        const reason = HuaweiApiError.isInstance(error)
          ? `${error.platformCode ?? `HTTP ${error.status}`}${error.platformMessage ? `: ${error.platformMessage}` : ''}`
          : 'refused';
        const warning = exportNotEnabledWarning(region, reason);
        if (dataPath === 'export') {
          throw new SyncproxyError(
            warning.message.replace(/ Falling back.*$/, ' (the export data path is configured)'),
            {
              code: 'unsupported',
              retryable: false,
              cause: error,
            },
          );
        }
        this.#exportDisabled = true;
        this.#warnings.push(warning);
        this.#options.logger.warn({ region }, warning.message);
      }
    }
    const proxy = await this.#proxyServer();
    const reader = await openAttachedVolumeReader({
      api: this.#api,
      logger: this.#options.logger,
      proxyId: proxy.id,
      volumeBackupId: backup.volumeBackupId,
      volumeId: backup.volumeId,
      sizeGb: backup.sizeGb,
      diskSize: disk.sizeBytes,
      availabilityZone: proxy['OS-EXT-AZ:availability_zone'] ?? `${regionOf(this.#options.config)}a`,
      ...(this.#options.mountSlots ? { mountSlots: this.#options.mountSlots } : {}),
      ...(this.#options.devices ? { devices: this.#options.devices } : {}),
      ...(this.#options.locateTimeoutMs !== undefined
        ? { locateTimeoutMs: this.#options.locateTimeoutMs }
        : {}),
      ...(signal ? { signal } : {}),
    });
    return this.#exportDisabled ? withReaderWarnings(reader, this.#warnings) : reader;
  }

  async #openExport(
    disk: Disk,
    backup: VolumeBackupData,
    signal: AbortSignal | undefined,
  ): Promise<ChangedBlockReader> {
    const { bucket, exporter } = this.#options;
    await bucket.ensure(signal);
    await exporter.delegateBucket(bucket.name, signal);
    const prefix = `syncproxy/${backup.volumeBackupId}/${randomUUID()}/`;
    const removeObjects = async (): Promise<void> => {
      // No signal: the objects go also when the sync was aborted.
      await bucket.deletePrefix(prefix);
    };
    try {
      const exported = await exporter.exportVolume({
        volumeBackupId: backup.volumeBackupId,
        volumeId: backup.volumeId,
        prefix,
        ...(signal ? { signal } : {}),
      });
      return new ExportReader({
        bucket,
        diskSize: disk.sizeBytes,
        objects: exported.objects,
        onClose: removeObjects,
      });
    } catch (error) {
      try {
        await removeObjects();
      } catch (cleanupError) {
        this.#options.logger.warn(
          {
            prefix,
            error: (cleanupError as Error)?.message,
          },
          'could not delete the objects of a failed export (sweep removes them later)',
        );
      }
      throw error;
    }
  }
}

const POWER: Record<string, Host['powerState']> = {
  ACTIVE: 'on',
  REBOOT: 'on',
  HARD_REBOOT: 'on',
  SHUTOFF: 'off',
  SUSPENDED: 'suspended',
};

function toHost(server: EcsServer, volumes: Map<string, EvsVolume>): Host {
  const attached = server['os-extended-volumes:volumes_attached'] ?? [];
  const disks: Disk[] = attached.map((a) => {
    const volume = volumes.get(a.id);
    const attachment = volume?.attachments?.find((x) => x.server_id === server.id);
    const device = attachment?.device ?? a.device;
    const attributes: Record<string, string | number | boolean> = {};
    if (volume?.volume_type) attributes.volumeType = volume.volume_type;
    if (volume?.availability_zone) attributes.availabilityZone = volume.availability_zone;
    return {
      id: a.id,
      name: volume?.name || a.id,
      sizeBytes: (volume?.size ?? 0) * GIB,
      ...(device ? { device } : {}),
      boot: a.bootIndex === '0' || volume?.bootable === 'true',
      attributes,
    };
  });
  const attributes: Record<string, string | number | boolean> = { status: server.status };
  if (server.flavor?.id) attributes.flavor = server.flavor.id;
  const zone = server['OS-EXT-AZ:availability_zone'];
  if (zone) attributes.availabilityZone = zone;
  return {
    id: server.id,
    name: server.name || server.id,
    powerState: POWER[server.status] ?? 'unknown',
    ...(server.metadata?.os_type ? { os: server.metadata.os_type } : {}),
    disks,
    attributes,
  };
}

function checkpointData(snapshot: SnapshotRef): CheckpointData {
  const { checkpointId, backupId, vaultId } = (snapshot.data ?? {}) as Partial<CheckpointData>;
  if (typeof checkpointId !== 'string' || typeof backupId !== 'string' || typeof vaultId !== 'string') {
    throw new SyncproxyError(
      `snapshot ${snapshot.id} carries no CBR checkpoint (not made by this connector?)`,
      {
        code: 'config',
        retryable: false,
      },
    );
  }
  return { checkpointId, backupId, vaultId };
}

function volumeBackup(snapshot: SnapshotRef, diskId: string, role: string): VolumeBackupData {
  return readVolumeBackup(diskSnapshotOf(snapshot, diskId, { role, noun: 'volume' }), role);
}

function readVolumeBackup(ref: DiskSnapshotRef, role: string): VolumeBackupData {
  const { volumeBackupId, volumeId, sizeGb } = ref.data as Partial<VolumeBackupData>;
  if (typeof volumeBackupId !== 'string' || typeof sizeGb !== 'number') {
    throw new SyncproxyError(
      `${role} of volume ${ref.diskId} carries no CBR volume backup (not made by this connector?)`,
      { code: 'config', retryable: false },
    );
  }
  return { volumeBackupId, volumeId: typeof volumeId === 'string' ? volumeId : ref.diskId, sizeGb };
}

function anySignal(...signals: Array<AbortSignal | undefined>): AbortSignal | undefined {
  const present = signals.filter((s): s is AbortSignal => s !== undefined);
  if (present.length <= 1) return present[0];
  return AbortSignal.any(present);
}
