import { createFusionComputeConnector } from '@syncproxy/connector-fusioncompute';
import { createFusionComputeMockPlatform } from '@syncproxy/connector-fusioncompute/mock';
import { runConnectorContract } from '@syncproxy/testkit/vitest';

const MIB = 1024 * 1024;
// The VRM still says whole GB; a GB of this mock is 8 MiB, so the suite's byte-by-byte checks read
// megabytes, not gigabytes (with 1 GiB GBs this file took about a minute).
const GB_BYTES = 8 * MIB;
// Fast task polls: the mock ends a task after one `running` poll.
const fusionCompute = createFusionComputeConnector({ taskPollMs: 1, gbBytes: GB_BYTES });

runConnectorContract(fusionCompute, {
  platform: () => createFusionComputeMockPlatform({ gbBytes: GB_BYTES }),
  invalidConfigs: [
    { input: { url: 'http://vrm.example:7443', user: 'u', password: 'p' }, path: 'url' },
    { input: { url: 'https://vrm.example:7443', user: 'u' }, path: 'password' },
    { input: { url: 'https://admin:secret@vrm.example:7443', user: 'u', password: 'p' }, path: 'url' },
    { input: { url: 'https://vrm.example:7443', user: 'u', password: 'p', userType: '7' }, path: 'userType' },
  ],
});
