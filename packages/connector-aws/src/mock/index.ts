// The AWS mock: EC2 Query API + EBS direct read APIs on loopback, for tests of this connector and of products.
import { requireMockPeers } from './peers.js';

requireMockPeers();

export {
  type MockAws,
  type MockAwsOptions,
  type MockInstanceSpec,
  type MockVolumeSpec,
  startMockAws,
  type ThrottleOptions,
} from './mock-aws.js';
export { type AwsMockPlatform, createAwsMockPlatform } from './mock-platform.js';
export type { MockCredentials } from './sigv4.js';
export type { MockAwsState, MockAwsStats, MockInstance, MockSnapshot, MockVolume } from './state.js';
export { BLOCK_SIZE, type VolumeDisk, type VolumeSnapshotView, volumeOfVirtualDisk } from './volume-disk.js';
