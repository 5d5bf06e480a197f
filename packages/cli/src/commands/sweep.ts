import { planSweep, type SweptResource, SyncproxyError } from '@syncproxy/core';
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import {
  type CommandContext,
  connectorFor,
  connectorLogger,
  type OutputOptions,
  print,
  printJson,
} from '../command-context.js';
import { loadConfigFile } from '../config-file.js';
import { ExitCode } from '../exit-code.js';
import { renderTable } from '../table.js';

export interface SweepCommandOptions extends OutputOptions {
  platform: string;
  config: string;
  /** Milliseconds, from `--older-than 7d`. */
  olderThan: number;
  dryRun?: boolean;
  keep?: string[];
}

const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;
const DEFAULT_OLDER_THAN = '7d';

/** `7d`, `12h`, `30m`, `2w`, `90s`, or `0` (everything, whatever its age). */
export function parseAge(value: string): number {
  if (value === '0') return 0;
  const match = /^(\d+)([smhdw])$/.exec(value.trim());
  if (!match) throw new InvalidArgumentError('must be a number and a unit: 90s, 30m, 12h, 7d, 2w (or 0)');
  return Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
}

/** The `sweep` command on `program`, with the options every platform command takes. */
export function registerSweep(
  program: Command,
  platformOptions: (command: Command) => Command,
  action: <A extends unknown[]>(
    run: (context: CommandContext, ...args: A) => Promise<number> | number,
  ) => (...args: A) => Promise<void>,
): void {
  platformOptions(
    program
      .command('sweep')
      .description(
        'list, and unless --dry-run delete, the snapshots this SDK left on the platform (found by its tag), older than --older-than',
      ),
  )
    .option(
      '--older-than <age>',
      'only what is older than this (90s, 30m, 12h, 7d, 2w; 0: any age)',
      parseAge,
      parseAge(DEFAULT_OLDER_THAN),
    )
    .option('--dry-run', 'list only, delete nothing')
    .option(
      '--keep <id>',
      'a snapshot to keep whatever its age (repeat for several)',
      (value: string, previous?: string[]) => [...(previous ?? []), value],
    )
    .action(action((ctx, opts: SweepCommandOptions) => sweepCommand(ctx, opts)));
}

/** `syncproxy sweep`: what `session.sweep()` finds and deletes, as a table. */
export async function sweepCommand(context: CommandContext, options: SweepCommandOptions): Promise<ExitCode> {
  const connector = connectorFor(context, options.platform);
  const { input } = await loadConfigFile(connector, options.config, context.cwd);
  const session = await connector.connect(input, {
    logger: connectorLogger(context, options),
    ...(context.io.signal ? { signal: context.io.signal } : {}),
  });
  try {
    if (typeof session.sweep !== 'function') {
      throw new SyncproxyError(
        `connector ${connector.id} cannot sweep: it tags nothing it creates on the platform`,
        {
          code: 'unsupported',
          retryable: false,
        },
      );
    }
    const keep = options.keep ?? [];
    const report = await session.sweep({
      ...(options.olderThan > 0 ? { olderThan: new Date(Date.now() - options.olderThan) } : {}),
      dryRun: options.dryRun === true,
      keep,
      ...(context.io.signal ? { signal: context.io.signal } : {}),
    });
    if (options.json) {
      printJson(context, report);
      return ExitCode.ok;
    }
    const kept = planSweep({ keep });
    const action = (r: SweptResource) =>
      r.deleted ? 'deleted' : kept.isKept(r.id) ? 'kept' : options.dryRun ? 'would delete' : 'not deleted';
    const age = options.olderThan > 0 ? ` older than ${describeAge(options.olderThan)}` : '';
    print(context, `${report.resources.length} resource(s) made by syncproxy on ${options.platform}${age}`);
    if (report.resources.length > 0) {
      print(
        context,
        renderTable(report.resources, [
          { header: 'KIND', value: (r) => r.kind },
          { header: 'ID', value: (r) => r.id },
          { header: 'CREATED', value: (r) => r.createdAt ?? '-' },
          { header: 'ACTION', value: action },
        ]),
      );
    }
    const count = (what: string) => report.resources.filter((r) => action(r) === what).length;
    print(
      context,
      options.dryRun
        ? `dry run: ${count('would delete')} would be deleted, ${count('kept')} kept`
        : `${count('deleted')} deleted, ${count('kept')} kept`,
    );
    return ExitCode.ok;
  } finally {
    await session.close().catch(() => {});
  }
}

function describeAge(ms: number): string {
  for (const unit of ['d', 'h', 'm'] as const) {
    if (ms % UNIT_MS[unit] === 0) return `${ms / UNIT_MS[unit]}${unit}`;
  }
  return `${ms / 1000}s`;
}
