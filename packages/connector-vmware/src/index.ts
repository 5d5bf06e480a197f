export {
  type DiskChangeInfo,
  type ObjectProperties,
  SESSION_COOKIE,
  type ServiceContent,
  VimClient,
  type VimClientOptions,
} from './client.js';
export { apiEndpoint, type VmwareConfig, type VmwareConfigInput, vmwareConfigSchema } from './config.js';
export {
  createVmwareConnector,
  type VmwareConnectorOptions,
  vmware,
  vmwareNetworkRequirements,
} from './connector.js';
export {
  type DataEndpoint,
  type DataPathOption,
  type DataPathResolver,
  type DiskDataTarget,
  templateResolver,
  vddkResolver,
} from './data-path.js';
export {
  type NbdkitPaths,
  type NbdkitProcess,
  type StartNbdkitOptions,
  startNbdkit,
} from './nbdkit-process.js';
export { type ChangedAreaQuery, changedAreaExtents, SECTOR_BYTES, VmwareDiskReader } from './reader.js';
export type { VmwareDiskSnapshotData } from './session.js';
export { VimApiError, type VimApiErrorOptions } from './soap/vim-api-error.js';
export { MoRef } from './soap/xml.js';
export { certificateThumbprints } from './tls-probe.js';
export { type VddkOptions, type VddkTarget, vddkCommand } from './vddk.js';
