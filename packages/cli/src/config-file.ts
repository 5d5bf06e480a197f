import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { type AnySourceConnector, parseConfig, SyncproxyError } from '@syncproxy/core';

/** A platform config as read from its file: the raw form (for `connect`) and the parsed one. */
export interface LoadedConfig {
  path: string;
  /** What the file holds; `connect()` parses it again, with the connector's own redaction. */
  input: unknown;
  /** Parsed by the connector's schema, defaults applied. */
  config: unknown;
}

/**
 * Reads a JSON config file and validates it with the connector's schema.
 * Every failure is a `config` error (exit 2): a missing file, bad JSON (the
 * text is never echoed, it may hold secrets), or the schema's field errors.
 */
export async function loadConfigFile(
  connector: AnySourceConnector,
  file: string,
  cwd: string,
): Promise<LoadedConfig> {
  const path = resolve(cwd, file);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    throw new SyncproxyError(
      `cannot read config file ${path}${typeof code === 'string' ? ` (${code})` : ''}`,
      { code: 'config', retryable: false },
    );
  }
  let input: unknown;
  try {
    input = JSON.parse(text);
  } catch (error) {
    // JSON.parse's message quotes the text around the fault, which may be a secret: keep only the position.
    const position = /position (\d+)/.exec((error as Error).message)?.[1];
    throw new SyncproxyError(
      `config file ${path} is not valid JSON${position === undefined ? '' : ` (at character ${position})`}`,
      { code: 'config', retryable: false },
    );
  }
  const config = parseConfig(connector.configSchema, input, `${connector.id} config in ${path}`);
  return { path, input, config };
}
