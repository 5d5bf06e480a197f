import type { ConnectorRegistry } from '@syncproxy/core';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { createCliRegistry } from './builtin-connectors.js';
import type { CliIo } from './cli-io.js';
import { type CommandContext, type OutputOptions, reportError } from './command-context.js';
import { checkPlatform } from './commands/check.js';
import { printCompletion } from './commands/completion.js';
import { listConnectors } from './commands/connectors.js';
import { runDemo } from './commands/demo.js';
import { listHosts } from './commands/hosts.js';
import { planSync } from './commands/plan.js';
import { runPrechecks } from './commands/prechecks.js';
import { printSchema } from './commands/schema.js';
import { registerSweep } from './commands/sweep.js';
import { syncCommand } from './commands/sync.js';
import { ExitCode } from './exit-code.js';

/** Kept in step with package.json by the release. */
export const CLI_VERSION = '0.1.0';

export interface RunCliOptions {
  /** The connectors the commands know (default: the ones the CLI ships: aws, openstack-ceph, vmware, localdisk). */
  registry?: ConnectorRegistry;
}

function positiveInteger(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

const RATE_UNITS: Record<string, number> = {
  '': 1,
  k: 1e3,
  m: 1e6,
  g: 1e9,
  ki: 1024,
  mi: 1024 ** 2,
  gi: 1024 ** 3,
};

/** `--bandwidth-limit`: bytes per second, `100M` / `1.5GiB` / `800KiB/s` (k/M/G decimal, Ki/Mi/Gi binary). */
export function parseByteRate(value: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([kmg]i?)?b?(?:\/s)?$/i.exec(value.trim());
  const unit = RATE_UNITS[(match?.[2] ?? '').toLowerCase()];
  const bytes = match && unit !== undefined ? Math.floor(Number(match[1]) * unit) : Number.NaN;
  if (!Number.isSafeInteger(bytes) || bytes < 1) {
    throw new InvalidArgumentError('a rate such as 100M, 1.5GiB or 800KiB/s (bytes per second)');
  }
  return bytes;
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/**
 * Runs `syncproxy` with `argv` (the arguments after the program name) and
 * resolves with its exit code: 0 ok, 1 failure, 2 bad usage or config, 130
 * interrupted. Never throws and never exits the process: an embedding program
 * or a test passes its own streams and AbortSignal.
 */
export async function runCli(
  argv: readonly string[],
  io: CliIo,
  options: RunCliOptions = {},
): Promise<number> {
  let exitCode: number = ExitCode.ok;
  let registry: ConnectorRegistry;
  const context = (): CommandContext => {
    registry ??= options.registry ?? createCliRegistry();
    return { io, registry, cwd: io.cwd ?? process.cwd() };
  };
  const action =
    <A extends unknown[]>(run: (context: CommandContext, ...args: A) => Promise<number> | number) =>
    async (...args: A) => {
      const command = args[args.length - 1] as Command;
      const opts = command.opts<OutputOptions>();
      const ctx = context();
      try {
        exitCode = await run(ctx, ...args);
      } catch (error) {
        exitCode = reportError(ctx, error, opts);
      }
    };

  const program = new Command('syncproxy')
    .description(
      'Agentless disk sync: read VM disks from a source platform (fully, then only changed blocks) into raw images',
    )
    .version(CLI_VERSION)
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
    })
    .showHelpAfterError('(run syncproxy --help for usage)');

  const platformOptions = (command: Command) =>
    command
      .requiredOption('-p, --platform <id>', 'connector id (see `syncproxy connectors`)')
      .requiredOption(
        '-c, --config <file>',
        'the platform config, a JSON file or - for stdin (see `syncproxy schema <platform>`); secret fields also from SYNCPROXY_<FIELD> or SYNCPROXY_<FIELD>_FILE, which win over the file',
      )
      .option('--json', 'machine-readable output on stdout')
      .option('-v, --verbose', "the connector's logs on stderr, as JSON lines (--log-level debug)")
      .addOption(
        new Option('--log-level <level>', "the connector's logs on stderr from this level up").choices([
          'debug',
          'info',
          'warn',
          'error',
        ]),
      );

  program
    .command('connectors')
    .description('the registered connectors, their versions and capabilities')
    .option('--json', 'machine-readable output on stdout')
    .action(action((ctx, opts: OutputOptions) => listConnectors(ctx, opts)));

  program
    .command('schema')
    .description("the JSON Schema of a platform's config form")
    .argument('<platform>', 'connector id')
    .action(action((ctx, platform: string) => printSchema(ctx, platform)));

  platformOptions(
    program
      .command('check')
      .description(
        'validate a config, test the network path to every endpoint, check credentials, count hosts',
      ),
  )
    .option('--timeout-ms <ms>', 'per endpoint of the network preflight', positiveInteger, 5000)
    .action(action((ctx, opts) => checkPlatform(ctx, opts as Parameters<typeof checkPlatform>[1])));

  platformOptions(
    program.command('hosts').description("the platform's VMs or instances and their disks"),
  ).action(action((ctx, opts) => listHosts(ctx, opts as Parameters<typeof listHosts>[1])));

  platformOptions(
    program
      .command('prechecks')
      .description("the platform's numbered checks of a host before a sync (exit 1 when one fails)"),
  )
    .requiredOption('--host <id>', 'the host (VM or instance) to check')
    .action(action((ctx, opts) => runPrechecks(ctx, opts as Parameters<typeof runPrechecks>[1])));

  platformOptions(
    program
      .command('sync')
      .description(
        'snapshot a host, then copy each disk into <target>/<disk>.raw (full, or --incremental); re-run to resume',
      ),
  )
    .requiredOption('--host <id>', 'the host (VM or instance) to sync')
    .option('--disk <id>', 'a disk of the host (repeat for several; default: all)', collect)
    .requiredOption('-t, --target <dir>', 'directory of the images and the sync state')
    .option(
      '-i, --incremental',
      'only what changed since the snapshot each image equals (default: when one exists)',
    )
    .option('--full', 'copy every disk whole, even where a base exists')
    .addOption(
      new Option('--verify-target <level>', 'check each image before an incremental').choices([
        'identity',
        'manifest',
      ]),
    )
    .addOption(
      new Option(
        '--checkpoint-chunks <n>',
        'save a checkpoint every n chunks (a resume re-sends at most that)',
      ).argParser(positiveInteger),
    )
    .option('--parallel <n>', 'disks transferred at once', positiveInteger, 2)
    .option(
      '--progress-interval <ms>',
      'without a TTY: a progress line per disk at most this often',
      positiveInteger,
      2000,
    )
    .option('-q, --quiet', 'no progress and notes')
    .option('--verify', 'after each disk, read the image back and compare it with the snapshot')
    .option(
      '--bandwidth-limit <rate>',
      'read at most this many bytes per second in total, e.g. 100M, 1.5GiB, 800KiB/s',
      parseByteRate,
    )
    .option('--quiesce', 'ask the platform for an application-consistent (quiesced) snapshot')
    .option('--concurrency <n>', 'reads in flight per disk', positiveInteger)
    .action(
      action((ctx, opts) => {
        const { bandwidthLimit, ...rest } = opts as Parameters<typeof syncCommand>[1] & {
          bandwidthLimit?: number;
        };
        // The names syncHost takes.
        return syncCommand(ctx, {
          ...rest,
          ...(bandwidthLimit !== undefined ? { bandwidthLimitBytesPerSec: bandwidthLimit } : {}),
        } as Parameters<typeof syncCommand>[1]);
      }),
    );

  platformOptions(
    program
      .command('plan')
      .description(
        'per disk, the bytes a sync would read and its estimated time, from the extents and the last measured rate; reads no data',
      ),
  )
    .requiredOption('--host <id>', 'the host (VM or instance) to plan')
    .option('--disk <id>', 'a disk of the host (repeat for several; default: all)', collect)
    .requiredOption('-t, --target <dir>', 'directory of the images and the sync state')
    .option('-i, --incremental', 'only what changed since the snapshot each image equals')
    .option(
      '--rate <rate>',
      'bytes per second to assume where no sync measured one, e.g. 200M',
      parseByteRate,
    )
    .action(action((ctx, opts) => planSync(ctx, opts as Parameters<typeof planSync>[1])));

  registerSweep(program, platformOptions, action);

  program
    .command('demo')
    .description(
      'start a mock AWS on loopback, sync a sample VM (full, then incremental) and verify the images by SHA-256',
    )
    .option('-t, --target <dir>', 'where the images go (emptied first)')
    .option('--json', 'machine-readable output on stdout')
    .option(
      '--progress-interval <ms>',
      'without a TTY: a progress line per disk at most this often',
      positiveInteger,
      2000,
    )
    .option('-q, --quiet', 'no progress and notes')
    .action(action((ctx, opts) => runDemo(ctx, opts as Parameters<typeof runDemo>[1])));

  program
    .command('completion')
    .description('a completion script for bash or zsh: source <(syncproxy completion bash)')
    .argument('<shell>', 'bash or zsh')
    .action(action((ctx, shell: string) => printCompletion(ctx, shell, program)));

  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version "fail" with exit code 0; every other commander error is bad usage.
      return error.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
    }
    io.stderr.write(`error (internal): ${(error as Error)?.message ?? String(error)}\n`);
    return ExitCode.failure;
  }
  return exitCode;
}
