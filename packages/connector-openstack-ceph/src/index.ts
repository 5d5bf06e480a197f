// Ceph RBD data path
export { parseRbdDiffJson, type RbdDiffEntry } from './ceph/diff-json.js';
export { type ExportDiffRecord, type ParseExportDiffOptions, parseExportDiff } from './ceph/export-diff.js';
export { monitorsProblem, normaliseMonitor, parseMonitors } from './ceph/monitors.js';
export {
  type CephClientAccess,
  keyOfKeyring,
  RbdCli,
  type RbdCliOptions,
  type RbdProcess,
  type RbdRunOptions,
} from './ceph/rbd-cli.js';
export {
  type IncrementalMode,
  type RbdImageInfo,
  type RbdImageRef,
  rbdDiffExtents,
  rbdExportDiff,
  rbdImageInfo,
} from './ceph/rbd-image.js';
export { type OpenRbdReaderOptions, openRbdReader } from './ceph/rbd-reader.js';
export {
  type CephClusterConfig,
  cephClusterSchema,
  type OpenstackCephConfig,
  type OpenstackCephConfigInput,
  openstackCephConfigSchema,
} from './config.js';
// The connector
export {
  createOpenstackCephConnector,
  openstackCeph,
  openstackCephNetworkRequirements,
  VERSION,
} from './connector.js';
export {
  type CinderSnapshot,
  type CinderVolume,
  type NovaServer,
  OpenstackClient,
  type OpenstackClientOptions,
} from './openstack/client.js';
export type { SessionOptions } from './session.js';
export { SNAPSHOT_METADATA } from './sweep.js';
