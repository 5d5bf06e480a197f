import { createOracleMockPlatform, type OracleMockPlatform } from '@syncproxy/connector-oracle/mock';
import { runConnectorContract } from '@syncproxy/testkit/vitest';
import { afterAll, expect } from 'vitest';
import { connectorForMocks } from './helpers.js';

const { connector, bind } = connectorForMocks();
let used: OracleMockPlatform | undefined;

runConnectorContract(connector, {
  platform: async () => {
    const platform = await createOracleMockPlatform();
    bind(platform.oci);
    used = platform;
    return platform;
  },
  invalidConfigs: [
    { input: { ...validShape(), tenancyId: 'ocid1.user.oc1..aaaa' }, path: 'tenancyId' },
    { input: { ...validShape(), fingerprint: '12:34' }, path: 'fingerprint' },
    { input: { ...validShape(), proxyInstanceId: 'i-123' }, path: 'proxyInstanceId' },
    { input: { ...validShape(), privateKey: undefined }, path: 'privateKey' },
  ],
});

// The suite's incremental went through backup-delta volumes over iSCSI, and left nothing behind.
afterAll(() => {
  const state = used!.oci.state;
  const deltas = [...state.volumes.values()].filter((v) => v.isDelta);
  expect(deltas.length).toBeGreaterThan(0);
  expect(state.stats.iscsiLogins).toBe(state.stats.iscsiLogouts);
  expect(state.stats.iscsiLogins).toBeGreaterThan(0);
  expect(state.liveCloneVolumes()).toEqual([]);
  expect(state.liveAttachments().filter((a) => a.instanceId === used!.oci.proxyInstanceId)).toEqual([]);
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
