import { createHuaweiCloudMockPlatform } from '@syncproxy/connector-huaweicloud/mock';
import { runConnectorContract } from '@syncproxy/testkit/vitest';
import { fastConnector, INVALID_CONFIGS } from './connector.js';

// The white-listed path: CBR snapshot data export to OBS, read with ranged GETs.
// EVS sizes are whole GB: the suite's disks become 1 GiB each.
runConnectorContract(fastConnector({ dataPath: 'export' }), {
  name: 'connector contract v1: huaweicloud (snapshot data export)',
  platform: () => createHuaweiCloudMockPlatform({ exportEnabled: true }),
  timeoutMs: 600_000,
  invalidConfigs: INVALID_CONFIGS,
});
