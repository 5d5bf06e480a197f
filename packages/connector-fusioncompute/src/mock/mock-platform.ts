import type { MockHostRef, MockHostSpec, MockPlatform } from '@syncproxy/testkit/mock';
import {
  type MockFusionCompute,
  type MockFusionComputeOptions,
  startMockFusionCompute,
} from './mock-fusioncompute.js';

/** The FusionCompute mock as the testkit's contract suite drives it. */
export interface FusionComputeMockPlatform extends MockPlatform {
  readonly fc: MockFusionCompute;
}

/**
 * A {@link MockPlatform} over {@link startMockFusionCompute}. Volume sizes are
 * whole GB on FusionCompute (`quantityGB`), so each disk the suite asks for is
 * rounded up (sparse: the extra space costs nothing) and the host lists the
 * rounded size. Disk ids are volume URNs.
 */
export async function createFusionComputeMockPlatform(
  options: MockFusionComputeOptions = {},
): Promise<FusionComputeMockPlatform> {
  const fc = await startMockFusionCompute(options);
  const volume = (diskId: string) => {
    for (const v of fc.state.volumes.values()) if (v.urn === diskId) return v;
    throw new Error(`no volume ${diskId} in the FusionCompute mock`);
  };
  return {
    fc,
    async createHost(spec: MockHostSpec): Promise<MockHostRef> {
      const { vm, volumes } = fc.addVm({ name: spec.name, volumes: spec.disks });
      return {
        id: vm.urn,
        name: vm.name,
        disks: volumes.map((v) => ({ id: v.urn, sizeBytes: v.disk.sizeBytes })),
      };
    },
    config: () => fc.config(),
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
      for (const vm of fc.state.vms.values()) if (vm.urn === hostId) return vm.snapshots.size;
      return 0;
    },
    badCredentials(config) {
      return { ...(config as Record<string, unknown>), password: `${fc.user.password}x` };
    },
    throttle() {
      const fault = fc.throttle();
      return () => fault.remove();
    },
    close: () => fc.close(),
  };
}
