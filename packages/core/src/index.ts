// Contracts (spec v1)

export { listenForAbort, raceAbort, sleep } from './abortable.js';
export {
  removeStaleTemporaries,
  syncDirectory,
  type WriteFileAtomicOptions,
  writeFileAtomic,
} from './atomic-file.js';
// Attach-and-read kit (issue 14): locate an attached volume, read it, hold a mount slot
export { type DeviceReaderOptions, openDeviceReader } from './attach/device-reader.js';
export {
  acquireMountSlot,
  createLocalMountSlots,
  type LocalMountSlots,
  type LocalMountSlotsOptions,
} from './attach/local-mount-slots.js';
export { type LocateDeviceOptions, locateDevice } from './attach/locate-device.js';
export { mountSlotsFromScheduler, type SchedulerMountSlotsOptions } from './attach/scheduler-mount-slots.js';
export { type Clock, createManualClock, type ManualClock, setClockTimer, systemClock } from './clock.js';
export {
  boundedString,
  hasUserinfo,
  MAX_FIELD_CHARS,
  MAX_PEM_CHARS,
  MAX_URL_CHARS,
  type StringFieldOptions,
  type UrlFieldOptions,
  urlField,
} from './config/fields.js';
// Config forms and secrets
export { type ConfigIssue, parseConfig } from './config/parse-config.js';
export { collectSecrets, REDACTED, Redactor, redact } from './config/redact.js';
export { isSecret, type JsonSchema, SECRET_KEYWORDS, secret, toJSONSchema } from './config/secret.js';
export type {
  AnySourceConnector,
  ChangeTracking,
  ConnectorCapabilities,
  ConnectorContext,
  ConnectorSession,
  CreateSnapshotOptions,
  DeviceDirectories,
  Disk,
  DiskSnapshotRef,
  DisposableSession,
  Host,
  MountSlot,
  MountSlotProvider,
  MountSlotRequest,
  NetworkRequirement,
  OpenReaderOptions,
  PerHostLimits,
  PlatformStatus,
  PrecheckResult,
  SnapshotRef,
  SourceConnector,
  SpecVersion,
  SweepOptions,
  SweepReport,
  SweptResource,
} from './contracts/connector.js';
export { SUPPORTED_SPEC_VERSIONS } from './contracts/connector.js';
export type { LogFields, LogFn, Logger } from './contracts/logger.js';
export type {
  ChangedBlockReader,
  DisposableReader,
  Extent,
  ExtentKind,
  ReaderHints,
  ReadOptions,
  SyncWarning,
} from './contracts/reader.js';
// Proxy scheduler (issue 6): createProxyScheduler, state stores
export type {
  Assignment,
  AssignmentFilter,
  AssignOptions,
  HealthReport,
  HostLimits,
  ProxyHealth,
  ProxyInfo,
  ProxyLoad,
  ProxyRecord,
  ProxyScheduler,
  ProxySettings,
  RegisterProxyInput,
  SchedulerEvent,
  SchedulerState,
  StateChange,
  StateStore,
  StateUpdate,
  StrandedTask,
  SyncTask,
  UpdateSettingsOptions,
} from './contracts/scheduler.js';
export type { BlockSink, SinkWriteOptions } from './contracts/sink.js';
// Connectors and the registry
export {
  type ConnectorDefinition,
  defineConnector,
  type ResolvedConnectorContext,
} from './define-connector.js';
// Errors
export * from './errors/index.js';
// Host sync: the one way to sync a host into a target directory
export { imageFileName } from './host-sync/image-name.js';
export type { HostSyncPhase, HostSyncPhaseEvent } from './host-sync/phase-events.js';
export {
  type DiskSyncOptions,
  type DiskSyncOutcome,
  type DiskSyncStatus,
  type HostSyncEvent,
  type HostSyncMode,
  type HostSyncOptions,
  type HostSyncReport,
  type HostSyncWarning,
  syncDisk,
  syncHost,
  type VerifyTargetLevel,
} from './host-sync/sync-host.js';
export {
  type DiskSyncRecord,
  loadSyncState,
  type PendingDisk,
  type PendingSync,
  SYNC_STATE_FILE,
  type SyncMode,
  type SyncState,
  syncStatePath,
} from './host-sync/sync-state.js';
export type { TargetIdentity } from './host-sync/target-identity.js';
export { TARGET_LOCK_FILE, type TargetLockHolder } from './host-sync/target-lock.js';
// Logging
export { createJsonLogger, type LogLevel, redactingLogger, silentLogger } from './logger.js';
// Network
export { type CheckNetworkOptions, checkNetwork, type NetworkCheckResult } from './network/check-network.js';
export { createDispatcher, type DispatcherOptions, normalizeThumbprint } from './network/dispatcher.js';
export { type LookupCallback, overrideLookup } from './network/host-overrides.js';
export { importOptionalPeer, type OptionalPeer, requireOptionalPeer } from './optional-peer.js';
export { withReaderWarnings } from './reader-warnings.js';
export { ConnectorRegistry, type ConnectorSummary, createRegistry } from './registry.js';
export {
  backoffDelayMs,
  type RetryContext,
  type RetryOptions,
  type RetryPolicy,
  resolveRetryPolicy,
  withRetry,
} from './retry.js';
export { createFileStateStore, type FileStateStoreOptions } from './scheduler/file-store.js';
export { createMemoryStateStore } from './scheduler/memory-store.js';
export { syncStateIndex } from './scheduler/placement-index.js';
export {
  createProxyScheduler,
  DEFAULT_HEARTBEAT_TIMEOUT_MS,
  type ProxySchedulerOptions,
} from './scheduler/scheduler.js';
export {
  DEFAULT_PROXY_SETTINGS,
  HARD_MAX_MOUNTED_DISKS,
  MAX_HTTP_TIMEOUT_SEC,
  RECOMMENDED_MAX_MOUNTED_DISKS,
} from './scheduler/settings.js';
export { emptyState, parseStateJson, stateToJson } from './scheduler/state.js';
export { diskSnapshotOf } from './snapshot-ref.js';
export { isOldEnough, planSweep, type SweepCandidate, SweepLedger, type SweepPlan } from './sweep-options.js';
export { type PrepareTargetDirectoryOptions, prepareTargetDirectory } from './target-directory.js';
export { type CheckpointStore, FileCheckpointStore, type TransferCheckpoint } from './transfer/checkpoint.js';
export {
  type ChunkDigest,
  type ChunkHashAlgorithm,
  createChunkDigest,
  digestChunk,
} from './transfer/chunk-hash-algorithm.js';
export { ChunkHasher } from './transfer/chunk-hasher.js';
export { ChunkIntentLog, type ChunkIntents } from './transfer/chunk-intents.js';
// Transfer engine (issue 3): transferDisk, FileSink, hash-diff reader
export {
  TARGET_DIFFERS_FROM_MANIFEST,
  type TransferOptions,
  type TransferResult,
  transferDisk,
} from './transfer/engine.js';
export { FileSink, type FileSinkOptions } from './transfer/file-sink.js';
export {
  createHashDiffReader,
  type HashDiffReader,
  type HashDiffReaderOptions,
  type HashDiffStats,
} from './transfer/hash-diff-reader.js';
export {
  DiskManifest,
  type DiskManifestInit,
  FileManifestStore,
  type ManifestEntry,
  type ManifestStore,
  readManifest,
} from './transfer/manifest.js';
export type { ManifestChanges } from './transfer/manifest-journal.js';
export type { TransferProgress } from './transfer/progress.js';
export { TokenBucket, type TokenBucketOptions } from './transfer/token-bucket.js';
export { isAllZero, zeroFill } from './transfer/zero-detection.js';
export { ZeroRangeCheck, type ZeroRangeCheckOptions } from './transfer/zero-range-check.js';
