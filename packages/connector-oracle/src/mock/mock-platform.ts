import type { ConnectorContext } from '@syncproxy/core';
import type { MockHostRef, MockHostSpec, MockPlatform } from '@syncproxy/testkit/mock';
import { type MockOci, type MockOciOptions, startMockOci } from './mock-oci.js';

const MIB = 1024 * 1024;

/** The OCI mock as the testkit's contract suite drives it. */
export interface OracleMockPlatform extends MockPlatform {
  readonly oci: MockOci;
  context(): ConnectorContext;
}

/**
 * A {@link MockPlatform} over {@link startMockOci}. OCI sizes volumes in whole
 * MB (`sizeInMBs`), so each disk the suite asks for is rounded up (the mock
 * skips OCI's 50 GB minimum to keep tests small) and the rounded size is what
 * the host lists. The first disk is the boot volume.
 */
export async function createOracleMockPlatform(options: MockOciOptions = {}): Promise<OracleMockPlatform> {
  const oci = await startMockOci(options);
  const volume = (diskId: string) => {
    const found = oci.state.volumes.get(diskId);
    if (found === undefined) throw new Error(`no volume ${diskId} in the OCI mock`);
    return found;
  };
  return {
    oci,
    async createHost(spec: MockHostSpec): Promise<MockHostRef> {
      const { instance, volumes } = oci.addInstance({
        name: spec.name,
        volumes: spec.disks.map((d) => ({ sizeBytes: Math.max(1, Math.ceil(d.sizeBytes / MIB)) * MIB })),
      });
      return {
        id: instance.id,
        name: spec.name,
        disks: volumes.map((v) => ({ id: v.id, sizeBytes: v.sizeBytes })),
      };
    },
    config: () => oci.config(),
    context: () => ({ devices: { byIdDir: oci.devicesDir } }),
    async writeDisk(diskId, offset, data) {
      volume(diskId).data.write(offset, data);
    },
    async writeZeroes(diskId, offset, length) {
      volume(diskId).data.write(offset, new Uint8Array(length), true);
    },
    async readDisk(diskId, offset, length) {
      return volume(diskId).data.read(offset, length);
    },
    async snapshotCount(hostId) {
      return oci.state.backupsOfInstance(hostId).length;
    },
    badCredentials(config) {
      // A well-formed fingerprint of a key the tenancy does not know.
      return {
        ...(config as Record<string, unknown>),
        fingerprint: '00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff',
      };
    },
    throttle() {
      const fault = oci.throttle();
      return () => fault.remove();
    },
    close: () => oci.close(),
  };
}
