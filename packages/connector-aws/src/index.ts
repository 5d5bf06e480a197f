export { AwsApiError, type AwsApiErrorOptions } from './aws-api-error.js';
export {
  AwsClient,
  type AwsClientOptions,
  type AwsCredentials,
  type BlockPage,
  EBS_BLOCK_SIZE,
  type GetBlockInput,
  type ListBlocksInput,
  mapAwsError,
} from './client.js';
export {
  type AwsConfig,
  type AwsConfigInput,
  awsConfigSchema,
  awsProviderConfigSchema,
  defaultEndpoint,
  endpointFor,
  platformName,
} from './config.js';
export { type AwsConnectorOptions, aws, awsNetworkRequirements, createAwsConnector } from './connector.js';
export { type EbsReaderOptions, EbsSnapshotReader } from './reader.js';
export type { ReaderTuning, SnapshotWaitOptions } from './session.js';
export { SNAPSHOT_TAGS } from './sweep.js';
