import type { ConnectorContext } from '@syncproxy/core';
import type { MockHostRef, MockHostSpec, MockPlatform } from '@syncproxy/testkit/mock';
import {
  type MockHuaweiCloud,
  type MockHuaweiCloudOptions,
  startMockHuaweiCloud,
} from './mock-huaweicloud.js';
import { GIB } from './state.js';

/** The Huawei Cloud mock as the testkit's contract suite drives it. */
export interface HuaweiCloudMockPlatform extends MockPlatform {
  readonly cloud: MockHuaweiCloud;
  context(): ConnectorContext;
}

/**
 * A {@link MockPlatform} over {@link startMockHuaweiCloud}. EVS sizes are
 * whole GB, so each disk the suite asks for is rounded up (sparse, so the
 * extra space costs nothing) and the rounded size is what the host lists.
 * `exportEnabled: false` makes the account not white-listed, so the connector
 * takes the attach-and-hash path.
 */
export async function createHuaweiCloudMockPlatform(
  options: MockHuaweiCloudOptions = {},
): Promise<HuaweiCloudMockPlatform> {
  const cloud = await startMockHuaweiCloud(options);
  const volume = (diskId: string) => {
    const found = cloud.state.volumes.get(diskId);
    if (found === undefined) throw new Error(`no volume ${diskId} in the Huawei Cloud mock`);
    return found.disk;
  };
  return {
    cloud,
    async createHost(spec: MockHostSpec): Promise<MockHostRef> {
      const { server, volumes } = cloud.addServer({
        name: spec.name,
        volumesGb: spec.disks.map((d) => Math.max(1, Math.ceil(d.sizeBytes / GIB))),
      });
      return {
        id: server.id,
        name: spec.name,
        disks: volumes.map((v) => ({ id: v.id, sizeBytes: v.sizeGb * GIB })),
      };
    },
    config: () => cloud.config(),
    context: () => ({ devices: { byIdDir: cloud.byIdDir } }),
    async writeDisk(diskId, offset, data) {
      volume(diskId).write(offset, data);
    },
    async writeZeroes(diskId, offset, length) {
      volume(diskId).writeZeroes(offset, length);
    },
    async readDisk(diskId, offset, length) {
      return volume(diskId).read(offset, length);
    },
    async snapshotCount(hostId) {
      return cloud.state.backupsOfServer(hostId).length;
    },
    badCredentials(config) {
      return {
        ...(config as Record<string, unknown>),
        secretAccessKey: `${cloud.credentials.secretAccessKey}x`,
      };
    },
    throttle: () => cloud.throttle(),
    close: () => cloud.close(),
  };
}
