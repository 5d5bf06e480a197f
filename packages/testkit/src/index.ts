// The connector contract suite, runner-free. Its vitest suite is `@syncproxy/testkit/vitest`, the
// mock-platform kit `@syncproxy/testkit/mock`.
export {
  type FuzzConfigReport,
  type FuzzConfigSchemaOptions,
  fuzzConfigSchema,
} from './contract/config-fuzz.js';
export {
  type AnyConnector,
  type ConnectorContract,
  type ConnectorContractOptions,
  type ContractReport,
  type ContractStep,
  type ContractStepResult,
  ContractViolation,
  checkConnectorContract,
  createConnectorContract,
} from './contract/connector-contract.js';
export {
  describeExtent,
  type ExtentBounds,
  extentProblems,
  uncoveredRanges,
} from './contract/extent-checks.js';
export { RecordingReader } from './contract/recording-reader.js';
export {
  captureResources,
  leakedResources,
  type ResourceCounts,
  waitForResourcesToSettle,
} from './contract/resource-leaks.js';
export type { MockHostRef, MockHostSpec, MockPlatform } from './mock/mock-platform.js';
