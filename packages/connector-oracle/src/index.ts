export {
  type CallSpec,
  mapOciError,
  type NotFoundMeaning,
  type OciVolumeAttachment,
  OracleClient,
  type OracleClientOptions,
  sdkHttpOptions,
} from './client.js';
export {
  defaultEndpoint,
  endpointFor,
  type OracleConfig,
  type OracleConfigInput,
  type OracleService,
  oracleConfigSchema,
  platformName,
} from './config.js';
export {
  createOracleConnector,
  type OracleConnectorOptions,
  oracle,
  oracleNetworkRequirements,
} from './connector.js';
export { IscsiadmInitiator, type IscsiInitiator, type IscsiTarget } from './iscsi-initiator.js';
export type { LifecycleWaitOptions } from './lifecycle-wait.js';
export {
  MAX_SCAN_WINDOW_BYTES,
  type MappedRangeScanner,
  normalizeRanges,
  type ScanOptions,
  SgLbaStatusScanner,
} from './mapped-range-scanner.js';
export {
  ATTACHMENT_PREFIX,
  type OracleDiskSnapshotData,
  type ProxyHostTools,
  SDK_TAGS,
  SNAPSHOT_TAG,
} from './session.js';
export { changeBlockSizeFor } from './volume-reader.js';
