import { createOpenstackCephConnector } from '@syncproxy/connector-openstack-ceph';
import { startMockOpenstack } from '@syncproxy/connector-openstack-ceph/mock';
import { runConnectorContract } from '@syncproxy/testkit/vitest';
import { afterAll, beforeAll } from 'vitest';
import { type CephCluster, startCephCluster, stopCephCluster } from './fixtures/ceph-cluster.js';

// The contract suite against the mock OpenStack, with the volumes in a real Ceph.
let cluster: CephCluster | undefined;
beforeAll(() => {
  cluster = startCephCluster();
});
afterAll(() => stopCephCluster(cluster));

const connector = createOpenstackCephConnector({ pollDelaysMs: [0, 10, 50] });

for (const incrementalMode of ['rbd-diff', 'rbd-du'] as const) {
  runConnectorContract(connector, {
    name: `connector contract v1: openstack-ceph (${incrementalMode})`,
    platform: () => startMockOpenstack({ ceph: cluster!, incrementalMode }),
    invalidConfigs: [
      {
        input: {
          ...validShape(),
          cephClusters: [{ monitors: 'not a monitor!', pool: 'volumes', keyring: 'x' }],
        },
        path: 'cephClusters.0.monitors',
      },
      {
        input: { ...validShape(), cephClusters: [{ monitors: '127.0.0.1', pool: 'volumes', cephx: true }] },
        path: 'cephClusters.0.keyring',
      },
    ],
  });
}

function validShape() {
  return { authUrl: 'http://127.0.0.1:5000/v3', user: 'u', password: 'p', projectName: 'demo' };
}
