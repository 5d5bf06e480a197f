// The OCI mock: Core Services + Identity on loopback with signature checks, and the proxy side
// (attached volumes as files, iSCSI logins, delta scans), for tests of this connector and of products.
import { requireMockPeers } from './peers.js';

requireMockPeers();

export {
  fingerprintOf,
  type MockInstanceSpec,
  type MockOci,
  type MockOciOptions,
  startMockOci,
} from './mock-oci.js';
export { createOracleMockPlatform, type OracleMockPlatform } from './mock-platform.js';
export { MAX_CLOCK_SKEW_MS, type MockApiKey, requiredHeaders, verifySignature } from './signature.js';
export {
  BlockMap,
  Lifecycle,
  type LifecycleStep,
  MOCK_BLOCK_SIZE,
  type MockAttachment,
  type MockBackup,
  type MockCompartment,
  type MockInstance,
  MockOciState,
  type MockStats,
  type MockVolume,
} from './state.js';
