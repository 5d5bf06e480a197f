import { createVmwareConnector } from '@syncproxy/connector-vmware';
import { createVmwareMockPlatform, type MockVcenter, mockDataPath } from '@syncproxy/connector-vmware/mock';
import { runConnectorContract } from '@syncproxy/testkit/vitest';

let vcenter: MockVcenter | undefined;
// Snapshot data through a real nbdkit per disk snapshot; task polls every millisecond.
const vmware = createVmwareConnector({ dataPath: mockDataPath(() => vcenter), taskPollMs: 1 });

runConnectorContract(vmware, {
  platform: async () => {
    const platform = await createVmwareMockPlatform({ windowBytes: 1024 * 1024 });
    vcenter = platform.vcenter;
    return platform;
  },
  invalidConfigs: [
    { input: { url: 'http://vcenter.example.com', user: 'u', password: 'p' }, path: 'url' },
    { input: { url: 'https://vcenter.example.com', user: 'u' }, path: 'password' },
    {
      input: { url: 'https://vcenter.example.com', user: 'u', password: 'p', thumbprint: 'AB:CD' },
      path: 'thumbprint',
    },
  ],
});
