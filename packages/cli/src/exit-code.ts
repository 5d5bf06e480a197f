import { SyncproxyError } from '@syncproxy/core';

/** The exit codes of `syncproxy`. */
export const ExitCode = {
  ok: 0,
  /** The work failed (platform, network, integrity...), or a check did not pass. */
  failure: 1,
  /** Bad usage or an invalid config: nothing was attempted. */
  usage: 2,
  /** Stopped by Ctrl-C (128 + SIGINT): checkpoints are kept, the same command resumes. */
  interrupted: 130,
  /** Stopped by SIGTERM (128 + 15): as `interrupted`, checkpoints are kept. */
  terminated: 143,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** The exit code an error ends the command with. */
export function exitCodeOf(error: unknown): ExitCode {
  if (SyncproxyError.hasCode(error, 'config')) return ExitCode.usage;
  if (SyncproxyError.hasCode(error, 'aborted')) return ExitCode.interrupted;
  return ExitCode.failure;
}
