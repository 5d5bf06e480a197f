import { randomUUID } from 'node:crypto';
import type { MockHostRef, MockHostSpec, MockPlatform, MockServer } from '@syncproxy/testkit/mock';
import type { OpenstackCephConfigInput } from '../config.js';
import { adminRbd, type MockCephCluster } from './ceph-admin.js';
import { encodeExportDiff } from './export-diff-writer.js';
import { type MockOpenstackState, type MockVolume, openstackRoutes } from './openstack-api.js';
import { loadTestkit } from './peers.js';

export interface MockOpenstackOptions {
  /** The real Ceph the volumes live in (scripts/ceph/up.sh's cluster.json fits). */
  ceph: MockCephCluster;
  /** The form's incremental mode for the cluster. Default `rbd-diff`. */
  incrementalMode?: 'rbd-diff' | 'rbd-du';
  /** Token lifetime. Default 3600 s. */
  tokenTtlSec?: number;
  /** The mock's clock (ms since the epoch). Default Date.now. */
  now?: () => number;
  /** GETs a snapshot stays `creating` for. Default 1. */
  pollsUntilAvailable?: number;
  /** Largest page of servers/volumes. Default 2, so that paging is always exercised. */
  maxPageSize?: number;
  volumeServiceType?: 'block-storage' | 'volumev3';
  /** RBD object size of the images the mock creates. Default 64 KiB: small test disks still span many objects. */
  objectSizeBytes?: number;
  /**
   * Nova's pool (`images_rbd_pool`) in the same Ceph, for instances booted from
   * an image; it must exist and the config's user must be allowed in it.
   * Default: the config leaves `novaPool` to its default.
   */
  novaPool?: string;
}

/** An instance booted from an image, as `createImageBootedHost` makes it. */
export interface MockImageBootedHostSpec {
  name: string;
  /** Size of the root disk's RBD image `<uuid>_disk`. */
  rootDiskBytes: number;
  /** The flavor's root disk. Default: the root disk rounded up to GiB. */
  flavorDiskGiB?: number;
  /**
   * A protected RBD snapshot (`pool/image@snap`, Glance's on a shared Ceph) the
   * root disk is a copy-on-write clone of, as Nova makes it; its size is then
   * the parent's, and `rootDiskBytes` must match it.
   */
  cloneOf?: string;
  /** Cinder volumes attached besides the root disk. */
  volumes?: MockHostSpec['disks'];
}

/** The mock OpenStack: a MockPlatform for the contract suite, and its server and state for other tests. */
export interface MockOpenstack extends MockPlatform {
  readonly server: MockServer<MockOpenstackState>;
  readonly state: MockOpenstackState;
  readonly url: string;
  config(): OpenstackCephConfigInput;
  /**
   * A Nova instance booted from an image with `images_type=rbd`: its root disk
   * is the RBD image `<instance uuid>_disk` in the Nova pool, no Cinder volume.
   * Its disk ids (for writeDisk/readDisk) are `<uuid>_disk` and the volumes'.
   */
  createImageBootedHost(spec: MockImageBootedHostSpec): Promise<MockHostRef>;
}

const VOLUME_TYPE = 'ceph-ssd';

/**
 * Keystone, Nova and Cinder on 127.0.0.1 (the testkit's mock server) whose
 * volumes are RBD images `volume-<id>` in a real Ceph, and whose Cinder
 * snapshots are RBD snapshots `volume-<id>@snapshot-<id>`, as Cinder's RBD
 * driver names them. The connector's data path is therefore real.
 */
export async function startMockOpenstack(options: MockOpenstackOptions): Promise<MockOpenstack> {
  const { ceph } = options;
  const spec = (volumeId: string): string => `${ceph.pool}/volume-${volumeId}`;
  const images = new Set<string>();
  /** Root disks of image-booted instances: disk id (`<uuid>_disk`) -> `pool/<uuid>_disk`. */
  const rootDisks = new Map<string, { spec: string; sizeBytes: number }>();
  const truth = new Map<string, Buffer>();
  const state: MockOpenstackState = {
    projectId: randomUUID().replace(/-/g, ''),
    projectName: 'demo',
    user: 'syncproxy',
    password: `pw-${randomUUID()}`,
    domainId: 'default',
    region: 'RegionOne',
    volumeServiceType: options.volumeServiceType ?? 'block-storage',
    tokens: new Map(),
    tokenTtlSec: options.tokenTtlSec ?? 3600,
    now: options.now ?? Date.now,
    pollsUntilAvailable: options.pollsUntilAvailable ?? 1,
    maxPageSize: options.maxPageSize ?? 2,
    servers: new Map(),
    volumes: new Map(),
    snapshots: new Map(),
    baseUrl: '',
    ceph: {
      createSnapshot: async (volumeId, snapshotId) => {
        await adminRbd(ceph, ['snap', 'create', '--no-progress', `${spec(volumeId)}@snapshot-${snapshotId}`]);
      },
      deleteSnapshot: async (volumeId, snapshotId) => {
        await adminRbd(ceph, ['snap', 'rm', '--no-progress', `${spec(volumeId)}@snapshot-${snapshotId}`]);
      },
    },
  };
  const { startMockServer } = await loadTestkit();
  const server = await startMockServer<MockOpenstackState>({ routes: openstackRoutes(), state });
  state.baseUrl = server.url;

  const volumeOf = (diskId: string): MockVolume => {
    const volume = state.volumes.get(diskId);
    if (!volume) throw new Error(`mock openstack: no volume ${diskId}`);
    return volume;
  };
  /** The RBD image behind a disk id: a Cinder volume's or an image-booted instance's root disk. */
  const imageOf = (diskId: string): { spec: string; sizeBytes: number } => {
    const root = rootDisks.get(diskId);
    if (root) return root;
    const volume = volumeOf(diskId);
    return { spec: spec(volume.id), sizeBytes: volume.sizeBytes };
  };
  const importDiff = async (
    diskId: string,
    record: Parameters<typeof encodeExportDiff>[0]['records'][number],
  ) => {
    const image = imageOf(diskId);
    truth.delete(diskId);
    await adminRbd(
      ceph,
      ['import-diff', '--no-progress', '-', image.spec],
      encodeExportDiff({ version: 1, sizeBytes: image.sizeBytes, records: [record] }),
    );
  };
  const createVolumes = async (
    serverId: string,
    name: string,
    specs: MockHostSpec['disks'],
    firstBootable: boolean,
  ): Promise<{ volumeIds: string[]; disks: MockHostRef['disks'] }> => {
    const disks: MockHostRef['disks'] = [];
    const volumeIds: string[] = [];
    for (const [i, disk] of specs.entries()) {
      const volumeId = randomUUID();
      await adminRbd(ceph, [
        'create',
        '--size',
        `${disk.sizeBytes}B`,
        '--object-size',
        String(options.objectSizeBytes ?? 64 * 1024),
        spec(volumeId),
      ]);
      images.add(volumeId);
      state.volumes.set(volumeId, {
        id: volumeId,
        name: `${name}-disk-${i}`,
        sizeBytes: disk.sizeBytes,
        status: 'in-use',
        volumeType: VOLUME_TYPE,
        serverId,
        // An image-booted instance's root disk is vda; its volumes come after.
        device: `/dev/vd${String.fromCharCode(97 + i + (firstBootable ? 0 : 1))}`,
        bootable: firstBootable && i === 0,
      });
      volumeIds.push(volumeId);
      disks.push({ id: volumeId, sizeBytes: disk.sizeBytes });
    }
    return { volumeIds, disks };
  };

  return {
    server,
    state,
    url: server.url,

    async createHost(hostSpec: MockHostSpec): Promise<MockHostRef> {
      const id = randomUUID();
      const { volumeIds, disks } = await createVolumes(id, hostSpec.name, hostSpec.disks, true);
      state.servers.set(id, { id, name: hostSpec.name, status: 'ACTIVE', volumeIds });
      return { id, name: hostSpec.name, disks };
    },

    async createImageBootedHost(hostSpec: MockImageBootedHostSpec): Promise<MockHostRef> {
      if (options.novaPool === undefined) throw new Error('mock openstack: no novaPool option');
      const id = randomUUID();
      const rootId = `${id}_disk`;
      const rootSpec = `${options.novaPool}/${rootId}`;
      if (hostSpec.cloneOf !== undefined) {
        await adminRbd(ceph, ['clone', hostSpec.cloneOf, rootSpec]);
      } else {
        await adminRbd(ceph, [
          'create',
          '--size',
          `${hostSpec.rootDiskBytes}B`,
          '--object-size',
          String(options.objectSizeBytes ?? 64 * 1024),
          rootSpec,
        ]);
      }
      rootDisks.set(rootId, { spec: rootSpec, sizeBytes: hostSpec.rootDiskBytes });
      const { volumeIds, disks } = await createVolumes(id, hostSpec.name, hostSpec.volumes ?? [], false);
      const diskGiB = hostSpec.flavorDiskGiB ?? Math.ceil(hostSpec.rootDiskBytes / 1024 ** 3);
      state.servers.set(id, {
        id,
        name: hostSpec.name,
        status: 'ACTIVE',
        volumeIds,
        imageId: randomUUID(),
        flavor: { id: `f-${diskGiB}`, name: `m1.disk${diskGiB}`, diskGiB },
      });
      return {
        id,
        name: hostSpec.name,
        disks: [{ id: rootId, sizeBytes: hostSpec.rootDiskBytes }, ...disks],
      };
    },

    config(): OpenstackCephConfigInput {
      return {
        authUrl: `${server.url}/identity/v3`,
        userDomainId: state.domainId,
        user: state.user,
        password: state.password,
        projectDomainId: state.domainId,
        projectName: state.projectName,
        region: state.region,
        cephClusters: [
          {
            monitors: ceph.monHost,
            cephx: true,
            user: ceph.user,
            keyring: ceph.key,
            pool: ceph.pool,
            incrementalMode: options.incrementalMode ?? 'rbd-diff',
            clusterName: 'ceph',
            volumeTypes: [VOLUME_TYPE],
            ...(options.novaPool !== undefined ? { novaPool: options.novaPool } : {}),
          },
        ],
      };
    },

    badCredentials(config: unknown): unknown {
      return { ...(config as object), password: `wrong-${randomUUID()}` };
    },

    async writeDisk(diskId, offset, data) {
      await importDiff(diskId, { tag: 'w', offset, data });
    },

    async writeZeroes(diskId, offset, length) {
      await importDiff(diskId, { tag: 'z', offset, length });
    },

    /** The live image as Ceph holds it (`rbd export`), kept until the next write. */
    async readDisk(diskId, offset, length) {
      const { spec: imageSpec } = imageOf(diskId);
      let image = truth.get(diskId);
      if (!image) {
        image = await adminRbd(ceph, ['export', '--no-progress', imageSpec, '-']);
        truth.set(diskId, image);
      }
      return new Uint8Array(image.subarray(offset, offset + length));
    },

    /** Cinder snapshots of the host's volumes, plus the RBD snapshots of its root disk when it boots from an image. */
    async snapshotCount(hostId) {
      const volumes = new Set(state.servers.get(hostId)?.volumeIds ?? []);
      const cinder = [...state.snapshots.values()].filter((s) => volumes.has(s.volumeId)).length;
      const root = rootDisks.get(`${hostId}_disk`);
      if (!root) return cinder;
      const listed = await adminRbd(ceph, ['snap', 'ls', '--format', 'json', root.spec]);
      const names = (JSON.parse(listed.toString() || '[]') as Array<{ name: string }>).map((s) => s.name);
      return cinder + names.filter((n) => n.startsWith('syncproxy-')).length;
    },

    throttle() {
      const fault = server.faults.add({ kind: 'throttle', status: 429, retryAfterSec: 0 });
      return () => fault.remove();
    },

    async close() {
      await server.close();
      for (const volumeId of images) {
        await adminRbd(ceph, ['snap', 'purge', '--no-progress', spec(volumeId)]).catch(() => {});
        await adminRbd(ceph, ['rm', '--no-progress', spec(volumeId)]).catch(() => {});
      }
      images.clear();
      for (const { spec: rootSpec } of rootDisks.values()) {
        await adminRbd(ceph, ['snap', 'purge', '--no-progress', rootSpec]).catch(() => {});
        await adminRbd(ceph, ['rm', '--no-progress', rootSpec]).catch(() => {});
      }
      rootDisks.clear();
    },
  };
}
