import { randomUUID } from 'node:crypto';
import {
  abortError,
  type ChangedBlockReader,
  type ConnectorSession,
  type CreateSnapshotOptions,
  type Disk,
  type DiskSnapshotRef,
  type Host,
  type OpenReaderOptions,
  type PlatformStatus,
  type PrecheckResult,
  type ResolvedConnectorContext,
  type SnapshotRef,
  type SweepOptions,
  type SweepReport,
  SyncproxyError,
} from '@syncproxy/core';
import { RbdCli } from './ceph/rbd-cli.js';
import { openRbdReader } from './ceph/rbd-reader.js';
import type { CephClusterConfig, OpenstackCephConfig } from './config.js';
import { type CinderVolume, type NovaServer, OpenstackClient } from './openstack/client.js';
import { SNAPSHOT_METADATA, sweepSnapshots } from './sweep.js';

export const PLATFORM = 'openstack-ceph';
const GiB = 1024 ** 3;

/** What a SnapshotRef holds per disk: enough to find the RBD snapshot from any proxy. */
interface DiskSnapshotData {
  cinderSnapshotId: string;
  cluster: number;
  pool: string;
  image: string;
}

/** Where Cinder keeps a volume: `volume-<name_id or id>` in the pool of the cluster serving its type. */
interface Placement {
  cluster: number;
  pool: string;
  image: string;
}

export interface SessionOptions {
  /** Waits between snapshot status polls, growing from the first to the last. */
  pollDelaysMs?: readonly number[];
  /** The clock token expiry is judged by (tests inject one). */
  now?: () => number;
}

export async function openSession(
  config: OpenstackCephConfig,
  context: ResolvedConnectorContext,
  options: SessionOptions = {},
): Promise<ConnectorSession> {
  const client = new OpenstackClient({
    authUrl: config.authUrl,
    userDomainId: config.userDomainId,
    user: config.user,
    password: config.password,
    projectDomainId: config.projectDomainId,
    projectName: config.projectName,
    region: config.region,
    interface: config.interface,
    redactor: context.redactor,
    logger: context.logger,
    ...(context.dispatcher ? { dispatcher: context.dispatcher } : {}),
    ...(config.caCertificate ? { caCertificate: config.caCertificate } : {}),
    ...(context.httpTimeoutSec ? { httpTimeoutSec: context.httpTimeoutSec } : {}),
    ...(context.signal ? { signal: context.signal } : {}),
    ...(options.now ? { now: options.now } : {}),
  });
  const clis: RbdCli[] = [];
  try {
    for (const cluster of config.cephClusters) {
      clis.push(
        await RbdCli.create({
          monitors: cluster.monitors,
          cephx: cluster.cephx,
          user: cluster.user,
          clusterName: cluster.clusterName,
          rbdPath: config.rbdPath,
          logger: context.logger,
          redactor: context.redactor,
          ...(cluster.keyring !== undefined ? { keyring: cluster.keyring } : {}),
          ...(context.httpTimeoutSec ? { opTimeoutSec: context.httpTimeoutSec } : {}),
        }),
      );
    }
  } catch (error) {
    await Promise.all(clis.map((c) => c.close()));
    await client.close();
    throw error;
  }
  return new OpenstackCephSession(
    config,
    context,
    client,
    clis,
    options.pollDelaysMs ?? [0, 500, 1000, 2000, 5000],
  );
}

class OpenstackCephSession implements ConnectorSession {
  constructor(
    private readonly config: OpenstackCephConfig,
    private readonly context: ResolvedConnectorContext,
    private readonly client: OpenstackClient,
    private readonly clis: RbdCli[],
    private readonly pollDelaysMs: readonly number[],
  ) {}

  async verify(): Promise<PlatformStatus> {
    await this.client.authenticate(true);
    let hostCount = 0;
    for await (const _ of this.client.listServers()) hostCount++;
    // Each cluster must answer with the configured user and key.
    await Promise.all(
      this.config.cephClusters.map((cluster, i) =>
        this.clis[i]!.run(['pool', 'stats', '--format', 'json', cluster.pool], {
          what: `rbd pool stats ${cluster.pool} (cluster ${cluster.clusterName})`,
          ...(this.context.signal ? { signal: this.context.signal } : {}),
        }),
      ),
    );
    return {
      status: 'normal',
      hostCount,
      platformVersion: 'OpenStack (Keystone v3, Nova, Cinder) + Ceph RBD',
    };
  }

  /** The cluster serving a volume type: the one listing it, else the one that lists no types. */
  private clusterFor(volumeType: string | null): number | undefined {
    const clusters = this.config.cephClusters;
    const named = clusters.findIndex((c) => volumeType !== null && c.volumeTypes.includes(volumeType));
    if (named !== -1) return named;
    const catchAll = clusters.findIndex((c) => c.volumeTypes.length === 0);
    return catchAll === -1 ? undefined : catchAll;
  }

  private placement(volume: CinderVolume): Placement | undefined {
    const cluster = this.clusterFor(volume.volume_type);
    if (cluster === undefined) return undefined;
    const nameId = volume['os-vol-mig-status-attr:name_id'] || volume.id;
    return { cluster, pool: this.config.cephClusters[cluster]!.pool, image: `volume-${nameId}` };
  }

  /** Image sizes per cluster and pool, from one `rbd ls -l` each: Cinder's GiB are rounded, RBD sizes exact. */
  private async imageSizes(clusters: Set<number>): Promise<Map<string, number>> {
    const sizes = new Map<string, number>();
    await Promise.all(
      [...clusters].map(async (i) => {
        const cluster = this.config.cephClusters[i]!;
        const text = await this.clis[i]!.run(['ls', '-l', '--format', 'json', cluster.pool], {
          what: `rbd ls ${cluster.pool} (cluster ${cluster.clusterName})`,
          maxOutputBytes: 256 * 1024 * 1024,
          ...(this.context.signal ? { signal: this.context.signal } : {}),
        });
        const list = JSON.parse(text === '' ? '[]' : text) as Array<{
          image?: string;
          size?: number;
          snapshot?: string;
        }>;
        for (const entry of list) {
          if (
            entry.snapshot === undefined &&
            typeof entry.image === 'string' &&
            typeof entry.size === 'number'
          ) {
            sizes.set(`${i}/${entry.image}`, entry.size);
          }
        }
      }),
    );
    return sizes;
  }

  async listHosts(): Promise<Host[]> {
    const servers: NovaServer[] = [];
    for await (const server of this.client.listServers()) servers.push(server);
    const volumes = new Map<string, CinderVolume>();
    for await (const volume of this.client.listVolumes()) volumes.set(volume.id, volume);
    const placements = new Map<string, Placement>();
    for (const volume of volumes.values()) {
      const p = this.placement(volume);
      if (p) placements.set(volume.id, p);
    }
    const sizes = await this.imageSizes(new Set([...placements.values()].map((p) => p.cluster)));
    return servers.map((server) => {
      const attached = server['os-extended-volumes:volumes_attached'] ?? [];
      const disks: Disk[] = [];
      for (const { id } of attached) {
        const volume = volumes.get(id);
        if (!volume) continue;
        const placement = placements.get(id);
        const exact = placement ? sizes.get(`${placement.cluster}/${placement.image}`) : undefined;
        const attachment = volume.attachments?.find((a) => a.server_id === server.id);
        const attributes: Record<string, string | number | boolean> = {
          volumeType: volume.volume_type ?? '',
          onCeph: placement !== undefined && exact !== undefined,
        };
        if (placement) {
          attributes.cephCluster = this.config.cephClusters[placement.cluster]!.clusterName;
          attributes.pool = placement.pool;
          attributes.image = placement.image;
        }
        disks.push({
          id,
          name: volume.name ?? id,
          sizeBytes: exact ?? volume.size * GiB,
          ...(attachment?.device ? { device: attachment.device } : {}),
          boot: volume.bootable === true || volume.bootable === 'true',
          attributes,
        });
      }
      const bootsFromImage = typeof server.image === 'object' && server.image !== null && !!server.image.id;
      return {
        id: server.id,
        name: server.name,
        powerState: powerState(server),
        disks,
        attributes: { status: server.status, bootsFromImage },
      };
    });
  }

  async prechecks(host: Host): Promise<PrecheckResult[]> {
    const offCeph = host.disks.filter((d) => d.attributes?.onCeph !== true);
    const checks: PrecheckResult[] = [
      {
        id: 'volumes-on-ceph',
        title: '1. Every volume is an RBD image of a configured Ceph cluster',
        status: offCeph.length === 0 ? 'pass' : 'fail',
        detail:
          offCeph.length === 0
            ? `${host.disks.length} volume(s), all found in their Ceph pools`
            : `not found on a configured cluster: ${offCeph.map((d) => `${d.id} (type ${d.attributes?.volumeType || 'none'})`).join(', ')}`,
        ...(offCeph.length > 0
          ? {
              remedy:
                'add the Ceph cluster that serves these volume types, or list the types on the right cluster',
            }
          : {}),
      },
      {
        id: 'root-disk-is-volume',
        title: '2. The instance boots from a volume',
        status: host.attributes?.bootsFromImage === true ? 'warn' : 'pass',
        detail:
          host.attributes?.bootsFromImage === true
            ? 'the instance boots from an image: its root disk is ephemeral, not a Cinder volume, and is not synced'
            : 'the root disk is a Cinder volume',
        ...(host.attributes?.bootsFromImage === true
          ? { remedy: 'rebuild the instance from a volume, or sync its data volumes only' }
          : {}),
      },
      {
        id: 'has-volumes',
        title: '3. The instance has volumes to sync',
        status: host.disks.length > 0 ? 'pass' : 'fail',
        detail: `${host.disks.length} attached volume(s)`,
        ...(host.disks.length === 0 ? { remedy: 'attach the volumes to sync to the instance' } : {}),
      },
    ];
    return checks;
  }

  async createSnapshot(host: Host, options: CreateSnapshotOptions = {}): Promise<SnapshotRef> {
    const volumes = new Map<string, CinderVolume>();
    for await (const volume of this.client.listVolumes()) volumes.set(volume.id, volume);
    const planned: Array<{ disk: Disk; placement: Placement }> = [];
    for (const disk of host.disks) {
      const volume = volumes.get(disk.id);
      const placement = volume ? this.placement(volume) : undefined;
      if (!volume || !placement) {
        throw new SyncproxyError(
          `volume ${disk.id} of instance ${host.id} is not on a configured Ceph cluster`,
          {
            code: volume ? 'unsupported' : 'not-found',
            retryable: false,
          },
        );
      }
      planned.push({ disk, placement });
    }
    const name = options.label ?? `syncproxy ${new Date().toISOString()}`;
    const created: string[] = [];
    const disks: DiskSnapshotRef[] = [];
    try {
      // Cinder snapshots one volume per call: started together, they are as close in time as the API allows.
      const snapshots = await Promise.all(
        planned.map(async ({ disk }) => {
          const snapshot = await this.client.createSnapshot(disk.id, name, {
            [SNAPSHOT_METADATA.managed]: 'true',
            [SNAPSHOT_METADATA.host]: host.id,
          });
          created.push(snapshot.id);
          return snapshot;
        }),
      );
      await Promise.all(snapshots.map((s) => this.waitForSnapshot(s.id, options.signal)));
      for (const [i, { disk, placement }] of planned.entries()) {
        const data: DiskSnapshotData = {
          cinderSnapshotId: snapshots[i]!.id,
          cluster: placement.cluster,
          pool: placement.pool,
          image: placement.image,
        };
        disks.push({ diskId: disk.id, sizeBytes: disk.sizeBytes, data: { ...data } });
      }
    } catch (error) {
      await Promise.allSettled(created.map((id) => this.client.deleteSnapshot(id)));
      throw error;
    }
    return {
      id: randomUUID(),
      platform: PLATFORM,
      hostId: host.id,
      createdAt: new Date().toISOString(),
      disks,
    };
  }

  private async waitForSnapshot(id: string, signal?: AbortSignal): Promise<void> {
    const deadline = Date.now() + this.config.snapshotTimeoutSec * 1000;
    for (let attempt = 0; ; attempt++) {
      await this.delay(this.pollDelaysMs[Math.min(attempt, this.pollDelaysMs.length - 1)] ?? 1000, signal);
      const snapshot = await this.client.getSnapshot(id);
      if (snapshot.status === 'available') return;
      if (snapshot.status === 'error') {
        throw new SyncproxyError(
          `Cinder snapshot ${id} of volume ${snapshot.volume_id} went to status error`,
          {
            code: 'platform',
            retryable: true,
          },
        );
      }
      if (Date.now() > deadline) {
        throw new SyncproxyError(
          `Cinder snapshot ${id} still ${snapshot.status} after ${this.config.snapshotTimeoutSec} s (raise snapshotTimeoutSec)`,
          { code: 'timeout', retryable: true },
        );
      }
    }
  }

  private delay(ms: number, signal?: AbortSignal): Promise<void> {
    const abort = signal ?? this.context.signal;
    if (abort?.aborted) return Promise.reject(abortError(abort, 'waiting for a Cinder snapshot'));
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        clearTimeout(timer);
        reject(abortError(abort, 'waiting for a Cinder snapshot'));
      };
      const timer = setTimeout(() => {
        abort?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      abort?.addEventListener('abort', onAbort, { once: true });
    });
  }

  async openReader(disk: Disk, options: OpenReaderOptions): Promise<ChangedBlockReader> {
    const entry = snapshotData(options.snapshot, disk.id);
    const base = options.base ? snapshotData(options.base, disk.id) : undefined;
    if (base && (base.cluster !== entry.cluster || base.pool !== entry.pool || base.image !== entry.image)) {
      throw new SyncproxyError(
        `the base snapshot of volume ${disk.id} is of ${base.pool}/${base.image}, the snapshot of ${entry.pool}/${entry.image} (the volume moved: run a full sync)`,
        { code: 'cbt-reset', retryable: false },
      );
    }
    const cli = this.clis[entry.cluster];
    const cluster: CephClusterConfig | undefined = this.config.cephClusters[entry.cluster];
    if (!cli || !cluster) {
      throw new SyncproxyError(
        `the snapshot names Ceph cluster ${entry.cluster}, which this platform does not have`,
        {
          code: 'config',
          retryable: false,
        },
      );
    }
    const signal = options.signal ?? this.context.signal;
    return openRbdReader({
      cli,
      pool: entry.pool,
      image: entry.image,
      snapshot: `snapshot-${entry.cinderSnapshotId}`,
      mode: cluster.incrementalMode === 'rbd-du' ? 'whole-object' : 'exact',
      logger: this.context.logger,
      ...(base ? { fromSnapshot: `snapshot-${base.cinderSnapshotId}` } : {}),
      ...(signal ? { signal } : {}),
    });
  }

  async deleteSnapshot(snapshot: SnapshotRef): Promise<void> {
    const ids = snapshot.disks.map((d) => snapshotData(snapshot, d.diskId).cinderSnapshotId);
    await Promise.all(ids.map((id) => this.removeCinderSnapshot(id)));
  }

  /** The Cinder snapshots tagged `syncproxy:managed=true`, with their RBD snapshots: see `sweepSnapshots` in sweep.ts. */
  sweep(options?: SweepOptions): Promise<SweepReport> {
    return sweepSnapshots(
      {
        listManaged: () => this.client.listSnapshots({ [SNAPSHOT_METADATA.managed]: 'true' }),
        remove: (id) => this.removeCinderSnapshot(id),
        logger: this.context.logger,
      },
      options,
    );
  }

  /** Deletes a Cinder snapshot and waits until it is gone; one already gone counts as deleted. */
  private async removeCinderSnapshot(id: string): Promise<void> {
    try {
      await this.client.deleteSnapshot(id);
    } catch (error) {
      if (SyncproxyError.hasCode(error, 'not-found')) return;
      throw error;
    }
    await this.waitForDeletion(id);
  }

  private async waitForDeletion(id: string): Promise<void> {
    const deadline = Date.now() + this.config.snapshotTimeoutSec * 1000;
    for (let attempt = 0; ; attempt++) {
      await this.delay(this.pollDelaysMs[Math.min(attempt, this.pollDelaysMs.length - 1)] ?? 1000);
      try {
        const snapshot = await this.client.getSnapshot(id);
        if (snapshot.status === 'error_deleting') {
          throw new SyncproxyError(`Cinder could not delete snapshot ${id} (status error_deleting)`, {
            code: 'platform',
            retryable: true,
          });
        }
      } catch (error) {
        if (SyncproxyError.hasCode(error, 'not-found')) return;
        throw error;
      }
      if (Date.now() > deadline) {
        throw new SyncproxyError(
          `Cinder snapshot ${id} still exists ${this.config.snapshotTimeoutSec} s after its deletion`,
          {
            code: 'timeout',
            retryable: true,
          },
        );
      }
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.clis.map((c) => c.close()));
    await this.client.close();
  }
}

function powerState(server: NovaServer): Host['powerState'] {
  const state = server['OS-EXT-STS:vm_state'] ?? server.status.toLowerCase();
  if (state === 'active') return 'on';
  if (state === 'stopped' || state === 'shutoff') return 'off';
  if (state === 'suspended' || state === 'paused') return 'suspended';
  return 'unknown';
}

function snapshotData(snapshot: SnapshotRef, diskId: string): DiskSnapshotData {
  const entry = snapshot.disks.find((d) => d.diskId === diskId);
  const data = entry?.data as Partial<DiskSnapshotData> | undefined;
  if (
    !data ||
    typeof data.cinderSnapshotId !== 'string' ||
    typeof data.cluster !== 'number' ||
    typeof data.pool !== 'string' ||
    typeof data.image !== 'string'
  ) {
    throw new SyncproxyError(`snapshot ${snapshot.id} has no usable entry for volume ${diskId}`, {
      code: 'not-found',
      retryable: false,
    });
  }
  return data as DiskSnapshotData;
}
