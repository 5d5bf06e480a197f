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
}

/** The mock OpenStack: a MockPlatform for the contract suite, and its server and state for other tests. */
export interface MockOpenstack extends MockPlatform {
  readonly server: MockServer<MockOpenstackState>;
  readonly state: MockOpenstackState;
  readonly url: string;
  config(): OpenstackCephConfigInput;
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
  const importDiff = async (
    volume: MockVolume,
    record: Parameters<typeof encodeExportDiff>[0]['records'][number],
  ) => {
    truth.delete(volume.id);
    await adminRbd(
      ceph,
      ['import-diff', '--no-progress', '-', spec(volume.id)],
      encodeExportDiff({ version: 1, sizeBytes: volume.sizeBytes, records: [record] }),
    );
  };

  return {
    server,
    state,
    url: server.url,

    async createHost(hostSpec: MockHostSpec): Promise<MockHostRef> {
      const id = randomUUID();
      const disks: MockHostRef['disks'] = [];
      const volumeIds: string[] = [];
      for (const [i, disk] of hostSpec.disks.entries()) {
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
          name: `${hostSpec.name}-disk-${i}`,
          sizeBytes: disk.sizeBytes,
          status: 'in-use',
          volumeType: VOLUME_TYPE,
          serverId: id,
          device: `/dev/vd${String.fromCharCode(97 + i)}`,
          bootable: i === 0,
        });
        volumeIds.push(volumeId);
        disks.push({ id: volumeId, sizeBytes: disk.sizeBytes });
      }
      state.servers.set(id, { id, name: hostSpec.name, status: 'ACTIVE', volumeIds });
      return { id, name: hostSpec.name, disks };
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
          },
        ],
      };
    },

    badCredentials(config: unknown): unknown {
      return { ...(config as object), password: `wrong-${randomUUID()}` };
    },

    async writeDisk(diskId, offset, data) {
      await importDiff(volumeOf(diskId), { tag: 'w', offset, data });
    },

    async writeZeroes(diskId, offset, length) {
      await importDiff(volumeOf(diskId), { tag: 'z', offset, length });
    },

    /** The live image as Ceph holds it (`rbd export`), kept until the next write. */
    async readDisk(diskId, offset, length) {
      const volume = volumeOf(diskId);
      let image = truth.get(diskId);
      if (!image) {
        image = await adminRbd(ceph, ['export', '--no-progress', spec(volume.id), '-']);
        truth.set(diskId, image);
      }
      return new Uint8Array(image.subarray(offset, offset + length));
    },

    async snapshotCount(hostId) {
      const volumes = new Set(state.servers.get(hostId)?.volumeIds ?? []);
      return [...state.snapshots.values()].filter((s) => volumes.has(s.volumeId)).length;
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
    },
  };
}
