import type { ConnectorContext } from '@syncproxy/core';
import type { MockHostRef, MockHostSpec, MockPlatform } from '@syncproxy/testkit/mock';
import { type MockHcs, type MockHcsOptions, startMockHcs } from './mock-hcs.js';

/** The HCS mock as the testkit's contract suite drives it. */
export interface HcsMockPlatform extends MockPlatform {
  readonly mock: MockHcs;
  context(): ConnectorContext;
}

/**
 * A {@link MockPlatform} over {@link startMockHcs}. EVS sizes volumes in whole
 * GB, so each disk the suite asks for is rounded up to GB (sparse: only
 * written blocks cost memory) and the rounded size is what the host lists.
 * With `gbBytes` (test-only, see {@link MockHcsOptions.gbBytes}) a GB is that
 * many bytes, for the mock and for a connector created with the same value.
 */
export async function createHcsMockPlatform(options: MockHcsOptions = {}): Promise<HcsMockPlatform> {
  const mock = await startMockHcs(options);
  const volume = (diskId: string) => {
    const found = mock.state.volumes.get(diskId);
    if (found === undefined) throw new Error(`no volume ${diskId} in the HCS mock`);
    return found;
  };
  return {
    mock,
    async createHost(spec: MockHostSpec): Promise<MockHostRef> {
      const { server, volumes } = mock.addServer({
        name: spec.name,
        volumesGb: spec.disks.map((d) => Math.max(1, Math.ceil(d.sizeBytes / mock.gbBytes))),
      });
      return {
        id: server.id,
        name: spec.name,
        disks: volumes.map((v) => ({ id: v.id, sizeBytes: v.sizeGb * mock.gbBytes })),
      };
    },
    config: () => mock.config(),
    context: () => ({ devices: { byIdDir: mock.devicesDir } }),
    async writeDisk(diskId, offset, data) {
      volume(diskId).disk.write(offset, data);
    },
    async writeZeroes(diskId, offset, length) {
      volume(diskId).disk.writeZeroes(offset, length);
    },
    async readDisk(diskId, offset, length) {
      return volume(diskId).disk.read(offset, length);
    },
    async snapshotCount(hostId) {
      const server = mock.state.servers.get(hostId);
      const luns = new Set(server?.volumeIds.map((id) => volume(id).lunId));
      return [...mock.state.snapshots.values()].filter((s) => luns.has(s.PARENTID)).length;
    },
    badCredentials(config) {
      return { ...(config as Record<string, unknown>), password: 'not-the-password' };
    },
    throttle() {
      const fault = mock.throttle();
      return () => fault.remove();
    },
    close: () => mock.close(),
  };
}
