import { createFusionComputeConnector } from '@syncproxy/connector-fusioncompute';
import { createFusionComputeMockPlatform } from '@syncproxy/connector-fusioncompute/mock';
import { runConnectorContract } from '@syncproxy/testkit/vitest';

// Fast task polls: the mock ends a task after one `running` poll.
const fusionCompute = createFusionComputeConnector({ taskPollMs: 1 });

runConnectorContract(fusionCompute, {
  platform: () => createFusionComputeMockPlatform(),
  // Volumes are whole GB on FusionCompute: the suite's disks become 1 GiB each.
  timeoutMs: 300_000,
  invalidConfigs: [
    { input: { url: 'http://vrm.example:7443', user: 'u', password: 'p' }, path: 'url' },
    { input: { url: 'https://vrm.example:7443', user: 'u' }, path: 'password' },
    { input: { url: 'https://admin:secret@vrm.example:7443', user: 'u', password: 'p' }, path: 'url' },
    { input: { url: 'https://vrm.example:7443', user: 'u', password: 'p', userType: '7' }, path: 'userType' },
  ],
});
