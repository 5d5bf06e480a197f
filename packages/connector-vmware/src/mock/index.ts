// The mock vCenter: vim25 SOAP with CBT on loopback HTTPS, snapshot data served by real nbdkit.
import { requireMockPeers } from './peers.js';

requireMockPeers();

export { createVmwareMockPlatform, mockDataPath, type VmwareMockPlatform } from './mock-platform.js';
export {
  type MockVcenter,
  type MockVcenterOptions,
  type MockVmSpec,
  startMockVcenter,
} from './mock-vcenter.js';
export type {
  MockCbt,
  MockDisk,
  MockPropertyFault,
  MockSnapshot,
  MockSnapshotDisk,
  MockTask,
  MockVcenterState,
  MockVcenterStats,
  MockVm,
} from './state.js';
