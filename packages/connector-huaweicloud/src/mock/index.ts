// The Huawei Cloud mock: IAM, ECS, EVS, CBR (with the snapshot data export) and OBS on loopback, for tests of this connector and of products.
import { requireMockPeers } from './peers.js';

requireMockPeers();

export { gatewayError, type MockCredentials, verifySdkSignature } from './aksk-verifier.js';
export {
  type MockHuaweiCloud,
  type MockHuaweiCloudOptions,
  type MockServerSpec,
  startMockHuaweiCloud,
} from './mock-huaweicloud.js';
export { createHuaweiCloudMockPlatform, type HuaweiCloudMockPlatform } from './mock-platform.js';
export { obsXmlError, verifyObsSignature } from './obs-verifier.js';
export {
  type MockBackup,
  type MockCheckpoint,
  type MockExport,
  type MockExportedObject,
  MockHuaweiState,
  type MockHuaweiStats,
  type MockJob,
  type MockServer,
  type MockVolume,
  type MockVolumeBackup,
} from './state.js';
