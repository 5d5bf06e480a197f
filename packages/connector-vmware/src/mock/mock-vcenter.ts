import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SyncproxyError } from '@syncproxy/core';
import type { ActiveFault, MockServer } from '@syncproxy/testkit/mock';
import type { DataEndpoint, DiskDataTarget } from '../data-path.js';
import { startNbdkit } from '../nbdkit-process.js';
import { loadTestkit } from './peers.js';
import { type MockDisk, MockVcenterState, type MockVm } from './state.js';
import { vimHandler } from './vim-api.js';

export interface MockVcenterOptions {
  user?: string;
  password?: string;
  /** `about.apiVersion`. Default `8.0.2.0`. */
  apiVersion?: string;
  /** ESXi hosts in the inventory. Default one, `esxi-01.mock.local`. */
  hosts?: string[];
  /** Areas one QueryChangedDiskAreas reply holds at most. Default 2000 (as vSphere). */
  maxAreasPerReply?: number;
  /** Bytes one QueryChangedDiskAreas reply covers at most. Default: the whole disk. */
  windowBytes?: number;
  /** `info` polls a task stays queued/running before it ends. Default 2. */
  taskPolls?: number;
  /** Objects per RetrievePropertiesEx page at most. Default 100. */
  maxObjectsPerPage?: number;
  /** The nbdkit binary that serves snapshot data. Default `nbdkit`. */
  nbdkit?: string;
}

export interface MockVmSpec {
  name: string;
  disks: Array<{
    sizeBytes: number;
    diskMode?: MockDisk['diskMode'];
    physicalRdm?: boolean;
    /** CBT block size of the disk (the unit of its changed areas). Default 64 KiB. */
    blockSizeBytes?: number;
  }>;
  powerState?: MockVm['powerState'];
  /** Default false: the connector's first snapshot enables it. */
  cbtEnabled?: boolean;
  /** Default true. */
  toolsRunning?: boolean;
}

/** A running mock vCenter: vim25 SOAP on `https://127.0.0.1:<port>/sdk`, snapshot data through real nbdkit. */
export interface MockVcenter extends MockServer<MockVcenterState> {
  readonly user: string;
  readonly password: string;
  /** SHA-256 thumbprint of the server certificate. */
  readonly thumbprint: string;
  /** A connector config (the product form) that reaches this mock. */
  config(): { url: string; user: string; password: string; thumbprint: string };
  addVm(spec: MockVmSpec): MockVm;
  /** Forgets the CBT data of the VM's disks: older changeIds fail with FileFault. */
  resetCbt(vm: string): void;
  /** Drops every session, as vCenter does after its idle timeout: the next call gets NotAuthenticated. */
  expireSessions(): void;
  /** Answers every SOAP call with HTTP 429 until removed. */
  throttle(): ActiveFault;
  /**
   * The data path for the connector (`createVmwareConnector({ dataPath })`):
   * starts an `nbdkit file` process serving the snapshot disk's bytes,
   * stopped when the reader closes.
   */
  openDataPath(target: DiskDataTarget, options?: { signal?: AbortSignal }): Promise<DataEndpoint>;
}

export async function startMockVcenter(options: MockVcenterOptions = {}): Promise<MockVcenter> {
  const { startMockServer, VirtualDisk } = await loadTestkit();
  const user = options.user ?? 'administrator@vsphere.local';
  const password = options.password ?? 'Mock-vCenter-Passw0rd!';
  const state = new MockVcenterState({
    maxAreasPerReply: options.maxAreasPerReply ?? 2000,
    windowBytes: options.windowBytes ?? Number.MAX_SAFE_INTEGER,
    taskPolls: options.taskPolls ?? 2,
    maxObjectsPerPage: options.maxObjectsPerPage ?? 100,
  });
  for (const name of options.hosts ?? ['esxi-01.mock.local']) state.hosts.set(state.next('host'), name);
  const server = await startMockServer<MockVcenterState>({
    state,
    tls: true,
    routes: { 'POST /sdk': vimHandler({ user, password, apiVersion: options.apiVersion ?? '8.0.2.0' }) },
  });
  const thumbprint = server.tls!.fingerprint256;
  const firstHost = [...state.hosts.keys()][0] ?? 'host-1';
  const endpoints = new Set<DataEndpoint>();

  return {
    ...server,
    user,
    password,
    thumbprint,
    config: () => ({ url: `${server.url}`, user, password, thumbprint }),
    addVm(spec) {
      const moref = state.next('vm');
      const slug = spec.name.replace(/[^A-Za-z0-9_-]/g, '_');
      const vm: MockVm = {
        moref,
        name: spec.name,
        uuid: `42${moref.replace(/\D/g, '').padStart(6, '0')}-0000-4000-8000-000000000000`,
        powerState: spec.powerState ?? 'poweredOn',
        cbtEnabled: spec.cbtEnabled ?? false,
        toolsRunning: spec.toolsRunning ?? true,
        host: firstHost,
        snapshots: [],
        disks: spec.disks.map((d, i) => ({
          key: 2000 + i,
          label: `Hard disk ${i + 1}`,
          fileName: `[datastore1] ${slug}/${slug}${i === 0 ? '' : `_${i}`}.vmdk`,
          disk: new VirtualDisk({ sizeBytes: d.sizeBytes, blockSizeBytes: d.blockSizeBytes ?? 64 * 1024 }),
          diskMode: d.diskMode ?? 'persistent',
          physicalRdm: d.physicalRdm ?? false,
          cbt: { uuid: MockVcenterState.newCbtUuid(), sequence: 1, points: new Map() },
          deltas: 0,
        })),
      };
      state.vms.set(moref, vm);
      return vm;
    },
    resetCbt: (vm) => state.resetCbt(vm),
    expireSessions: () => state.sessions.clear(),
    throttle: () =>
      server.faults.add({
        kind: 'throttle',
        status: 429,
        retryAfterSec: 1,
        path: '/sdk',
        body: 'Too Many Requests',
      }),
    async openDataPath(target, openOptions = {}) {
      const snapshot = state.snapshots.get(target.snapshot);
      if (snapshot === undefined || snapshot.vm !== target.vm) {
        throw new SyncproxyError(`snapshot ${target.snapshot} of ${target.vm} does not exist`, {
          code: 'not-found',
          retryable: false,
        });
      }
      const disk = snapshot.disks.find((d) => d.key === target.deviceKey && d.fileName === target.fileName);
      if (disk === undefined) {
        throw new SyncproxyError(
          `no disk ${target.deviceKey} (${target.fileName}) in snapshot ${target.snapshot}`,
          {
            code: 'not-found',
            retryable: false,
          },
        );
      }
      const dir = await mkdtemp(join(tmpdir(), 'syncproxy-mock-vmdk-'));
      const image = join(dir, 'disk.img');
      try {
        // A sparse image of the snapshot: only written blocks take space.
        const file = await open(image, 'w');
        try {
          await file.truncate(disk.capacityBytes);
          for (const e of disk.view.allocatedExtents()) {
            await file.write(disk.view.read(e.offset, e.length), 0, e.length, e.offset);
          }
        } finally {
          await file.close();
        }
        const nbdkit = await startNbdkit({
          ...(options.nbdkit ? { command: options.nbdkit } : {}),
          args: (paths) => [
            '-f',
            '--exit-with-parent',
            '-r',
            '-U',
            paths.socketPath,
            '-P',
            paths.pidFile,
            'file',
            `file=${image}`,
          ],
          startTimeoutMs: 30_000,
          ...(openOptions.signal ? { signal: openOptions.signal } : {}),
        });
        state.nbdkitPids.add(nbdkit.pid);
        const endpoint: DataEndpoint = {
          uri: nbdkit.uri,
          async close() {
            endpoints.delete(endpoint);
            try {
              await nbdkit.stop();
            } finally {
              state.nbdkitPids.delete(nbdkit.pid);
              await rm(dir, { recursive: true, force: true });
            }
          },
        };
        endpoints.add(endpoint);
        return endpoint;
      } catch (error) {
        await rm(dir, { recursive: true, force: true });
        throw error;
      }
    },
    async close() {
      for (const endpoint of [...endpoints]) await endpoint.close();
      await server.close();
    },
  };
}
