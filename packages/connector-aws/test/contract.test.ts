import { createAwsConnector } from '@syncproxy/connector-aws';
import { createAwsMockPlatform } from '@syncproxy/connector-aws/mock';
import { runConnectorContract } from '@syncproxy/testkit/vitest';

// Fast snapshot polls and retries: the mock completes snapshots after two polls and never sleeps.
const aws = createAwsConnector({
  snapshotWait: { initialDelayMs: 1 },
  retry: { baseDelayMs: 1, maxDelayMs: 10 },
});

runConnectorContract(aws, {
  platform: () => createAwsMockPlatform(),
  // Volumes are whole GiB on EC2: the suite's disks become 1 GiB each, about 256 MiB written.
  timeoutMs: 300_000,
  invalidConfigs: [
    {
      input: { accessKeyId: 'AKIAMOCKSYNCPROXY001', secretAccessKey: 's', region: 'nowhere' },
      path: 'region',
    },
    { input: { accessKeyId: 'AKIAMOCKSYNCPROXY001', region: 'us-east-1' }, path: 'secretAccessKey' },
  ],
});
