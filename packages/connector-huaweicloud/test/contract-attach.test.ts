import { createHuaweiCloudMockPlatform } from '@syncproxy/connector-huaweicloud/mock';
import { runConnectorContract } from '@syncproxy/testkit/vitest';
import { fastConnector, INVALID_CONFIGS } from './connector.js';

// An account that is not white-listed: the connector detects the refusal and
// falls back to a volume made from the backup, attached to the proxy, read as a device.
runConnectorContract(fastConnector(), {
  name: 'connector contract v1: huaweicloud (attach-and-hash fallback)',
  platform: () => createHuaweiCloudMockPlatform({ exportEnabled: false }),
  timeoutMs: 600_000,
  invalidConfigs: INVALID_CONFIGS,
});
