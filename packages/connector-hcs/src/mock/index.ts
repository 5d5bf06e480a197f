// The HCS mock for tests of this connector and of products: an HCS 8.0.2 gateway (IAM, ECS, EVS)
// and an OceanStor Dorado whose mapped snapshots appear on the "proxy" as files.
import { requireMockPeers } from './peers.js';

requireMockPeers();

export { type DoradoApiOptions, type DoradoFault, doradoRoutes } from './dorado-api.js';
export { type HcsApiOptions, hcsRoutes } from './hcs-api.js';
export { type MockHcs, type MockHcsOptions, type MockServerSpec, startMockHcs } from './mock-hcs.js';
export { createHcsMockPlatform, type HcsMockPlatform } from './mock-platform.js';
export {
  type MockDoradoSnapshot,
  MockHcsState,
  type MockHcsTestkit,
  type MockLun,
  type MockNamed,
  type MockServerRecord,
  type MockStats,
  type MockVolumeRecord,
} from './state.js';
