import type { MockHostRef, MockHostSpec, MockPlatform } from '@syncproxy/testkit/mock';
import { type MockAws, type MockAwsOptions, startMockAws } from './mock-aws.js';

const GIB = 1024 ** 3;

/** The AWS mock as the testkit's contract suite drives it. */
export interface AwsMockPlatform extends MockPlatform {
  readonly aws: MockAws;
}

/**
 * A {@link MockPlatform} over {@link startMockAws}. Volume sizes are whole
 * GiB on EC2, so each disk the suite asks for is rounded up (sparse, so the
 * extra space costs nothing) and the rounded size is what the host lists.
 */
export async function createAwsMockPlatform(options: MockAwsOptions = {}): Promise<AwsMockPlatform> {
  const aws = await startMockAws(options);
  const volume = (diskId: string) => {
    const found = aws.state.volumes.get(diskId);
    if (found === undefined) throw new Error(`no volume ${diskId} in the AWS mock`);
    return found.disk;
  };
  return {
    aws,
    async createHost(spec: MockHostSpec): Promise<MockHostRef> {
      const { instance, volumes } = aws.addInstance({
        name: spec.name,
        volumes: spec.disks.map((d) => ({ sizeBytes: Math.max(1, Math.ceil(d.sizeBytes / GIB)) * GIB })),
      });
      return {
        id: instance.id,
        name: spec.name,
        disks: volumes.map((v) => ({ id: v.id, sizeBytes: v.sizeGiB * GIB })),
      };
    },
    config: () => aws.config(),
    async writeDisk(diskId, offset, data) {
      const disk = volume(diskId);
      if (disk.write === undefined) throw new Error(`volume ${diskId} is read-only`);
      disk.write(offset, data);
    },
    async writeZeroes(diskId, offset, length) {
      const disk = volume(diskId);
      if (disk.writeZeroes === undefined) throw new Error(`volume ${diskId} is read-only`);
      disk.writeZeroes(offset, length);
    },
    async readDisk(diskId, offset, length) {
      const disk = volume(diskId);
      if (disk.read === undefined) throw new Error(`volume ${diskId} cannot be read back`);
      return disk.read(offset, length);
    },
    async snapshotCount(hostId) {
      return aws.state.snapshotsOfInstance(hostId).length;
    },
    badCredentials(config) {
      return {
        ...(config as Record<string, unknown>),
        secretAccessKey: `${aws.credentials.secretAccessKey}x`,
      };
    },
    throttle() {
      const fault = aws.throttle({ ratio: 1 });
      return () => fault.remove();
    },
    close: () => aws.close(),
  };
}
