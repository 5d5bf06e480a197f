import { randomUUID } from 'node:crypto';
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
import type { OciBootVolumeBackup, OciVolumeBackup, OracleClient } from './client.js';
import { PLATFORM } from './client.js';
import type { OracleConfig } from './config.js';
import type { IscsiInitiator } from './iscsi-initiator.js';
import { type LifecycleWaitOptions, waitForState } from './lifecycle-wait.js';
import type { MappedRangeScanner } from './mapped-range-scanner.js';
import { AttachQueue, openVolumeReader } from './volume-reader.js';

const MIB = 1024 * 1024;

/** Freeform tags on everything this SDK creates, so `sweep` finds it and nothing else. */
export const SDK_TAGS = { 'syncproxy-sdk': 'true' } as const;
export const SNAPSHOT_TAG = 'syncproxy-snapshot';
export const HOST_TAG = 'syncproxy-host';
/** Attachments carry no tags in OCI: they are recognised by this display-name prefix. */
export const ATTACHMENT_PREFIX = 'syncproxy-';

/** One disk's part of an OCI snapshot: the backup taken of it. */
export interface OracleDiskSnapshotData extends Record<string, unknown> {
  kind: 'boot' | 'block';
  volumeId: string;
  backupId: string;
  backupType: 'FULL' | 'INCREMENTAL';
  compartmentId: string;
  sizeBytes: number;
}

/** The tools the proxy runs for the data path; tests and the mock bring their own. */
export interface ProxyHostTools {
  iscsi: IscsiInitiator;
  scanner: MappedRangeScanner;
}

export interface OracleSessionOptions {
  config: OracleConfig;
  client: OracleClient;
  logger: Logger;
  clock: Clock;
  tools: ProxyHostTools;
  /** The product's mount slots; none: the process-wide default of 50. */
  mountSlots?: MountSlotProvider;
  devices?: DeviceDirectories;
  wait?: LifecycleWaitOptions;
  /** The engine's chunk size, when the caller has no manifest to say it. Default 4 MiB. */
  chunkSizeBytes?: number;
  signal?: AbortSignal;
  /** Releases what the connector built for this session (its own dispatcher). */
  onClose?: () => Promise<void>;
}

function sizeOf(volume: { sizeInMBs?: number; sizeInGBs?: number }): number {
  if (volume.sizeInMBs !== undefined) return volume.sizeInMBs * MIB;
  return (volume.sizeInGBs ?? 0) * 1024 * MIB;
}

function isTagged(resource: { freeformTags?: Record<string, string> }): boolean {
  return resource.freeformTags?.['syncproxy-sdk'] === 'true';
}

/** A connected OCI tenancy. */
export class OracleSession implements ConnectorSession {
  readonly #options: OracleSessionOptions;
  readonly #warnings: SyncWarning[] = [];
  readonly #attachQueue = new AttachQueue();
  #compartments: string[] | undefined;

  constructor(options: OracleSessionOptions) {
    this.#options = options;
  }

  get warnings(): readonly SyncWarning[] {
    return this.#warnings;
  }

  /** The tenancy (the root compartment) and every active compartment under it, walked breadth first. */
  async #allCompartments(): Promise<string[]> {
    if (this.#compartments) return this.#compartments;
    const { client, config } = this.#options;
    const found = [config.tenancyId];
    for (let i = 0; i < found.length; i++) {
      for (const child of await client.listCompartments(found[i]!)) found.push(child.id);
    }
    this.#compartments = found;
    return found;
  }

  async verify(): Promise<PlatformStatus> {
    const hosts = await this.listHosts();
    // The proxy must exist and be visible: the data path attaches volumes to it.
    const proxy = await this.#options.client.getInstance(this.#options.config.proxyInstanceId);
    return {
      status: 'normal',
      hostCount: hosts.length,
      platformVersion: 'OCI Core Services 20160918',
      ...(proxy.lifecycleState !== 'RUNNING'
        ? { message: `the sync proxy instance is ${proxy.lifecycleState}` }
        : {}),
    };
  }

  async listHosts(): Promise<Host[]> {
    const { client } = this.#options;
    const hosts: Host[] = [];
    for (const compartmentId of await this.#allCompartments()) {
      for (const instance of await client.listInstances(compartmentId)) {
        if (instance.lifecycleState === 'TERMINATED' || instance.lifecycleState === 'TERMINATING') continue;
        hosts.push(await this.#hostOf(instance));
      }
    }
    return hosts.sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
  }

  async #hostOf(instance: Awaited<ReturnType<OracleClient['getInstance']>>): Promise<Host> {
    const { client } = this.#options;
    const disks: Disk[] = [];
    const boots = await client.listBootVolumeAttachments(
      instance.availabilityDomain,
      instance.compartmentId,
      instance.id,
    );
    for (const attachment of boots) {
      if (attachment.lifecycleState !== 'ATTACHED') continue;
      const volume = await client.getBootVolume(attachment.bootVolumeId);
      disks.push({
        id: volume.id,
        name: volume.displayName,
        sizeBytes: sizeOf(volume),
        boot: true,
        attributes: {
          kind: 'boot',
          compartmentId: volume.compartmentId,
          availabilityDomain: volume.availabilityDomain,
        },
      });
    }
    const attachments = await client.listVolumeAttachments(instance.compartmentId, {
      instanceId: instance.id,
    });
    for (const attachment of attachments) {
      // The proxy's own clones and deltas are not disks of the proxy host.
      if (attachment.lifecycleState !== 'ATTACHED' || attachment.displayName?.startsWith(ATTACHMENT_PREFIX))
        continue;
      const volume = await client.getVolume(attachment.volumeId);
      disks.push({
        id: volume.id,
        name: volume.displayName,
        sizeBytes: sizeOf(volume),
        ...(attachment.device ? { device: attachment.device } : {}),
        boot: false,
        attributes: {
          kind: 'block',
          compartmentId: volume.compartmentId,
          availabilityDomain: volume.availabilityDomain,
          attachmentType: attachment.attachmentType,
        },
      });
    }
    const powerState =
      instance.lifecycleState === 'RUNNING'
        ? 'on'
        : instance.lifecycleState === 'STOPPED'
          ? 'off'
          : 'unknown';
    return {
      id: instance.id,
      name: instance.displayName ?? instance.id,
      powerState,
      disks,
      attributes: {
        compartmentId: instance.compartmentId,
        availabilityDomain: instance.availabilityDomain,
        shape: instance.shape,
      },
    };
  }

  async prechecks(host: Host): Promise<PrecheckResult[]> {
    const { config } = this.#options;

    const results: PrecheckResult[] = [
      {
        id: 'host-running',
        title: '1. The instance is running or stopped',
        status: host.powerState === 'on' || host.powerState === 'off' ? 'pass' : 'warn',
        detail: `power state: ${host.powerState ?? 'unknown'}`,
        remedy: 'Wait until the instance is RUNNING or STOPPED.',
      },
      {
        id: 'disks-found',
        title: '2. The instance has a boot volume',
        status: host.disks.some((d) => d.boot) ? 'pass' : 'fail',
        detail: `${host.disks.length} volume(s) attached`,
        remedy: 'Only instances with an attached boot volume can be synced.',
      },
    ];
    const proxy = await this.#options.client
      .getInstance(config.proxyInstanceId)
      .catch((error: unknown) => error);
    const proxyState =
      proxy instanceof Error ? undefined : (proxy as { lifecycleState?: string }).lifecycleState;
    const proxyAd =
      proxy instanceof Error ? undefined : (proxy as { availabilityDomain?: string }).availabilityDomain;
    results.push({
      id: 'proxy-instance',
      title: '3. The sync proxy instance is running where the config says',
      status: proxyState === 'RUNNING' && proxyAd === config.proxyAvailabilityDomain ? 'pass' : 'fail',
      detail:
        proxy instanceof Error
          ? `the proxy instance ${config.proxyInstanceId} cannot be read: ${proxy.message}`
          : `the proxy instance is ${proxyState} in ${proxyAd}`,
      remedy:
        'Check proxyInstanceId and proxyAvailabilityDomain, the IAM policy (use instances), and that the proxy runs: restored volumes are attached to it.',
    });
    return results;
  }

  async createSnapshot(host: Host, options: CreateSnapshotOptions = {}): Promise<SnapshotRef> {
    const { client, clock } = this.#options;
    const signal = options.signal ?? this.#options.signal;
    const id = `syncproxy-${randomUUID()}`;
    const createdAt = new Date(clock.now()).toISOString();
    const freeformTags = { ...SDK_TAGS, [SNAPSHOT_TAG]: id, [HOST_TAG]: host.id };
    const displayName = options.label ?? `syncproxy ${host.name} ${createdAt}`;
    const created: OracleDiskSnapshotData[] = [];
    try {
      // Every disk's backup is requested before any is waited for, so they start close together.
      for (const disk of host.disks) {
        const kind = disk.boot ? 'boot' : 'block';
        const compartmentId = String(disk.attributes?.compartmentId ?? host.attributes?.compartmentId ?? '');
        const earlier =
          kind === 'boot'
            ? await client.listBootVolumeBackups(compartmentId, disk.id)
            : await client.listVolumeBackups(compartmentId, disk.id);
        // OCI's incremental is relative to the volume's last backup; the first one must be FULL.
        const type = earlier.some((b) => b.lifecycleState === 'AVAILABLE') ? 'INCREMENTAL' : 'FULL';
        const backup: OciVolumeBackup | OciBootVolumeBackup =
          kind === 'boot'
            ? await client.createBootVolumeBackup(
                { bootVolumeId: disk.id, type: type as never, displayName, freeformTags },
                signal,
              )
            : await client.createVolumeBackup(
                { volumeId: disk.id, type: type as never, displayName, freeformTags },
                signal,
              );
        created.push({
          kind,
          volumeId: disk.id,
          backupId: backup.id,
          backupType: type,
          compartmentId: backup.compartmentId,
          sizeBytes: disk.sizeBytes,
        });
      }
      await Promise.all(
        created.map((d) =>
          waitForState({
            what: `backup ${d.backupId} of volume ${d.volumeId}`,
            get: (): Promise<{ lifecycleState?: string }> =>
              d.kind === 'boot'
                ? client.getBootVolumeBackup(d.backupId, signal)
                : client.getVolumeBackup(d.backupId, signal),
            target: 'AVAILABLE',
            failed: ['FAULTY', 'TERMINATING', 'TERMINATED'],
            clock,
            ...(this.#options.wait ? { wait: this.#options.wait } : {}),
            ...(signal ? { signal } : {}),
          }),
        ),
      );
    } catch (error) {
      await this.#deleteBackups(created);
      throw error;
    }
    return {
      id,
      platform: PLATFORM,
      hostId: host.id,
      createdAt,
      disks: created.map((d): DiskSnapshotRef => ({ diskId: d.volumeId, sizeBytes: d.sizeBytes, data: d })),
    };
  }

  async #deleteBackups(disks: OracleDiskSnapshotData[]): Promise<void> {
    const { client } = this.#options;
    // Cleanup runs even when the caller aborted: a fresh signal keeps the session's from cutting it short.
    const never = new AbortController().signal;
    const failures: unknown[] = [];
    for (const d of disks) {
      try {
        if (d.kind === 'boot') await client.deleteBootVolumeBackup(d.backupId, never);
        else await client.deleteVolumeBackup(d.backupId, never);
      } catch (error) {
        if (!SyncproxyError.hasCode(error, 'not-found')) failures.push(error);
      }
    }
    if (failures.length > 0) throw failures[0];
  }

  async openReader(disk: Disk, options: OpenReaderOptions): Promise<ChangedBlockReader> {
    const o = this.#options;
    const reader = await openVolumeReader({
      client: o.client,
      config: o.config,
      clock: o.clock,
      logger: o.logger,
      tools: o.tools,
      attachQueue: this.#attachQueue,
      ...(o.mountSlots ? { mountSlots: o.mountSlots } : {}),
      disk,
      snapshot: options.snapshot,
      ...(options.base ? { base: options.base } : {}),
      ...(options.previousManifest ? { previousManifest: options.previousManifest } : {}),
      ...(o.devices ? { devices: o.devices } : {}),
      ...(o.wait ? { wait: o.wait } : {}),
      chunkSizeBytes: options.previousManifest?.chunkSizeBytes ?? o.chunkSizeBytes ?? 4 * MIB,
      ...((options.signal ?? o.signal) ? { signal: options.signal ?? o.signal } : {}),
    });
    for (const warning of reader.warnings ?? []) this.#warnings.push(warning);
    return reader;
  }

  async deleteSnapshot(snapshot: SnapshotRef): Promise<void> {
    await this.#deleteBackups(snapshot.disks.map((d) => d.data as OracleDiskSnapshotData));
  }

  /**
   * Removes what this SDK left: attachments to the proxy (display name
   * `syncproxy-...`), then tagged clone and delta volumes, then tagged backups
   * whose snapshot is not in `keep`.
   */
  async sweep(options: SweepOptions = {}): Promise<SweepReport> {
    const { client, config, clock } = this.#options;
    const plan = planSweep(options);
    const never = new AbortController().signal;
    const old = (created: Date | string | undefined) =>
      isOldEnough(plan, created === undefined ? undefined : new Date(created).toISOString());
    const resources: SweptResource[] = [];
    const compartments = await this.#allCompartments();
    const note = (kind: string, id: string, created: Date | string | undefined, deleted: boolean) =>
      resources.push({
        kind,
        id,
        ...(created ? { createdAt: new Date(created).toISOString() } : {}),
        deleted,
      });

    for (const compartmentId of compartments) {
      const attachments = await client.listVolumeAttachments(compartmentId, {
        instanceId: config.proxyInstanceId,
      });
      for (const a of attachments) {
        if (!a.displayName?.startsWith(ATTACHMENT_PREFIX) || a.lifecycleState === 'DETACHED') continue;
        if (!old(a.timeCreated)) continue;
        if (!plan.dryRun) {
          if (a.lifecycleState !== 'DETACHING') await client.detachVolume(a.id, never);
          await waitForState({
            what: `attachment ${a.id}`,
            get: () => client.getVolumeAttachment(a.id, never),
            target: 'DETACHED',
            clock,
            ...(this.#options.wait ? { wait: this.#options.wait } : {}),
          });
        }
        note('attachment', a.id, a.timeCreated, !plan.dryRun);
      }
    }
    for (const compartmentId of compartments) {
      const volumes = [
        ...(await client.listVolumes(compartmentId)).map((v) => ({ v, boot: false })),
        ...(await client.listBootVolumes(config.proxyAvailabilityDomain, compartmentId)).map((v) => ({
          v,
          boot: true,
        })),
      ];
      for (const { v, boot } of volumes) {
        if (!isTagged(v) || v.lifecycleState === 'TERMINATED' || v.lifecycleState === 'TERMINATING') continue;
        if (!old(v.timeCreated)) continue;
        if (!plan.dryRun) {
          if (boot) await client.deleteBootVolume(v.id, never);
          else await client.deleteVolume(v.id, never);
        }
        note(boot ? 'boot-volume' : 'volume', v.id, v.timeCreated, !plan.dryRun);
      }
      const backups = [
        ...(await client.listVolumeBackups(compartmentId)).map((b) => ({ b, boot: false })),
        ...(await client.listBootVolumeBackups(compartmentId)).map((b) => ({ b, boot: true })),
      ];
      for (const { b, boot } of backups) {
        if (!isTagged(b) || b.lifecycleState === 'TERMINATED' || b.lifecycleState === 'TERMINATING') continue;
        if (!old(b.timeCreated)) continue;
        const kept = plan.isKept(b.id) || plan.isKept(b.freeformTags?.[SNAPSHOT_TAG] ?? '');
        const deleted = !plan.dryRun && !kept;
        if (deleted) {
          if (boot) await client.deleteBootVolumeBackup(b.id, never);
          else await client.deleteVolumeBackup(b.id, never);
        }
        note(boot ? 'boot-volume-backup' : 'volume-backup', b.id, b.timeCreated, deleted);
      }
    }
    return { resources };
  }

  async close(): Promise<void> {
    this.#options.client.close();
    await this.#options.onClose?.();
  }
}
