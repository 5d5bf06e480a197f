import type { ActiveFault, MockServer } from '@syncproxy/testkit/mock';
import { dataRoutes } from './data-service.js';
import { loadTestkit } from './peers.js';
import {
  MOCK_ERRORS,
  type MockCna,
  type MockErrorName,
  MockFcState,
  type MockUser,
  type MockVm,
  type MockVolume,
} from './state.js';
import { vrmRoutes } from './vrm-api.js';

const GIB = 1024 ** 3;

export interface MockFusionComputeOptions {
  /** Users the VRM accepts. Default one interface user (type 2), `syncproxy` / a fixed password. */
  users?: MockUser[];
  /** Versions `/service/versions` lists and Accept may name. Default 8.0, 8.1. */
  versions?: string[];
  /** Milliseconds since the epoch: token expiry, task delays, CBT times. Default `Date.now`. */
  now?: () => number;
  /** Polls a task answers `running` before it ends. Default 1. */
  taskPolls?: number;
  /** Clock time a task stays running at least, ms. Default 0. */
  taskDelayMs?: number;
  /** Lifetime of a login token. Default 30 minutes. */
  sessionLifetimeMs?: number;
  /** Added to every ranged read while it holds its backup connection, ms. Default 0. */
  readLatencyMs?: number;
  /** Compute nodes (CNAs). Default 1. */
  hosts?: number;
  /** `lanssl` (HTTPS data, default) or `lan` (HTTP). */
  dataTransport?: 'lanssl' | 'lan';
  /** The biggest `limit` a list accepts. Default 100. */
  maxPageSize?: number;
  /** getcbt bitMap encoding (UNCONFIRMED). Default hex. */
  bitmapEncoding?: 'hex' | 'base64';
  /** Block size of the volumes' CBT (`sectorOfBlock * 512`). Default 64 KiB. */
  cbtBlockBytes?: number;
  /** The product limit the CNAs enforce: backup connections at once per host. Default 8 (lift it only in benchmarks). */
  maxConnectionsPerHost?: number;
  /**
   * TEST-ONLY: the bytes one `quantityGB` stands for in this mock. Default
   * 1 GiB, as on FusionCompute. A smaller value (a multiple of the CBT block,
   * e.g. 8 MiB) shrinks every volume while the VRM still says whole GB, so
   * suites that compare disks byte by byte stay cheap. The connector must
   * then be created with the same `gbBytes`.
   */
  gbBytes?: number;
}

export interface MockVolumeSpec {
  /** Size in bytes; the VRM reports whole GB (`quantityGB`), so it is rounded up (to `gbBytes`). */
  sizeBytes?: number;
  shared?: boolean;
  independent?: boolean;
  storageType?: string;
}

export interface MockVmSpec {
  name?: string;
  /** Default `running`. */
  status?: string;
  /** Index of the compute node (0-based). Default 0. */
  host?: number;
  toolsRunning?: boolean;
  template?: boolean;
  linkedClone?: boolean;
  volumes: MockVolumeSpec[];
}

/** How CBT is invalidated, as the product documentation lists it. */
export type CbtResetCause = 'ha' | 'snapshot-restore' | 'volume-expansion' | 'host-restart';

/** A running mock of a FusionCompute VRM and its compute nodes' data services, on 127.0.0.1. */
export interface MockFusionCompute extends MockServer<MockFcState> {
  readonly user: MockUser;
  /** The compute nodes' data servers. */
  readonly cnas: MockCna[];
  /** A connector config (the product form) that reaches this mock and trusts its certificate. */
  config(): {
    url: string;
    user: string;
    password: string;
    userType: '0' | '1' | '2';
    ca: string;
    advanced: { transMode: 'lanssl' | 'lan'; bitmapEncoding: 'hex' | 'base64' };
  };
  addVm(spec: MockVmSpec): { vm: MockVm; volumes: MockVolume[] };
  /** Invalidates CBT of a VM's volumes. `volume-expansion` grows each volume by 1 GB as well. */
  resetCbt(vmId: string, cause: CbtResetCause): void;
  /** Marks a VM busy with an operation exclusive with snapshots (start, shutdown, disk attach...), or idle again. */
  setBusy(vmId: string, operation: string | undefined): void;
  /** Shuts a VM down: its backup resources fail, as the product documentation warns. */
  shutdown(vmId: string): void;
  /** Every backup token expires after `reads` more data reads. */
  expireTokensAfterReads(reads: number): void;
  /** The next task of this operation fails with this error. */
  failNextTask(operation: 'CreateSnapshot' | 'CreateBackupResource', error: MockErrorName): void;
  /** Answers every VRM call 429 `{errorCode, errorDes}` until removed. */
  throttle(): ActiveFault;
  /** Every VRM session token expires now (the next call gets 401). */
  expireSessions(): void;
  /** Backup resources alive now (all hosts). */
  readonly backupResourceCount: number;
}

/**
 * Starts the FusionCompute mock: one HTTPS server for the VRM REST API and one
 * data server per compute node. Volumes are testkit VirtualDisks; CBTbackup
 * snapshots freeze them, and getcbt bitmaps are computed from the blocks
 * really written between two snapshots.
 */
export async function startMockFusionCompute(
  options: MockFusionComputeOptions = {},
): Promise<MockFusionCompute> {
  const users = options.users ?? [{ name: 'syncproxy', password: 'Mock#Pass-2026!', type: '2' }];
  const state = new MockFcState({
    siteId: '3D2B0708',
    users,
    versions: options.versions ?? ['8.0', '8.1'],
    now: options.now ?? Date.now,
    taskPolls: options.taskPolls ?? 1,
    taskDelayMs: options.taskDelayMs ?? 0,
    sessionLifetimeMs: options.sessionLifetimeMs ?? 30 * 60_000,
    maxVolumesInBackupPerHost: 8,
    maxConnectionsPerHost: options.maxConnectionsPerHost ?? 8,
    readLatencyMs: options.readLatencyMs ?? 0,
    dataTransport: options.dataTransport ?? 'lanssl',
    maxPageSize: options.maxPageSize ?? 100,
    bitmapEncoding: options.bitmapEncoding ?? 'hex',
  });
  const cbtBlock = options.cbtBlockBytes ?? 64 * 1024;
  const gbBytes = options.gbBytes ?? GIB;
  if (!Number.isSafeInteger(gbBytes) || gbBytes <= 0 || gbBytes % cbtBlock !== 0)
    throw new Error(`gbBytes must be a positive multiple of the CBT block ${cbtBlock} (got ${gbBytes})`);
  const { startMockServer, VirtualDisk } = await loadTestkit();
  const vrm = await startMockServer<MockFcState>({ state, routes: vrmRoutes(), tls: true });
  const cnas: MockCna[] = [];
  try {
    for (let i = 0; i < (options.hosts ?? 1); i++) {
      const id = state.nextId('host');
      let cna: MockCna | undefined;
      const server = await startMockServer<MockFcState>({
        state,
        routes: dataRoutes(() => cna!),
        tls: state.options.dataTransport === 'lanssl',
      });
      cna = {
        id,
        urn: `urn:sites:${state.siteId}:hosts:${id}`,
        uri: `${state.siteUri}/hosts/${id}`,
        name: `CNA${String(i + 1).padStart(2, '0')}`,
        ip: '127.0.0.1',
        server,
        openConnections: 0,
        peakConnections: 0,
        refusedConnections: 0,
        reads: 0,
      };
      state.hosts.set(id, cna);
      cnas.push(cna);
    }
  } catch (error) {
    await Promise.all([vrm.close(), ...cnas.map((c) => c.server.close())]);
    throw error;
  }
  const user = users[0]!;
  const vmOf = (vmId: string): MockVm => {
    const vm = state.vms.get(vmId);
    if (vm === undefined) throw new Error(`no VM ${vmId} in the FusionCompute mock`);
    return vm;
  };

  return {
    ...vrm,
    user,
    cnas,
    get backupResourceCount() {
      return state.backupResources.size;
    },
    config() {
      return {
        url: vrm.url,
        user: user.name,
        password: user.password,
        userType: user.type as '0' | '1' | '2',
        ca: vrm.tls!.cert,
        advanced: { transMode: state.options.dataTransport, bitmapEncoding: state.options.bitmapEncoding },
      };
    },
    addVm(spec) {
      const id = state.nextId('i');
      const host = cnas[spec.host ?? 0];
      if (host === undefined) throw new Error(`the mock has no compute node ${spec.host}`);
      const vm: MockVm = {
        id,
        urn: `urn:sites:${state.siteId}:vms:${id}`,
        uri: `${state.siteUri}/vms/${id}`,
        name: spec.name ?? id,
        status: spec.status ?? 'running',
        hostId: host.id,
        pvDriverStatus: spec.toolsRunning === false ? 'notRunning' : 'running',
        isTemplate: spec.template === true,
        isLinkClone: spec.linkedClone === true,
        volumeIds: [],
        snapshots: new Map(),
      };
      const volumes = spec.volumes.map((v): MockVolume => {
        const volId = state.nextId('vol');
        const quantityGB = Math.max(1, Math.ceil((v.sizeBytes ?? gbBytes) / gbBytes));
        const volume: MockVolume = {
          id: volId,
          urn: `urn:sites:${state.siteId}:volumes:${volId}`,
          uri: `${state.siteUri}/volumes/${volId}`,
          name: `${vm.name}-disk${vm.volumeIds.length + 1}`,
          disk: new VirtualDisk({ sizeBytes: quantityGB * gbBytes, blockSizeBytes: cbtBlock }),
          quantityGB,
          volType: v.shared ? 'share' : 'normal',
          indepDisk: v.independent === true,
          storageType: v.storageType ?? 'LOCALPOME',
          vmId: id,
          cbtCreateTime: state.timeString(),
          generations: new Map(),
        };
        state.volumes.set(volId, volume);
        vm.volumeIds.push(volId);
        return volume;
      });
      state.vms.set(id, vm);
      return { vm, volumes };
    },
    resetCbt(vmId, cause) {
      const vm = vmOf(vmId);
      if (cause === 'volume-expansion') {
        for (const volId of vm.volumeIds) {
          const volume = state.volumes.get(volId)!;
          const grown = new VirtualDisk({
            sizeBytes: (volume.quantityGB + 1) * gbBytes,
            blockSizeBytes: cbtBlock,
          });
          for (const extent of volume.disk.allocatedExtents())
            grown.write(extent.offset, volume.disk.read(extent.offset, extent.length));
          volume.disk = grown;
          volume.quantityGB++;
        }
      }
      state.resetCbt(vmId);
      state.count(`cbt reset: ${cause}`);
    },
    setBusy(vmId, operation) {
      const vm = vmOf(vmId);
      if (operation === undefined) delete vm.busyWith;
      else vm.busyWith = operation;
    },
    shutdown(vmId) {
      const vm = vmOf(vmId);
      vm.status = 'stopped';
      for (const r of state.backupResources.values()) {
        if (vm.volumeIds.includes(r.volumeId)) {
          r.status = 'failed';
          r.reason = 'vmShutDown';
        }
      }
    },
    expireTokensAfterReads(reads) {
      state.expireTokensAfter = reads;
    },
    failNextTask(operation, error) {
      state.nextTaskFailure = { operation, error };
    },
    throttle() {
      const [errorCode, errorDes] = MOCK_ERRORS.throttled;
      return vrm.faults.add({
        kind: 'status',
        status: 429,
        body: { errorCode, errorDes },
        path: '/service/sites',
      });
    },
    expireSessions() {
      state.sessions.clear();
    },
    async close() {
      await Promise.all([vrm.close(), ...cnas.map((c) => c.server.close())]);
    },
  };
}
