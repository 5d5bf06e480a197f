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
import { formatBytes } from '../human-units.js';
import { renderTable } from '../table.js';

export interface PlatformOptions extends OutputOptions {
  platform: string;
  config: string;
}

/** `syncproxy hosts`: the platform's VMs or instances and their disks. */
export async function listHosts(context: CommandContext, options: PlatformOptions): Promise<ExitCode> {
  const connector = connectorFor(context, options.platform);
  const { input } = await loadConfigFile(connector, options.config, context.cwd, context.io);
  const session = await connector.connect(input, {
    logger: connectorLogger(context, options),
    ...(context.io.signal ? { signal: context.io.signal } : {}),
  });
  try {
    const hosts = await session.listHosts();
    if (options.json) {
      printJson(context, hosts);
      return ExitCode.ok;
    }
    print(
      context,
      renderTable(hosts, [
        { header: 'ID', value: (h) => h.id },
        { header: 'NAME', value: (h) => h.name },
        { header: 'POWER', value: (h) => h.powerState ?? 'unknown' },
        { header: 'DISKS', value: (h) => String(h.disks.length), align: 'right' },
        {
          header: 'SIZE',
          value: (h) => formatBytes(h.disks.reduce((sum, d) => sum + d.sizeBytes, 0)),
          align: 'right',
        },
        { header: 'DISK IDS', value: (h) => h.disks.map((d) => d.id).join(', ') },
      ]),
    );
    print(context, `${hosts.length} host(s)`);
    return ExitCode.ok;
  } finally {
    await session.close().catch(() => {});
  }
}
