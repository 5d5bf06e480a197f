import {
  type AnySourceConnector,
  type ConfigIssue,
  type ConnectorRegistry,
  createJsonLogger,
  type Logger,
  type LogLevel,
  SyncproxyError,
  silentLogger,
  toSyncproxyError,
} from '@syncproxy/core';
import type { CliIo } from './cli-io.js';
import { type ExitCode, exitCodeOf } from './exit-code.js';

/** What every command receives. */
export interface CommandContext {
  io: CliIo;
  registry: ConnectorRegistry;
  cwd: string;
}

/** The connector of `--platform`; an unknown id is bad usage (exit 2). */
export function connectorFor(context: CommandContext, platform: string): AnySourceConnector {
  try {
    return context.registry.get(platform);
  } catch (error) {
    if (!SyncproxyError.hasCode(error, 'not-found')) throw error;
    throw new SyncproxyError(error.message, { code: 'config', retryable: false, details: error.details });
  }
}

/** Options every command that prints results takes. */
export interface OutputOptions {
  json?: boolean;
  verbose?: boolean;
  /** The connector's logs on stderr from this level up (`--verbose` is `debug`). */
  logLevel?: LogLevel;
}

export function print(context: CommandContext, text: string): void {
  context.io.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

export function printJson(context: CommandContext, value: unknown): void {
  context.io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function note(context: CommandContext, text: string): void {
  context.io.stderr.write(`${text}\n`);
}

/**
 * Connector logs on stderr as JSON lines with `--log-level` or `--verbose` (debug), none otherwise;
 * already redacted by the connector wrapper.
 */
export function connectorLogger(context: CommandContext, options: OutputOptions): Logger {
  const level = options.logLevel ?? (options.verbose ? 'debug' : undefined);
  return level
    ? createJsonLogger({ level, write: (line) => context.io.stderr.write(`${line}\n`) })
    : silentLogger;
}

/**
 * Reports an error the way the CLI always does, and returns its exit code:
 * `error (<code>): <message>` and one line per config field on stderr, or
 * `{ ok: false, error }` on stdout with `--json`. Messages of SyncproxyErrors
 * from connectors are already free of secrets.
 */
export function reportError(context: CommandContext, error: unknown, options: OutputOptions): ExitCode {
  const mapped = toSyncproxyError(error);
  const code = exitCodeOf(mapped);
  if (options.json) {
    printJson(context, { ok: false, exitCode: code, error: mapped.toJSON() });
    return code;
  }
  const issues = configIssues(mapped);
  if (issues.length > 0) {
    const head = mapped.message.includes(': ')
      ? mapped.message.slice(0, mapped.message.indexOf(': '))
      : mapped.message;
    note(context, `error (${mapped.code}): ${head}`);
    for (const issue of issues) note(context, `  ${issue.path || '(root)'}: ${issue.message}`);
  } else {
    note(context, `error (${mapped.code}): ${mapped.message}`);
  }
  if (code === 130) note(context, 'interrupted: checkpoints are kept; run the same command again to resume');
  return code;
}

function configIssues(error: SyncproxyError): ConfigIssue[] {
  const issues = error.details?.issues;
  return SyncproxyError.hasCode(error, 'config') && Array.isArray(issues) ? (issues as ConfigIssue[]) : [];
}
