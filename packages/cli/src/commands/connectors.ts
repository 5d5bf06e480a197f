import { type CommandContext, type OutputOptions, print, printJson } from '../command-context.js';
import { ExitCode } from '../exit-code.js';
import { renderTable } from '../table.js';

/** `syncproxy connectors`: the registered connectors, their versions and capabilities. */
export function listConnectors(context: CommandContext, options: OutputOptions): ExitCode {
  const connectors = context.registry.list();
  if (options.json) {
    printJson(context, connectors);
    return ExitCode.ok;
  }
  const yesNo = (b: boolean) => (b ? 'yes' : 'no');
  print(
    context,
    renderTable(connectors, [
      { header: 'ID', value: (c) => c.id },
      { header: 'NAME', value: (c) => c.displayName },
      { header: 'VERSION', value: (c) => c.version },
      { header: 'SPEC', value: (c) => c.specVersion },
      { header: 'CHANGES', value: (c) => c.capabilities.changeTracking },
      { header: 'MULTI-DISK SNAPSHOT', value: (c) => yesNo(c.capabilities.consistentMultiDiskSnapshot) },
      { header: 'MOUNTS DISKS', value: (c) => yesNo(c.capabilities.mountsDisks) },
      { header: 'QUIESCE', value: (c) => yesNo(c.capabilities.quiescedSnapshots) },
    ]),
  );
  return ExitCode.ok;
}
