import { toJSONSchema } from '@syncproxy/core';
import { type CommandContext, connectorFor, printJson } from '../command-context.js';
import { ExitCode } from '../exit-code.js';

/** `syncproxy schema <platform>`: the JSON Schema of the platform's config form (always JSON). */
export function printSchema(context: CommandContext, platform: string): ExitCode {
  printJson(context, toJSONSchema(connectorFor(context, platform).configSchema));
  return ExitCode.ok;
}
