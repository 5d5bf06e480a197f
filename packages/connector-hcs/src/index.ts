export {
  type HcsConfig,
  type HcsConfigInput,
  hcsConfigSchema,
  identityUrlOf,
  loginScopeOf,
  type StorageConfig,
  storageSchema,
} from './config.js';
export { createHcsConnector, type HcsConnectorOptions, hcs, hcsNetworkRequirements } from './connector.js';
export {
  DORADO_ERROR,
  DORADO_TYPE,
  DoradoClient,
  type DoradoClientOptions,
  DoradoError,
  type DoradoLun,
  type DoradoNamed,
  type DoradoSnapshot,
  type DoradoSystem,
} from './dorado-client.js';
export {
  type CatalogEntry,
  type EcsServer,
  type EvsVolume,
  HcsClient,
  type HcsClientOptions,
  type HcsService,
  SERVICE_TYPES,
  SUPPORTED_HCS_RELEASE,
} from './hcs-client.js';
export { lunNameOf } from './lun-name.js';
export {
  type HcsDiskSnapshotData,
  HcsSession,
  type HcsSessionOptions,
  SDK_DESCRIPTION,
  SDK_PREFIX,
  SUPPORTED_DORADO_MODELS,
} from './session.js';
