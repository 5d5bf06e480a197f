import { createOracleMockPlatform } from '@syncproxy/connector-oracle/mock';
import { runConnectorContract } from '@syncproxy/testkit';
import { connectorForMocks } from './helpers.js';

const { connector, bind } = connectorForMocks();

runConnectorContract(connector, {
  platform: async () => {
    const platform = await createOracleMockPlatform();
    bind(platform.oci);
    return platform;
  },
  invalidConfigs: [
    { input: { ...validShape(), tenancyId: 'ocid1.user.oc1..aaaa' }, path: 'tenancyId' },
    { input: { ...validShape(), fingerprint: '12:34' }, path: 'fingerprint' },
    { input: { ...validShape(), proxyInstanceId: 'i-123' }, path: 'proxyInstanceId' },
    { input: { ...validShape(), privateKey: undefined }, path: 'privateKey' },
  ],
});

function validShape() {
  return {
    tenancyId: 'ocid1.tenancy.oc1..aaaaaaaa',
    userId: 'ocid1.user.oc1..aaaaaaaa',
    fingerprint: '12:34:56:78:90:ab:cd:ef:12:34:56:78:90:ab:cd:ef',
    region: 'us-ashburn-1',
    privateKey: '-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n',
    proxyInstanceId: 'ocid1.instance.oc1.iad.aaaaaaaa',
    proxyAvailabilityDomain: 'Uocm:US-ASHBURN-AD-1',
  };
}
