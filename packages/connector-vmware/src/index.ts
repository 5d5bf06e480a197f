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
  type VddkSessionFacts,
  vddkResolver,
} from './data-path.js';
export {
  type NbdkitPaths,
  type NbdkitProcess,
  type StartNbdkitOptions,
  startNbdkit,
} from './nbdkit-process.js';
export {
  type ChangedAreaQuery,
  changedAreaExtents,
  SECTOR_BYTES,
  VmwareDiskReader,
  type VmwareDiskReaderOptions,
} from './reader.js';
export type { VmwareDiskSnapshotData } from './session.js';
export { VimApiError, type VimApiErrorOptions } from './soap/vim-api-error.js';
export { MoRef, type XmlNode, type XmlValue } from './soap/xml.js';
export { type CertificateProbeOptions, certificateThumbprints } from './tls-probe.js';
export { type VddkOptions, type VddkTarget, vddkCommand } from './vddk.js';
