import { resolve } from 'node:path';
import { prepareTargetDirectory, SyncproxyError } from '@syncproxy/core';
import {
  type CommandContext,
  connectorFor,
  connectorLogger,
  note,
  print,
  printJson,
} from '../command-context.js';
import { loadConfigFile } from '../config-file.js';
import { ExitCode } from '../exit-code.js';
import { formatBytes, formatDuration, formatRate } from '../human-units.js';
import { createProgressDisplay, type ProgressDisplay, silentProgress } from '../progress-display.js';
import { type SyncReport, syncHost } from '../sync-host.js';
import { renderTable } from '../table.js';
import type { PlatformOptions } from './hosts.js';

export interface SyncCommandOptions extends PlatformOptions {
  host: string;
  disk?: string[];
  target: string;
  incremental?: boolean;
  full?: boolean;
  verifyTarget?: 'identity' | 'manifest';
  checkpointChunks?: number;
  parallel?: number;
  /** Plain progress lines at most this often, ms. */
  progressInterval?: number;
  quiet?: boolean;
  /** `--verify`: read each image back and compare (syncHost's `verify`). */
  verify?: boolean;
  /** `--bandwidth-limit`, bytes per second (syncHost's `bandwidthLimitBytesPerSec`). */
  bandwidthLimitBytesPerSec?: number;
  /** `--quiesce` (syncHost's `quiesce`). */
  quiesce?: boolean;
  /** `--concurrency`: reads in flight per disk (syncHost's `concurrency`). */
  concurrency?: number;
}

/** The progress display a command uses: bars on a TTY, periodic lines otherwise, none with --quiet. */
export function progressFor(
  context: CommandContext,
  options: { quiet?: boolean; progressInterval?: number },
): ProgressDisplay {
  if (options.quiet) return silentProgress;
  return createProgressDisplay({
    output: context.io.stderr,
    ...(options.progressInterval !== undefined ? { plainIntervalMs: options.progressInterval } : {}),
  });
}

/** `syncproxy sync`: snapshot the host, then each disk into `<target>/<disk>.raw`, resumable. */
export async function syncCommand(context: CommandContext, options: SyncCommandOptions): Promise<ExitCode> {
  if (options.incremental && options.full) {
    throw new SyncproxyError('--incremental and --full exclude each other', {
      code: 'config',
      retryable: false,
    });
  }
  const connector = connectorFor(context, options.platform);
  const { input } = await loadConfigFile(connector, options.config, context.cwd);
  const target = resolve(context.cwd, options.target);
  await prepareTargetDirectory(target);
  const signal = context.io.signal;
  const session = await connector.connect(input, {
    logger: connectorLogger(context, options),
    ...(signal ? { signal } : {}),
  });
  let report: SyncReport;
  try {
    report = await syncHost({
      session,
      platform: connector.id,
      hostId: options.host,
      ...(options.disk && options.disk.length > 0 ? { diskIds: options.disk } : {}),
      target,
      mode: options.incremental ? 'incremental' : options.full ? 'full' : 'auto',
      ...(options.verifyTarget ? { verifyTarget: options.verifyTarget } : {}),
      ...(options.verify ? { verify: true } : {}),
      ...(options.quiesce ? { quiesce: true } : {}),
      ...(options.bandwidthLimitBytesPerSec !== undefined
        ? { bandwidthLimitBytesPerSec: options.bandwidthLimitBytesPerSec }
        : {}),
      ...(options.concurrency !== undefined ? { concurrency: options.concurrency } : {}),
      progress: progressFor(context, options),
      ...(signal ? { signal } : {}),
      ...(options.checkpointChunks !== undefined ? { checkpointEveryChunks: options.checkpointChunks } : {}),
      ...(options.parallel !== undefined ? { parallelDisks: options.parallel } : {}),
      notify: options.quiet ? () => {} : (line) => note(context, line),
      snapshotLabel: 'syncproxy-cli',
    });
  } finally {
    await session.close().catch(() => {});
  }
  return printSyncReport(context, report, options.json === true);
}

/** Prints a sync's report (summary table or JSON) and returns the exit code it means. */
export function printSyncReport(context: CommandContext, report: SyncReport, json: boolean): ExitCode {
  const code = report.ok ? ExitCode.ok : report.interrupted ? ExitCode.interrupted : ExitCode.failure;
  if (json) {
    printJson(context, {
      ...report,
      exitCode: code,
      disks: report.disks.map((d) => ({ ...d, error: d.error?.toJSON() })),
    });
    return code;
  }
  print(
    context,
    `\n${report.mode} sync of ${report.hostId} (${report.hostName}), snapshot ${report.snapshotId}${report.resumed ? ', resumed' : ''}`,
  );
  print(context, summaryTable(report));
  for (const disk of report.disks) {
    if (disk.error) note(context, `error (${disk.error.code}) on ${disk.diskId}: ${disk.error.message}`);
  }
  for (const warning of report.warnings) note(context, `warning (${warning.code}): ${warning.message}`);
  if (report.deletedSnapshots.length > 0) {
    print(context, `deleted snapshot(s) no image needs any more: ${report.deletedSnapshots.join(', ')}`);
  }
  if (report.ok) {
    print(
      context,
      `state: ${report.statePath} (snapshot ${report.snapshotId} kept as the next incremental's base)`,
    );
  } else if (report.interrupted) {
    note(context, 'interrupted: checkpoints are kept; run the same command again to resume');
  } else {
    note(context, 'sync FAILED: run the same command again to resume what is not done');
  }
  return code;
}

function summaryTable(report: SyncReport): string {
  return renderTable(report.disks, [
    { header: 'DISK', value: (d) => d.diskId },
    { header: 'STATUS', value: (d) => d.status },
    { header: 'SIZE', value: (d) => formatBytes(d.sizeBytes), align: 'right' },
    { header: 'READ', value: (d) => (d.result ? formatBytes(d.result.bytesRead) : '-'), align: 'right' },
    {
      header: 'WRITTEN',
      value: (d) => (d.result ? formatBytes(d.result.bytesWritten) : '-'),
      align: 'right',
    },
    { header: 'ZEROED', value: (d) => (d.result ? formatBytes(d.result.zeroBytes) : '-'), align: 'right' },
    {
      header: 'RESUMED',
      value: (d) => (d.result ? (d.result.resumed ? `${d.result.chunksSkipped} chunks` : 'no') : '-'),
      align: 'right',
    },
    { header: 'TIME', value: (d) => (d.result ? formatDuration(d.result.durationMs) : '-'), align: 'right' },
    {
      header: 'RATE',
      value: (d) => (d.result ? formatRate(d.result.throughputBytesPerSec) : '-'),
      align: 'right',
    },
    { header: 'IMAGE', value: (d) => d.path },
  ]);
}
