import { SyncproxyError } from '@syncproxy/core';
import { type CommandContext, connectorFor, connectorLogger, print, printJson } from '../command-context.js';
import { loadConfigFile } from '../config-file.js';
import { ExitCode } from '../exit-code.js';
import { renderTable } from '../table.js';
import type { PlatformOptions } from './hosts.js';

export interface PrechecksOptions extends PlatformOptions {
  host: string;
}

/**
 * `syncproxy prechecks`: the platform's numbered checks of one host before a sync (CBT, snapshot
 * quota, volume types...). Exit 0 when none fails (warnings pass), 1 otherwise.
 */
export async function runPrechecks(context: CommandContext, options: PrechecksOptions): Promise<ExitCode> {
  const connector = connectorFor(context, options.platform);
  const { input } = await loadConfigFile(connector, options.config, context.cwd, context.io);
  await using session = await connector.connect(input, {
    logger: connectorLogger(context, options),
    ...(context.io.signal ? { signal: context.io.signal } : {}),
  });
  const host = (await session.listHosts()).find((h) => h.id === options.host);
  if (!host) {
    throw new SyncproxyError(`--host ${options.host}: no such host on the platform (see syncproxy hosts)`, {
      code: 'config',
    });
  }
  const results = await session.prechecks(host);
  const ok = results.every((r) => r.status !== 'fail');
  if (options.json) {
    printJson(context, { ok, host: host.id, results });
    return ok ? ExitCode.ok : ExitCode.failure;
  }
  print(
    context,
    renderTable(
      results.map((r, i) => ({ ...r, n: i + 1 })),
      [
        { header: '#', value: (r) => String(r.n), align: 'right' },
        { header: 'CHECK', value: (r) => r.title },
        { header: 'STATUS', value: (r) => r.status.toUpperCase() },
        {
          header: 'DETAIL',
          value: (r) => r.detail + (r.status !== 'pass' && r.remedy ? ` (${r.remedy})` : ''),
        },
      ],
    ),
  );
  print(context, ok ? `prechecks passed: ${results.length}` : 'prechecks FAILED');
  return ok ? ExitCode.ok : ExitCode.failure;
}
