export { VOLUME_METADATA } from './attached-volume.js';
export {
  type ListedObject,
  ObsBucket,
} from './bucket.js';
export {
  type ApiCall,
  apiError,
  type Headers,
  HuaweiClient,
  type HuaweiClientOptions,
  type ObsCall,
  obsError,
} from './client.js';
export {
  type CbrBackup,
  type CbrCheckpoint,
  type CbrVault,
  type EcsServer,
  type EvsVolume,
  HuaweiCloudApi,
  type Job,
  type PollOptions,
} from './cloud-api.js';
export {
  defaultEndpoint,
  endpointFor,
  type HuaweiCloudConfig,
  type HuaweiCloudConfigInput,
  type HuaweiService,
  huaweiCloudConfigSchema,
  platformName,
} from './config.js';
export {
  createHuaweiCloudConnector,
  type HuaweiCloudConnectorOptions,
  huaweiCloudNetworkRequirements,
  huaweicloud,
} from './connector.js';
export { ExportReader, type ExportReaderOptions } from './export-reader.js';
export { HuaweiApiError } from './huawei-api-error.js';
export { type ObsSignatureInput, obsAuthorization, obsStringToSign } from './obs-signature.js';
export { CHECKPOINT_MARK, type DataPath } from './session.js';
export { type AccessKey, type SignableRequest, signRequest } from './signer.js';
export {
  CbrSnapshotDataExporter,
  DEFAULT_NOT_ENABLED_CODES,
  EXPORT_REGIONS,
  type ExportedObject,
  type ExportRequest,
  isExportNotEnabled,
  type SnapshotDataExport,
  type SnapshotDataExporter,
} from './snapshot-export.js';
export { EXPORT_PREFIX } from './sweep.js';
