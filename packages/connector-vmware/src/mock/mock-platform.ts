import type { MockHostRef, MockHostSpec, MockPlatform } from '@syncproxy/testkit/mock';
import type { DataPathResolver } from '../data-path.js';
import { type MockVcenter, type MockVcenterOptions, startMockVcenter } from './mock-vcenter.js';

/** The mock vCenter as the testkit's contract suite drives it. */
export interface VmwareMockPlatform extends MockPlatform {
  readonly vcenter: MockVcenter;
}

/** A {@link MockPlatform} over {@link startMockVcenter}. */
export async function createVmwareMockPlatform(
  options: MockVcenterOptions = {},
): Promise<VmwareMockPlatform> {
  const vcenter = await startMockVcenter(options);
  const disk = (diskId: string) => vcenter.state.diskById(diskId).disk.disk;
  return {
    vcenter,
    async createHost(spec: MockHostSpec): Promise<MockHostRef> {
      const vm = vcenter.addVm({ name: spec.name, disks: spec.disks });
      return {
        id: vm.moref,
        name: vm.name,
        disks: vm.disks.map((d) => ({ id: `${vm.moref}:${d.key}`, sizeBytes: d.disk.sizeBytes })),
      };
    },
    config: () => vcenter.config(),
    async writeDisk(diskId, offset, data) {
      disk(diskId).write(offset, data);
    },
    async writeZeroes(diskId, offset, length) {
      disk(diskId).writeZeroes(offset, length);
    },
    async readDisk(diskId, offset, length) {
      return disk(diskId).read(offset, length);
    },
    async snapshotCount(hostId) {
      return vcenter.state.vms.get(hostId)?.snapshots.length ?? 0;
    },
    badCredentials: (config) => ({
      ...(config as Record<string, unknown>),
      password: `${vcenter.password}-wrong`,
    }),
    throttle() {
      const fault = vcenter.throttle();
      return () => fault.remove();
    },
    close: () => vcenter.close(),
  };
}

/**
 * A data path for `createVmwareConnector({ dataPath })` that finds the mock
 * later: the connector is made before the platform starts.
 */
export function mockDataPath(platform: () => MockVcenter | undefined): DataPathResolver {
  return (target, options) => {
    const vcenter = platform();
    if (vcenter === undefined) throw new Error('the mock vCenter is not started');
    return vcenter.openDataPath(target, options);
  };
}
