import { createHcsConnector } from '@syncproxy/connector-hcs';
import { createHcsMockPlatform } from '@syncproxy/connector-hcs/mock';
import { runConnectorContract } from '@syncproxy/testkit/vitest';

const MIB = 1024 * 1024;
// EVS still says whole GB; a GB of this mock is 8 MiB, so the suite's byte-by-byte checks read
// megabytes, not gigabytes (a 1 GiB GB took 95-190 s here).
const GB_BYTES = 8 * MIB;

runConnectorContract(createHcsConnector({ locateTimeoutMs: 5000, chunkSizeBytes: MIB, gbBytes: GB_BYTES }), {
  platform: () => createHcsMockPlatform({ gbBytes: GB_BYTES }),
  invalidConfigs: [
    { input: { ...validShape(), iamUrl: 'iam.example.com' }, path: 'iamUrl' },
    { input: { ...validShape(), region: 'Mexico City 1' }, path: 'region' },
    // Found by fuzzing: an unparsable Dorado URL threw a TypeError from the path check.
    {
      input: { ...validShape(), storages: [{ ...validShape().storages[0], url: '' }] },
      path: 'storages.0.url',
    },
    {
      input: { ...validShape(), iamUrl: 'https://admin:secret@iam-apigateway-proxy.hcs.example.com/v3' },
      path: 'iamUrl',
    },
    { input: { ...validShape(), projectName: 'x'.repeat(5000) }, path: 'projectName' },
    { input: { ...validShape(), storages: [] }, path: 'storages' },
    {
      input: { ...validShape(), storages: [{ ...validShape().storages[0], type: 'OCEANSTOR' }] },
      path: 'storages.0.type',
    },
    {
      input: { ...validShape(), storages: [{ ...validShape().storages[0], userType: 'AD' }] },
      path: 'storages.0.userType',
    },
  ],
});

function validShape() {
  return {
    iamUrl: 'https://iam-apigateway-proxy.hcs.example.com/v3',
    tenantId: 'a1b2c3',
    user: 'admin',
    password: 'secret',
    projectDomainId: 'a1b2c3',
    projectName: 'mx-ags-1_migration',
    region: 'mx-ags-1',
    proxy: { hostName: 'proxy-01', initiators: ['iqn.1994-05.com.redhat:proxy'] },
    storages: [
      { type: 'DORADO', url: 'https://192.168.1.10:8088', user: 'admin', password: 'pw', userType: 'local' },
    ],
  };
}
