// Contracts (spec v1)
export type {
  AnySourceConnector,
  ChangeTracking,
  ConnectorCapabilities,
  ConnectorContext,
  ConnectorSession,
  CreateSnapshotOptions,
  Disk,
  DiskSnapshotRef,
  Host,
  NetworkRequirement,
  OpenReaderOptions,
  PlatformStatus,
  PrecheckResult,
  SnapshotRef,
  SourceConnector,
  SpecVersion,
} from './contracts/connector.js';
export { SUPPORTED_SPEC_VERSIONS } from './contracts/connector.js';
export type { LogFields, Logger } from './contracts/logger.js';
export type { ChangedBlockReader, Extent, ExtentKind, ReadOptions, SyncWarning } from './contracts/reader.js';
export type { BlockSink, SinkWriteOptions } from './contracts/sink.js';
export type {
  Assignment,
  AssignOptions,
  ProxyHealth,
  ProxyInfo,
  ProxyLoad,
  ProxyScheduler,
  ProxySettings,
  RegisterProxyInput,
  SchedulerEvent,
  SyncTask,
} from './contracts/scheduler.js';

// Connectors and the registry
export { type ConnectorDefinition, defineConnector, type ResolvedConnectorContext } from './define-connector.js';
export { type ConnectorSummary, ConnectorRegistry, createRegistry } from './registry.js';

// Config forms and secrets
export { type ConfigIssue, parseConfig } from './config/parse-config.js';
export { collectSecrets, REDACTED, Redactor, redact } from './config/redact.js';
export { isSecret, type JsonSchema, SECRET_KEYWORDS, secret, toJSONSchema } from './config/secret.js';

// Errors
export * from './errors/index.js';

// Logging
export { createJsonLogger, type LogLevel, redactingLogger, silentLogger } from './logger.js';

// Network
export { type CheckNetworkOptions, checkNetwork, type NetworkCheckResult } from './network/check-network.js';
export { createDispatcher, type DispatcherOptions, normalizeThumbprint } from './network/dispatcher.js';
export { type LookupCallback, overrideLookup } from './network/host-overrides.js';

// Transfer engine (issue 3): transferDisk, FileSink, hash-diff reader

// Proxy scheduler (issue 6): createProxyScheduler, state stores
