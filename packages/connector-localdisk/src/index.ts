import {
  type ConnectorSession,
  defineConnector,
  type Host,
  type PrecheckResult,
  type SnapshotRef,
  SyncproxyError,
} from '@syncproxy/core';
import { LocalDiskClient } from './client.js';
import { configSchema, type LocalDiskConfig } from './config.js';
import { ManifestReader } from './reader.js';

export { configSchema, type LocalDiskConfig } from './config.js';
export { ManifestReader, type ManifestReaderOptions } from './reader.js';

const PLATFORM = 'localdisk';

/**
 * The agent case: raw image files or block devices on the machine running
 * the SDK (physical machines, KVM, Xen, Hyper-V guests). A snapshot records
 * the SHA-256 of every chunk; an incremental sends the chunks whose hash
 * changed. The reference connector of `docs/writing-a-connector.md`.
 */
export const localdisk = defineConnector<LocalDiskConfig>({
  id: PLATFORM,
  displayName: 'Local disk (agent)',
  version: '0.1.0',
  configSchema,
  capabilities: {
    changeTracking: 'hash',
    consistentMultiDiskSnapshot: false,
    mountsDisks: false,
    quiescedSnapshots: false,
  },
  // Everything is on this machine: no endpoint to reach.
  networkRequirements: () => [],
  async connect(config, context): Promise<ConnectorSession> {
    const client = new LocalDiskClient(config);
    const hostOf = async (): Promise<Host> => ({
      id: config.hostName,
      name: config.hostName,
      powerState: 'on',
      os: process.platform,
      disks: (await client.listDisks()).map((d) => ({
        id: d.id,
        name: d.name,
        sizeBytes: d.sizeBytes,
        device: d.path,
        attributes: { blockDevice: d.isBlockDevice },
      })),
    });
    const checkHost = (host: Host): void => {
      if (host.id !== config.hostName) {
        throw new SyncproxyError(`host ${host.id} is not this machine (${config.hostName})`, {
          code: 'not-found',
          retryable: false,
        });
      }
    };

    return {
      async verify() {
        const host = await hostOf();
        if (!(await client.canWriteState())) {
          return {
            status: 'abnormal',
            hostCount: 1,
            message: `state directory ${config.stateDir} is not writable`,
          };
        }
        context.logger.debug({ disks: host.disks.length }, 'localdisk verified');
        return {
          status: 'normal',
          hostCount: 1,
          platformVersion: `node ${process.version} on ${process.platform}`,
        };
      },

      listHosts: async () => [await hostOf()],

      async prechecks(host): Promise<PrecheckResult[]> {
        checkHost(host);
        const disks = await client.listDisks();
        const devices = disks.filter((d) => d.isBlockDevice);
        return [
          {
            id: 'disks-readable',
            title: '1. Disks can be opened for reading',
            status: 'pass',
            detail: `${disks.length} disk(s) opened: ${disks.map((d) => d.path).join(', ')}`,
          },
          (await client.canWriteState())
            ? {
                id: 'state-dir-writable',
                title: '2. Snapshot manifests can be recorded',
                status: 'pass',
                detail: `${config.stateDir} is writable`,
              }
            : {
                id: 'state-dir-writable',
                title: '2. Snapshot manifests can be recorded',
                status: 'fail',
                detail: `${config.stateDir} is not writable`,
                remedy: 'give the proxy user write access to the state directory, or choose another one',
              },
          devices.length === 0
            ? {
                id: 'disk-frozen',
                title: '3. Disks do not change during a sync',
                status: 'pass',
                detail: 'all disks are image files',
              }
            : {
                id: 'disk-frozen',
                title: '3. Disks do not change during a sync',
                status: 'warn',
                detail: `${devices.map((d) => d.path).join(', ')} may be written while a sync reads them; such a sync fails with an integrity error`,
                remedy:
                  'sync a frozen snapshot device (LVM snapshot, VSS shadow copy) instead of the live device',
              },
        ];
      },

      async createSnapshot(host, options): Promise<SnapshotRef> {
        checkHost(host);
        const id = client.newSnapshotId();
        const disks = await client.listDisks();
        const refs = [];
        try {
          for (const [index, disk] of disks.entries()) {
            const manifest = await client.recordManifest(id, disk, index, options?.signal ?? context.signal);
            refs.push({
              diskId: disk.id,
              sizeBytes: disk.sizeBytes,
              data: { manifest, chunkSizeBytes: config.chunkSizeBytes },
            });
          }
        } catch (error) {
          await client.deleteSnapshot(id);
          throw error;
        }
        context.logger.info({ snapshot: id, disks: refs.length }, 'localdisk snapshot recorded');
        return {
          id,
          platform: PLATFORM,
          hostId: host.id,
          createdAt: new Date().toISOString(),
          disks: refs,
          data: { label: options?.label ?? null },
        };
      },

      async openReader(disk, options) {
        const manifestOf = async (snapshot: SnapshotRef) => {
          const entry = snapshot.disks.find((d) => d.diskId === disk.id);
          if (entry === undefined || typeof entry.data.manifest !== 'string') {
            throw new SyncproxyError(`snapshot ${snapshot.id} has no manifest for disk ${disk.id}`, {
              code: 'not-found',
              retryable: false,
            });
          }
          return client.loadManifest(snapshot.id, entry.data.manifest);
        };
        const manifest = await manifestOf(options.snapshot);
        const base = options.base === undefined ? undefined : await manifestOf(options.base);
        const local = await client.findDisk(disk.id);
        const file = await client.openDisk(local.path);
        return new ManifestReader({
          file,
          path: local.path,
          snapshotId: options.snapshot.id,
          manifest,
          ...(base ? { base } : {}),
        });
      },

      async deleteSnapshot(snapshot) {
        await client.deleteSnapshot(snapshot.id);
      },

      // Readers own their file handles; the session holds nothing open.
      async close() {},
    };
  },
});
