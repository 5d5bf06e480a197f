/** @deprecated import these from `@syncproxy/core`, where the host sync lives. */
export {
  type DiskSyncRecord,
  loadSyncState,
  type PendingSync,
  SYNC_STATE_FILE,
  type SyncMode,
  type SyncState,
} from '@syncproxy/core';
export { createCliRegistry } from './builtin-connectors.js';
export type { CliIo, CliOutput } from './cli-io.js';
export { processIo } from './cli-io.js';
export { ExitCode, exitCodeOf } from './exit-code.js';
export {
  createProgressDisplay,
  type ProgressDisplay,
  type ProgressDisplayOptions,
  silentProgress,
} from './progress-display.js';
export { CLI_VERSION, type RunCliOptions, runCli } from './run-cli.js';
export {
  type DiskSyncOutcome,
  type DiskSyncStatus,
  imageFileName,
  type SyncHostOptions,
  type SyncReport,
  syncHost,
} from './sync-host.js';
