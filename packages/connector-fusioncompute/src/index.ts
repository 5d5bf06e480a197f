export { BackupLease, type BackupLeaseOptions, MAX_BACKUP_LIFETIME_SEC } from './backup-lease.js';
export {
  appendBitmapExtents,
  type BitmapEncoding,
  decodeBitmap,
  encodeBitmap,
} from './cbt-bitmap.js';
export { type ChangedBlocksInput, listChangedExtents } from './changed-blocks.js';
export {
  type FcBackupResource,
  type FcCbtPage,
  type FcClientOptions,
  type FcHost,
  type FcSite,
  type FcSnapshot,
  type FcTask,
  type FcTaskRef,
  type FcVm,
  type FcVmDisk,
  type FcVolSnapshot,
  FusionComputeClient,
} from './client.js';
export {
  CNA_DATA_PORT,
  type FusionComputeAdvanced,
  type FusionComputeConfig,
  type FusionComputeConfigInput,
  fusionComputeConfigSchema,
  VRM_PORT,
  vrmBaseUrl,
  vrmEndpoint,
} from './config.js';
export {
  createFusionComputeConnector,
  type FusionComputeConnectorOptions,
  fusionCompute,
  fusionComputeNetworkRequirements,
  platformHostOf,
} from './connector.js';
export { type DataRequest, type DataRequestShape, defaultDataRequest } from './data-request.js';
export {
  classifyErrorCode,
  DEFAULT_ERROR_CODES,
  FcApiError,
  type FcApiErrorOptions,
  type FcErrorCodes,
} from './fc-api-error.js';
export {
  CnaLimiter,
  HostLimits,
  MAX_BACKUP_CONNECTIONS_PER_HOST,
  MAX_VOLUMES_IN_BACKUP_PER_HOST,
  type VolumeSlot,
} from './host-limits.js';
export { type FcReaderOptions, FcSnapshotReader } from './reader.js';
export { MAX_SNAPSHOTS_PER_VM, SNAPSHOT_STATES } from './rules.js';
export { type FcSessionOptions, FusionComputeSession } from './session.js';
export { fcTimeToIso, SWEEP_TAG, sweepFusionCompute } from './sweep.js';
