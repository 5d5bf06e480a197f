import type { Instance, Snapshot, Tag, Volume } from '@aws-sdk/client-ec2';
import {
  abortError,
  type Clock,
  type ConnectorSession,
  type CreateSnapshotOptions,
  type Disk,
  type DiskSnapshotRef,
  diskSnapshotOf,
  type Host,
  type Logger,
  type OpenReaderOptions,
  type PlatformStatus,
  type PrecheckResult,
  type SnapshotRef,
  type SweepOptions,
  type SweepReport,
  SyncproxyError,
  type SyncWarning,
  sleep,
} from '@syncproxy/core';
import type { AwsClient } from './client.js';
import { type AwsConfig, platformName } from './config.js';
import { EbsSnapshotReader } from './reader.js';
import { SNAPSHOT_TAGS, sweepSnapshots } from './sweep.js';

const GIB = 1024 ** 3;

export interface SnapshotWaitOptions {
  /** First wait between DescribeSnapshots polls, ms. Default 2000; it grows by half each poll. */
  initialDelayMs?: number;
  /** Longest wait between polls, ms. Default 30 000. */
  maxDelayMs?: number;
  /** Give up (and delete the snapshots) after this long, ms. Default 2 h: a first snapshot of a big volume is slow. */
  timeoutMs?: number;
}

export interface ReaderTuning {
  /** `maxResults` of list calls (100..10 000). Default 10 000. */
  pageSize?: number;
  /** Re-list block tokens this long before they expire, ms. Default 60 000. */
  tokenRefreshMarginMs?: number;
  /** GetSnapshotBlock calls one reader keeps in flight at most. Default 64. */
  maxBlockReadsInFlight?: number;
}

export interface SessionOptions {
  config: AwsConfig;
  client: AwsClient;
  logger: Logger;
  clock: Clock;
  signal?: AbortSignal;
  snapshotWait?: SnapshotWaitOptions;
  reader?: ReaderTuning;
}

/** What a SnapshotRef's disk carries for AWS. */
interface AwsDiskSnapshotData {
  snapshotId: string;
  volumeId: string;
}

export class AwsSession implements ConnectorSession {
  readonly #config: AwsConfig;
  readonly #client: AwsClient;
  readonly #logger: Logger;
  readonly #clock: Clock;
  readonly #signal: AbortSignal | undefined;
  readonly #wait: Required<SnapshotWaitOptions>;
  readonly #reader: ReaderTuning;
  readonly #name: string;

  constructor(options: SessionOptions) {
    this.#config = options.config;
    this.#client = options.client;
    this.#logger = options.logger;
    this.#clock = options.clock;
    this.#signal = options.signal;
    this.#wait = {
      initialDelayMs: options.snapshotWait?.initialDelayMs ?? 2000,
      maxDelayMs: options.snapshotWait?.maxDelayMs ?? 30_000,
      timeoutMs: options.snapshotWait?.timeoutMs ?? 2 * 3600_000,
    };
    this.#reader = options.reader ?? {};
    this.#name = platformName(options.config, new Date(options.clock.now()));
  }

  /** The platform's name: the configured one, or `AWS-<region>-<time>`. */
  get name(): string {
    return this.#name;
  }

  async verify(): Promise<PlatformStatus> {
    const regions = await this.#client.describeRegions(this.#signal);
    if (!regions.includes(this.#config.region)) {
      throw new SyncproxyError(
        `region ${this.#config.region} does not exist or is not enabled for this account (enabled: ${regions.join(', ') || 'none'})`,
        { code: 'config', retryable: false, details: { region: this.#config.region, regions } },
      );
    }
    const instances = await this.#client.describeInstances({ signal: this.#signal });
    const hostCount = instances.filter(isListed).length;
    return {
      status: 'normal',
      hostCount,
      platformVersion: 'Amazon EC2 (API 2016-11-15), EBS direct APIs (2019-11-02)',
      message: `${this.#name}: ${hostCount} EC2 instance${hostCount === 1 ? '' : 's'} in ${this.#config.region}`,
    };
  }

  async listHosts(): Promise<Host[]> {
    const instances = (await this.#client.describeInstances({ signal: this.#signal })).filter(isListed);
    const volumeIds = instances.flatMap(ebsVolumeIds);
    const volumes = new Map<string, Volume>();
    // DescribeVolumes takes at most 500 ids per call.
    for (let i = 0; i < volumeIds.length; i += 500) {
      for (const volume of await this.#client.describeVolumes({
        volumeIds: volumeIds.slice(i, i + 500),
        signal: this.#signal,
      })) {
        if (volume.VolumeId) volumes.set(volume.VolumeId, volume);
      }
    }
    return instances.map((instance) => toHost(instance, volumes));
  }

  async prechecks(host: Host): Promise<PrecheckResult[]> {
    const results: PrecheckResult[] = [];
    const [instance] = await this.#client.describeInstances({ instanceIds: [host.id], signal: this.#signal });
    const state = instance?.State?.Name;
    results.push(
      instance === undefined || state === 'terminated' || state === 'shutting-down'
        ? {
            id: 'instance-exists',
            title: 'The instance exists',
            status: 'fail',
            detail: `instance ${host.id} is ${state ?? 'not found'} in ${this.#config.region}`,
            remedy: 'refresh the host list',
          }
        : {
            id: 'instance-exists',
            title: 'The instance exists',
            status: 'pass',
            detail: `instance ${host.id} is ${state}`,
          },
    );
    const volumeIds = instance ? ebsVolumeIds(instance) : [];
    results.push(
      volumeIds.length > 0
        ? {
            id: 'ebs-volumes',
            title: 'The instance has EBS volumes',
            status: 'pass',
            detail: `${volumeIds.length} EBS volume(s): ${volumeIds.join(', ')}`,
          }
        : {
            id: 'ebs-volumes',
            title: 'The instance has EBS volumes',
            status: 'fail',
            detail: 'no EBS volume is attached (instance-store volumes cannot be snapshotted)',
            remedy: 'sync this instance with an agent instead',
          },
    );
    const volumes =
      volumeIds.length > 0 ? await this.#client.describeVolumes({ volumeIds, signal: this.#signal }) : [];
    const bad = volumes.filter((v) => v.State === 'error');
    results.push({
      id: 'volume-state',
      title: 'Every volume is healthy',
      status: bad.length > 0 ? 'fail' : 'pass',
      detail:
        bad.length > 0
          ? `volume(s) in error state: ${bad.map((v) => v.VolumeId).join(', ')}`
          : `all ${volumes.length} volume(s) are ${[...new Set(volumes.map((v) => v.State))].join('/') || 'listed'}`,
      ...(bad.length > 0 ? { remedy: 'repair or detach the failed volume' } : {}),
    });
    const encrypted = volumes.filter((v) => v.Encrypted);
    results.push({
      id: 'encrypted-volumes',
      title: 'Encrypted volumes can be read',
      status: 'pass',
      detail:
        encrypted.length > 0
          ? `${encrypted.length} encrypted volume(s) (${encrypted.map((v) => `${v.VolumeId} key ${v.KmsKeyId ?? 'aws/ebs'}`).join(', ')}): the EBS direct APIs decrypt them when the credentials may use the KMS key`
          : 'no encrypted volume',
      ...(encrypted.length > 0
        ? {
            remedy:
              'allow kms:Decrypt, kms:DescribeKey and kms:CreateGrant on the volumes’ keys (see README, Permissions)',
          }
        : {}),
    });
    const previous = await this.#client.describeSnapshots({
      filters: [{ Name: `tag:${SNAPSHOT_TAGS.host}`, Values: [host.id] }],
      signal: this.#signal,
    });
    const archived = previous.filter((s) => s.StorageTier === 'archive');
    results.push({
      id: 'base-snapshot-not-archived',
      title: 'Snapshots of earlier syncs are readable (not archived)',
      status: archived.length > 0 ? 'warn' : 'pass',
      detail:
        archived.length > 0
          ? `archived snapshot(s) ${archived.map((s) => s.SnapshotId).join(', ')} cannot be read by the EBS direct APIs: an incremental from them is impossible, the next sync is full`
          : `${previous.length} snapshot(s) of earlier syncs, none archived`,
      ...(archived.length > 0
        ? { remedy: 'restore the snapshot to the standard tier, or accept a full sync' }
        : {}),
    });
    const pending = previous.filter((s) => s.State === 'pending');
    results.push({
      id: 'leftover-snapshots',
      title: 'No snapshot of this host is still being taken',
      status: pending.length > 0 ? 'warn' : 'pass',
      detail:
        pending.length > 0
          ? `snapshot(s) still pending: ${pending.map((s) => s.SnapshotId).join(', ')} (an earlier sync may have been interrupted)`
          : 'none pending',
      ...(pending.length > 0
        ? { remedy: 'wait for them to complete, then delete the ones no sync uses' }
        : {}),
    });
    return results;
  }

  async createSnapshot(host: Host, options: CreateSnapshotOptions = {}): Promise<SnapshotRef> {
    const signal = anySignal(this.#signal, options.signal);
    const [instance] = await this.#client.describeInstances({ instanceIds: [host.id], signal });
    if (instance === undefined) {
      throw new SyncproxyError(`instance ${host.id} not found in ${this.#config.region}`, {
        code: 'not-found',
        retryable: false,
      });
    }
    const attached = (instance.BlockDeviceMappings ?? []).flatMap((m) =>
      m.Ebs?.VolumeId ? [{ volumeId: m.Ebs.VolumeId, boot: m.DeviceName === instance.RootDeviceName }] : [],
    );
    const wanted = new Set(host.disks.map((d) => d.id));
    const missing = [...wanted].filter((id) => !attached.some((a) => a.volumeId === id));
    if (missing.length > 0) {
      throw new SyncproxyError(
        `snapshot refused: volume(s) ${missing.join(', ')} are no longer attached to ${host.id} (refresh the host list)`,
        { code: 'not-found', retryable: false, details: { missing } },
      );
    }
    const createdAt = new Date(this.#clock.now()).toISOString();
    const tags: Tag[] = [
      { Key: SNAPSHOT_TAGS.managed, Value: 'true' },
      { Key: SNAPSHOT_TAGS.host, Value: host.id },
      { Key: SNAPSHOT_TAGS.createdAt, Value: createdAt },
      { Key: SNAPSHOT_TAGS.platform, Value: this.#name },
      ...(options.label ? [{ Key: 'Name', Value: options.label }] : []),
    ];
    const infos = await this.#client.createSnapshots({
      instanceId: host.id,
      excludeBootVolume: attached.some((a) => a.boot && !wanted.has(a.volumeId)),
      excludeDataVolumeIds: attached.filter((a) => !a.boot && !wanted.has(a.volumeId)).map((a) => a.volumeId),
      description: options.label ?? `syncproxy snapshot of ${host.id}`,
      tags,
      signal,
    });
    const snapshotIds = infos.flatMap((s) => (s.SnapshotId ? [s.SnapshotId] : []));
    try {
      if (snapshotIds.length !== wanted.size) {
        throw new SyncproxyError(
          `CreateSnapshots for ${host.id} returned ${snapshotIds.length} snapshot(s) for ${wanted.size} volume(s)`,
          { code: 'protocol', retryable: false },
        );
      }
      const completed = await this.#waitCompleted(snapshotIds, signal);
      const disks: DiskSnapshotRef[] = host.disks.map((disk) => {
        const snapshot = completed.find((s) => s.VolumeId === disk.id);
        if (snapshot?.SnapshotId === undefined) {
          throw new SyncproxyError(
            `CreateSnapshots for ${host.id} returned no snapshot of volume ${disk.id}`,
            {
              code: 'protocol',
              retryable: false,
            },
          );
        }
        const data: AwsDiskSnapshotData = { snapshotId: snapshot.SnapshotId, volumeId: disk.id };
        return { diskId: disk.id, sizeBytes: (snapshot.VolumeSize ?? 0) * GIB, data: { ...data } };
      });
      return {
        id: `${host.id}/${[...snapshotIds].sort().join('+')}`,
        platform: 'aws',
        hostId: host.id,
        createdAt,
        disks,
        data: { region: this.#config.region, snapshotIds },
      };
    } catch (error) {
      // Never leave a half-made snapshot behind; the tags are the safety net if this fails too.
      await this.#deleteQuietly(snapshotIds);
      throw error;
    }
  }

  async openReader(disk: Disk, options: OpenReaderOptions) {
    const target = diskSnapshot(options.snapshot, disk.id, 'snapshot');
    const warnings: SyncWarning[] = [];
    let base: AwsDiskSnapshotData | undefined;
    if (options.base !== undefined) {
      const ref = options.base.disks.find((d) => d.diskId === disk.id);
      if (ref === undefined) {
        warnings.push({
          code: 'full-read',
          message: `volume ${disk.id} is not in base snapshot ${options.base.id} (attached since): reading it in full`,
        });
      } else base = readDiskData(ref, 'base');
    }
    const ids = base ? [target.data.snapshotId, base.snapshotId] : [target.data.snapshotId];
    const found = await this.#client.describeSnapshots({
      snapshotIds: ids,
      signal: options.signal ?? this.#signal,
    });
    for (const id of ids) {
      const snapshot = found.find((s) => s.SnapshotId === id);
      const role = id === target.data.snapshotId ? 'snapshot' : 'base snapshot';
      if (snapshot === undefined) {
        throw new SyncproxyError(`${role} ${id} of volume ${disk.id} not found`, {
          code: 'not-found',
          retryable: false,
        });
      }
      assertReadable(snapshot, role);
    }
    return new EbsSnapshotReader({
      client: this.#client,
      snapshotId: target.data.snapshotId,
      ...(base ? { baseSnapshotId: base.snapshotId } : {}),
      diskSizeBytes: target.sizeBytes,
      clock: this.#clock,
      warnings,
      ...this.#reader,
    });
  }

  async deleteSnapshot(snapshot: SnapshotRef): Promise<void> {
    const ids = snapshot.disks.map((d) => readDiskData(d, 'snapshot').snapshotId);
    const failures: unknown[] = [];
    for (const id of ids) {
      try {
        await this.#client.deleteSnapshot(id, this.#signal);
      } catch (error) {
        failures.push(error);
      }
    }
    if (failures.length > 0) throw failures[0];
  }

  /** The snapshots tagged `syncproxy:managed=true`: see `sweepSnapshots` in sweep.ts. */
  sweep(options?: SweepOptions): Promise<SweepReport> {
    return sweepSnapshots(this.#client, this.#logger, options, this.#signal);
  }

  async close(): Promise<void> {
    this.#client.close();
  }

  async #waitCompleted(snapshotIds: string[], signal: AbortSignal | undefined): Promise<Snapshot[]> {
    const started = this.#clock.now();
    let delay = this.#wait.initialDelayMs;
    while (true) {
      const snapshots = await this.#client.describeSnapshots({ snapshotIds, signal });
      const failed = snapshots.filter((s) => s.State === 'error');
      if (failed.length > 0) {
        throw new SyncproxyError(
          `snapshot(s) ${failed.map((s) => `${s.SnapshotId} (${s.StateMessage ?? 'error'})`).join(', ')} failed`,
          { code: 'platform', retryable: true },
        );
      }
      if (snapshots.length === snapshotIds.length && snapshots.every((s) => s.State === 'completed'))
        return snapshots;
      const elapsed = this.#clock.now() - started;
      if (elapsed >= this.#wait.timeoutMs) {
        const progress = snapshots
          .map((s) => `${s.SnapshotId} ${s.State} ${s.Progress ?? ''}`.trim())
          .join(', ');
        throw new SyncproxyError(
          `snapshots not completed after ${Math.round(elapsed / 1000)} s (${progress}); they were deleted`,
          { code: 'timeout', retryable: true },
        );
      }
      this.#logger.debug({ snapshotIds, delayMs: delay }, 'waiting for snapshots');
      await sleep(this.#clock, Math.min(delay, this.#wait.timeoutMs - elapsed), signal, 'snapshot wait');
      if (signal?.aborted) throw abortError(signal, 'createSnapshot');
      delay = Math.min(this.#wait.maxDelayMs, Math.max(1, Math.round(delay * 1.5)));
    }
  }

  async #deleteQuietly(snapshotIds: string[]): Promise<void> {
    for (const id of snapshotIds) {
      try {
        await this.#client.deleteSnapshot(id);
      } catch (error) {
        this.#logger.warn(
          {
            snapshotId: id,
            error: (error as Error)?.message,
          },
          'could not delete a snapshot after a failed createSnapshot',
        );
      }
    }
  }
}

/** Instances a product lists: not terminated or being terminated. */
function isListed(instance: Instance): boolean {
  const state = instance.State?.Name;
  return state !== 'terminated' && state !== 'shutting-down';
}

function ebsVolumeIds(instance: Instance): string[] {
  return (instance.BlockDeviceMappings ?? []).flatMap((m) => (m.Ebs?.VolumeId ? [m.Ebs.VolumeId] : []));
}

const POWER: Record<string, Host['powerState']> = {
  pending: 'on',
  running: 'on',
  stopping: 'on',
  stopped: 'off',
};

function toHost(instance: Instance, volumes: Map<string, Volume>): Host {
  const id = instance.InstanceId ?? 'unknown';
  const name = instance.Tags?.find((t) => t.Key === 'Name')?.Value || id;
  const disks: Disk[] = (instance.BlockDeviceMappings ?? []).flatMap((mapping) => {
    const volumeId = mapping.Ebs?.VolumeId;
    if (!volumeId) return [];
    const volume = volumes.get(volumeId);
    const attributes: Record<string, string | number | boolean> = {};
    if (volume?.VolumeType) attributes.volumeType = volume.VolumeType;
    if (volume?.Encrypted !== undefined) attributes.encrypted = volume.Encrypted;
    if (volume?.KmsKeyId) attributes.kmsKeyId = volume.KmsKeyId;
    if (volume?.AvailabilityZone) attributes.availabilityZone = volume.AvailabilityZone;
    return [
      {
        id: volumeId,
        name: volume?.Tags?.find((t) => t.Key === 'Name')?.Value || volumeId,
        sizeBytes: (volume?.Size ?? 0) * GIB,
        ...(mapping.DeviceName ? { device: mapping.DeviceName } : {}),
        boot: mapping.DeviceName !== undefined && mapping.DeviceName === instance.RootDeviceName,
        attributes,
      },
    ];
  });
  const attributes: Record<string, string | number | boolean> = {};
  if (instance.InstanceType) attributes.instanceType = instance.InstanceType;
  if (instance.Placement?.AvailabilityZone) attributes.availabilityZone = instance.Placement.AvailabilityZone;
  if (instance.State?.Name) attributes.state = instance.State.Name;
  return {
    id,
    name,
    powerState: POWER[instance.State?.Name ?? ''] ?? 'unknown',
    ...(instance.PlatformDetails ? { os: instance.PlatformDetails } : {}),
    disks,
    attributes,
  };
}

function diskSnapshot(
  snapshot: SnapshotRef,
  diskId: string,
  role: string,
): { sizeBytes: number; data: AwsDiskSnapshotData } {
  const ref = diskSnapshotOf(snapshot, diskId, { role, noun: 'volume' });
  return { sizeBytes: ref.sizeBytes, data: readDiskData(ref, role) };
}

function readDiskData(ref: DiskSnapshotRef, role: string): AwsDiskSnapshotData {
  const { snapshotId, volumeId } = ref.data as Partial<AwsDiskSnapshotData>;
  if (typeof snapshotId !== 'string' || !/^snap-[0-9a-f]+$/.test(snapshotId)) {
    throw new SyncproxyError(
      `${role} of volume ${ref.diskId} carries no EBS snapshot id (not made by this connector?)`,
      {
        code: 'config',
        retryable: false,
      },
    );
  }
  return { snapshotId, volumeId: typeof volumeId === 'string' ? volumeId : ref.diskId };
}

/** The EBS direct APIs read only completed, non-archived snapshots (EBS direct FAQ). */
function assertReadable(snapshot: Snapshot, role: string): void {
  if (snapshot.StorageTier === 'archive') {
    throw new SyncproxyError(
      `${role} ${snapshot.SnapshotId} is archived and the EBS direct APIs cannot read it (restore it to the standard tier${role === 'base snapshot' ? ', or run a full sync' : ''})`,
      { code: 'unsupported', retryable: false },
    );
  }
  if (snapshot.State !== 'completed') {
    throw new SyncproxyError(
      `${role} ${snapshot.SnapshotId} is ${snapshot.State ?? 'in an unknown state'}${snapshot.Progress ? ` (${snapshot.Progress})` : ''}: the EBS direct APIs read completed snapshots only`,
      { code: 'conflict', retryable: snapshot.State === 'pending' },
    );
  }
}

function anySignal(...signals: Array<AbortSignal | undefined>): AbortSignal | undefined {
  const present = signals.filter((s): s is AbortSignal => s !== undefined);
  if (present.length <= 1) return present[0];
  return AbortSignal.any(present);
}
