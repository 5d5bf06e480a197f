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
import { novaSnapshotName, type RbdManagedSnapshot, SNAPSHOT_METADATA, sweepSnapshots } from './sweep.js';

export const PLATFORM = 'openstack-ceph';
const GiB = 1024 ** 3;

/**
 * What a SnapshotRef holds per disk: enough to find the RBD snapshot from any
 * proxy. A Cinder volume's is the Cinder snapshot (RBD `snapshot-<id>`); a Nova
 * root disk's is an RBD snapshot this connector made itself (`rbdSnapshot`).
 */
type DiskSnapshotData =
  | { cinderSnapshotId: string; cluster: number; pool: string; image: string }
  | { rbdSnapshot: string; cluster: number; pool: string; image: string };

/** The disk attribute that marks the root disk of an image-booted instance (Nova `images_type=rbd`). */
const NOVA_ROOT_DISK = 'nova-rbd';

/** Where Cinder keeps a volume: `volume-<name_id or id>` in the pool of the cluster serving its type. */
interface Placement {
  cluster: number;
  pool: string;
  image: string;
}

export interface SessionOptions {
  /** Waits between snapshot status polls, growing from the first to the last. */
  pollDelaysMs?: readonly number[];
  /** The clock token expiry is judged by, and the time in RBD snapshot names (tests inject one). */
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
    options.now ?? Date.now,
  );
}

class OpenstackCephSession implements ConnectorSession {
  constructor(
    private readonly config: OpenstackCephConfig,
    private readonly context: ResolvedConnectorContext,
    private readonly client: OpenstackClient,
    private readonly clis: RbdCli[],
    private readonly pollDelaysMs: readonly number[],
    private readonly now: () => number,
  ) {}

  /** Why a cluster's Nova pool had no images at the last listing (missing, not readable), by cluster. */
  private readonly novaPoolProblems = new Map<number, string>();

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
        const pool = this.config.cephClusters[i]!.pool;
        for (const [image, size] of await this.listImages(i, pool)) sizes.set(`${i}/${image}`, size);
      }),
    );
    return sizes;
  }

  /**
   * Where the root disks of image-booted instances are: for each cluster, the
   * images of its Nova pool, keyed `<image>` -> `{cluster, size}` (the first
   * cluster holding a name wins).
   */
  private async novaImages(): Promise<Map<string, { cluster: number; sizeBytes: number }>> {
    const found = new Map<string, { cluster: number; sizeBytes: number }>();
    const lists = await Promise.all(this.config.cephClusters.map((_, i) => this.listNovaPool(i)));
    lists.forEach((images, i) => {
      for (const [image, sizeBytes] of images) {
        if (!found.has(image)) found.set(image, { cluster: i, sizeBytes });
      }
    });
    return found;
  }

  /**
   * The images of a cluster's Nova pool. A pool that does not exist (a Nova
   * that keeps no disks on this cluster) or that the user may not read (so it
   * cannot hold a snapshot of ours either) has none: Cinder volumes are still
   * synced, and the precheck of an image-booted instance says why its root
   * disk is not. Other failures surface.
   */
  private async listNovaPool(i: number): Promise<Map<string, number>> {
    const cluster = this.config.cephClusters[i]!;
    try {
      const images = await this.listImages(i, cluster.novaPool);
      this.novaPoolProblems.delete(i);
      return images;
    } catch (error) {
      const code = SyncproxyError.isInstance(error) ? error.code : undefined;
      if (code !== 'not-found' && code !== 'permission') throw error;
      const problem = code === 'not-found' ? 'does not exist' : 'is not readable by the Ceph user';
      this.novaPoolProblems.set(i, `pool ${cluster.novaPool} of cluster ${cluster.clusterName} ${problem}`);
      this.context.logger.debug(
        { cluster: cluster.clusterName, pool: cluster.novaPool, code },
        'no root disks in this Nova pool',
      );
      return new Map<string, number>();
    }
  }

  /** `rbd ls -l` of a pool: image name -> exact size (snapshot rows left out). */
  private async listImages(i: number, pool: string): Promise<Map<string, number>> {
    const cluster = this.config.cephClusters[i]!;
    const sizes = new Map<string, number>();
    const text = await this.clis[i]!.run(['ls', '-l', '--format', 'json', pool], {
      what: `rbd ls ${pool} (cluster ${cluster.clusterName})`,
      maxOutputBytes: 256 * 1024 * 1024,
      ...(this.context.signal ? { signal: this.context.signal } : {}),
    });
    const list = JSON.parse(text === '' ? '[]' : text) as Array<{
      image?: string;
      size?: number;
      snapshot?: string;
    }>;
    for (const entry of list) {
      if (entry.snapshot === undefined && typeof entry.image === 'string' && typeof entry.size === 'number') {
        sizes.set(entry.image, entry.size);
      }
    }
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
    const novaImages = servers.some(bootsFromImage) ? await this.novaImages() : new Map();
    return servers.map((server) => {
      const attached = server['os-extended-volumes:volumes_attached'] ?? [];
      const disks: Disk[] = [];
      const fromImage = bootsFromImage(server);
      // Nova names the root disk of an image-booted instance `<uuid>_disk` in its pool (images_type=rbd).
      const root = fromImage ? novaImages.get(`${server.id}_disk`) : undefined;
      if (root) {
        const cluster = this.config.cephClusters[root.cluster]!;
        disks.push({
          id: `${server.id}_disk`,
          name: `${server.name} root disk`,
          sizeBytes: root.sizeBytes,
          boot: true,
          attributes: {
            rootDisk: NOVA_ROOT_DISK,
            onCeph: true,
            cephCluster: cluster.clusterName,
            cephClusterIndex: root.cluster,
            pool: cluster.novaPool,
            image: `${server.id}_disk`,
            ...(typeof server.flavor?.disk === 'number' ? { flavorDiskGiB: server.flavor.disk } : {}),
          },
        });
      }
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
      return {
        id: server.id,
        name: server.name,
        powerState: powerState(server),
        disks,
        attributes: {
          status: server.status,
          bootsFromImage: fromImage,
          ...(fromImage ? { rootDiskOnCeph: root !== undefined } : {}),
        },
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
      this.rootDiskCheck(host),
      {
        id: 'has-volumes',
        title: '3. The instance has volumes to sync',
        status: host.disks.length > 0 ? 'pass' : 'fail',
        detail: `${host.disks.length} disk(s)`,
        ...(host.disks.length === 0 ? { remedy: 'attach the volumes to sync to the instance' } : {}),
      },
    ];
    return checks;
  }

  /** The root disk: a Cinder volume, or (image-booted) an RBD image in a Nova pool, else not synced. */
  private rootDiskCheck(host: Host): PrecheckResult {
    const title = '2. The root disk is on Ceph';
    if (host.attributes?.bootsFromImage !== true) {
      return { id: 'root-disk-is-volume', title, status: 'pass', detail: 'the root disk is a Cinder volume' };
    }
    const root = host.disks.find((d) => d.attributes?.rootDisk === NOVA_ROOT_DISK);
    if (root) {
      return {
        id: 'root-disk-is-volume',
        title,
        status: 'pass',
        detail: `the instance boots from an image; its root disk is the RBD image ${root.attributes?.pool}/${root.attributes?.image}`,
      };
    }
    const pools = [...new Set(this.config.cephClusters.map((c) => c.novaPool))].join(', ');
    const problems = [...this.novaPoolProblems.values()];
    return {
      id: 'root-disk-is-volume',
      title,
      status: 'warn',
      detail: `the instance boots from an image and no Nova pool (${pools}) holds ${host.id}_disk: its root disk is ephemeral on the compute node and is not synced${problems.length > 0 ? ` (${problems.join('; ')})` : ''}`,
      remedy:
        'set novaPool to the pool of Nova images_rbd_pool (images_type=rbd), rebuild the instance from a volume, or sync its data volumes only',
    };
  }

  /** The Nova root disk a host's disk names, checked against the config (a stale Host must not point elsewhere). */
  private novaPlacement(host: Host, disk: Disk): Placement {
    const cluster = disk.attributes?.cephClusterIndex;
    const config = typeof cluster === 'number' ? this.config.cephClusters[cluster] : undefined;
    if (
      !config ||
      disk.id !== `${host.id}_disk` ||
      disk.attributes?.pool !== config.novaPool ||
      disk.attributes?.image !== disk.id
    ) {
      throw new SyncproxyError(
        `disk ${disk.id} of instance ${host.id} does not name a root disk in a configured Nova pool (list the hosts again)`,
        { code: 'not-found', retryable: false },
      );
    }
    return { cluster: cluster as number, pool: config.novaPool, image: disk.id };
  }

  async createSnapshot(host: Host, options: CreateSnapshotOptions = {}): Promise<SnapshotRef> {
    const nova = host.disks.filter((d) => d.attributes?.rootDisk === NOVA_ROOT_DISK);
    const novaPlanned = nova.map((disk) => ({ disk, placement: this.novaPlacement(host, disk) }));
    const volumes = new Map<string, CinderVolume>();
    for await (const volume of this.client.listVolumes()) volumes.set(volume.id, volume);
    const planned: Array<{ disk: Disk; placement: Placement }> = [];
    for (const disk of host.disks) {
      if (disk.attributes?.rootDisk === NOVA_ROOT_DISK) continue;
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
    const createdRbd: Array<{ cluster: number; spec: string }> = [];
    const disks: DiskSnapshotRef[] = [];
    try {
      // The RBD snapshot of a root disk is immediate; taken first, it is as close to the Cinder ones as they are to each other.
      const rbdName = novaSnapshotName(this.now());
      const signal = options.signal ?? this.context.signal;
      for (const { disk, placement } of novaPlanned) {
        const spec = `${placement.pool}/${placement.image}@${rbdName}`;
        await this.clis[placement.cluster]!.run(['snap', 'create', '--no-progress', spec], {
          what: `rbd snap create ${spec}`,
          ...(signal ? { signal } : {}),
        });
        createdRbd.push({ cluster: placement.cluster, spec });
        const data: DiskSnapshotData = { rbdSnapshot: rbdName, ...placement };
        disks.push({ diskId: disk.id, sizeBytes: disk.sizeBytes, data: { ...data } });
      }
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
      await Promise.allSettled([
        ...created.map((id) => this.client.deleteSnapshot(id)),
        ...createdRbd.map(({ cluster, spec }) => this.removeRbdSnapshot(cluster, spec)),
      ]);
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
      snapshot: rbdSnapshotOf(entry),
      mode: cluster.incrementalMode === 'rbd-du' ? 'whole-object' : 'exact',
      logger: this.context.logger,
      ...(base ? { fromSnapshot: rbdSnapshotOf(base) } : {}),
      ...(signal ? { signal } : {}),
    });
  }

  async deleteSnapshot(snapshot: SnapshotRef): Promise<void> {
    const entries = snapshot.disks.map((d) => snapshotData(snapshot, d.diskId));
    await Promise.all(
      entries.map((entry) =>
        'rbdSnapshot' in entry
          ? this.removeRbdSnapshot(entry.cluster, `${entry.pool}/${entry.image}@${entry.rbdSnapshot}`)
          : this.removeCinderSnapshot(entry.cinderSnapshotId),
      ),
    );
  }

  /** Removes an RBD snapshot this connector made of a Nova root disk; one already gone counts as removed. */
  private async removeRbdSnapshot(cluster: number, spec: string): Promise<void> {
    const cli = this.clis[cluster];
    if (!cli) {
      throw new SyncproxyError(
        `the snapshot names Ceph cluster ${cluster}, which this platform does not have`,
        {
          code: 'config',
          retryable: false,
        },
      );
    }
    try {
      await cli.run(['snap', 'rm', '--no-progress', spec], { what: `rbd snap rm ${spec}` });
    } catch (error) {
      if (SyncproxyError.hasCode(error, 'not-found')) return;
      throw error;
    }
  }

  /** The RBD snapshots of root disks in each cluster's Nova pool, whatever their name: sweep keeps only its own. */
  private async *listNovaSnapshots(): AsyncGenerator<RbdManagedSnapshot> {
    for (const [i, cluster] of this.config.cephClusters.entries()) {
      const images = await this.listNovaPool(i);
      for (const image of [...images.keys()].filter((name) => name.endsWith('_disk')).sort()) {
        const spec = `${cluster.novaPool}/${image}`;
        let text: string;
        try {
          text = await this.clis[i]!.run(['snap', 'ls', '--format', 'json', spec], {
            what: `rbd snap ls ${spec}`,
            ...(this.context.signal ? { signal: this.context.signal } : {}),
          });
        } catch (error) {
          // The instance was deleted since the listing.
          if (SyncproxyError.hasCode(error, 'not-found')) continue;
          throw error;
        }
        const snaps = JSON.parse(text === '' ? '[]' : text) as Array<{ name?: unknown }>;
        for (const { name } of snaps) {
          if (typeof name !== 'string') continue;
          yield { id: `${spec}@${name}`, name, remove: () => this.removeRbdSnapshot(i, `${spec}@${name}`) };
        }
      }
    }
  }

  /** The Cinder snapshots tagged `syncproxy:managed=true`, with their RBD snapshots: see `sweepSnapshots` in sweep.ts. */
  sweep(options?: SweepOptions): Promise<SweepReport> {
    return sweepSnapshots(
      {
        listManaged: () => this.client.listSnapshots({ [SNAPSHOT_METADATA.managed]: 'true' }),
        remove: (id) => this.removeCinderSnapshot(id),
        listRbdManaged: () => this.listNovaSnapshots(),
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

function bootsFromImage(server: NovaServer): boolean {
  return typeof server.image === 'object' && server.image !== null && !!server.image.id;
}

/** The RBD snapshot behind a disk's entry: Cinder's RBD driver names it `snapshot-<Cinder id>`. */
function rbdSnapshotOf(data: DiskSnapshotData): string {
  return 'rbdSnapshot' in data ? data.rbdSnapshot : `snapshot-${data.cinderSnapshotId}`;
}

function snapshotData(snapshot: SnapshotRef, diskId: string): DiskSnapshotData {
  const entry = snapshot.disks.find((d) => d.diskId === diskId);
  const data = entry?.data as
    | {
        cinderSnapshotId?: unknown;
        rbdSnapshot?: unknown;
        cluster?: unknown;
        pool?: unknown;
        image?: unknown;
      }
    | undefined;
  if (
    !data ||
    (typeof data.cinderSnapshotId !== 'string') === (typeof data.rbdSnapshot !== 'string') ||
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
