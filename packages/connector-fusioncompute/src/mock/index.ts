// The FusionCompute mock: the VRM REST API and each compute node's backup data service on loopback,
// for tests of this connector and of products.
import { requireMockPeers } from './peers.js';

requireMockPeers();

export { dataRoutes } from './data-service.js';
export {
  type CbtResetCause,
  type MockFusionCompute,
  type MockFusionComputeOptions,
  type MockVmSpec,
  type MockVolumeSpec,
  startMockFusionCompute,
} from './mock-fusioncompute.js';
export { createFusionComputeMockPlatform, type FusionComputeMockPlatform } from './mock-platform.js';
export {
  MOCK_ERRORS,
  type MockBackupResource,
  type MockCna,
  type MockErrorName,
  MockFcState,
  type MockFcStateOptions,
  type MockSnapshot,
  type MockTask,
  type MockUser,
  type MockVm,
  type MockVolSnapshot,
  type MockVolume,
} from './state.js';
export { fcError, vrmRoutes } from './vrm-api.js';
