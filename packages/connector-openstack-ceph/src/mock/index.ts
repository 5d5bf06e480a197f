// The mock OpenStack (Keystone, Nova, Cinder) over a real test Ceph.
import { requireMockPeers } from './peers.js';

requireMockPeers();

export { adminRbd, type MockCephCluster } from './ceph-admin.js';
export { type DiffStream, type DiffStreamRecord, encodeExportDiff, u32, u64 } from './export-diff-writer.js';
export {
  type MockImageBootedHostSpec,
  type MockOpenstack,
  type MockOpenstackOptions,
  startMockOpenstack,
} from './mock-openstack.js';
export {
  type MockOpenstackState,
  type MockServerEntry,
  type MockSnapshot,
  type MockVolume,
  openstackRoutes,
} from './openstack-api.js';
