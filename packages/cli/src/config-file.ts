import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import {
  type AnySourceConnector,
  type JsonSchema,
  parseConfig,
  SyncproxyError,
  toJSONSchema,
} from '@syncproxy/core';
import type { CliIo } from './cli-io.js';

/** A platform config as read from its file: the raw form (for `connect`) and the parsed one. */
export interface LoadedConfig {
  path: string;
  /** What the file holds; `connect()` parses it again, with the connector's own redaction. */
  input: unknown;
  /** Parsed by the connector's schema, defaults applied. */
  config: unknown;
}

/**
 * Reads a JSON config file (`-` reads stdin), fills its secret fields from the environment, and
 * validates it with the connector's schema. A secret field (`x-secret` in the form) comes, first
 * found first: from `SYNCPROXY_<FIELD>`, from the file named by `SYNCPROXY_<FIELD>_FILE`, from the
 * config. `<FIELD>` is the field's path in UPPER_SNAKE_CASE: `secretAccessKey` ->
 * `SYNCPROXY_SECRET_ACCESS_KEY`, `ceph.keyring` -> `SYNCPROXY_CEPH_KEYRING`. Secrets never come
 * from argv, where every user of the machine can read them.
 * Every failure is a `config` error (exit 2): a missing file, bad JSON (the
 * text is never echoed, it may hold secrets), or the schema's field errors.
 */
export async function loadConfigFile(
  connector: AnySourceConnector,
  file: string,
  cwd: string,
  io: Pick<CliIo, 'stdin' | 'env'> = { stdin: process.stdin, env: process.env },
): Promise<LoadedConfig> {
  const path = file === '-' ? '(stdin)' : resolve(cwd, file);
  let text: string;
  try {
    text = file === '-' ? await readAll(io.stdin ?? process.stdin) : await readFile(path, 'utf8');
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
  input = await withEnvironmentSecrets(connector, input, io.env ?? process.env, cwd);
  const config = parseConfig(connector.configSchema, input, `${connector.id} config in ${path}`);
  return { path, input, config };
}

async function readAll(stream: AsyncIterable<string | Uint8Array>): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream)
    chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk));
  return Buffer.concat(chunks).toString('utf8');
}

/** `secretAccessKey` -> `SYNCPROXY_SECRET_ACCESS_KEY`; `ceph.keyring` -> `SYNCPROXY_CEPH_KEYRING`. */
export function secretVariable(path: readonly string[]): string {
  return `SYNCPROXY_${path.map((part) => part.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()).join('_')}`;
}

/** The paths of the form's secret fields, nested objects included. */
export function secretPaths(schema: JsonSchema, prefix: string[] = []): string[][] {
  const properties = (schema as { properties?: Record<string, JsonSchema> }).properties ?? {};
  return Object.entries(properties).flatMap(([name, field]) => {
    const path = [...prefix, name];
    if ((field as Record<string, unknown>)['x-secret'] === true) return [path];
    return (field as { type?: unknown }).type === 'object' ? secretPaths(field, path) : [];
  });
}

async function withEnvironmentSecrets(
  connector: AnySourceConnector,
  input: unknown,
  env: Record<string, string | undefined>,
  cwd: string,
): Promise<unknown> {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) return input;
  const result = structuredClone(input) as Record<string, unknown>;
  for (const path of secretPaths(toJSONSchema(connector.configSchema))) {
    const variable = secretVariable(path);
    let value = env[variable];
    if (value === undefined && env[`${variable}_FILE`] !== undefined) {
      const file = resolve(cwd, env[`${variable}_FILE`] as string);
      try {
        // One trailing newline is how editors and `echo` end a file, not part of the secret.
        value = (await readFile(file, 'utf8')).replace(/\r?\n$/, '');
      } catch (error) {
        const code = (error as { code?: unknown }).code;
        throw new SyncproxyError(
          `cannot read ${variable}_FILE ${file}${typeof code === 'string' ? ` (${code})` : ''}`,
          { code: 'config', retryable: false },
        );
      }
    }
    if (value === undefined) continue;
    let target = result;
    for (const part of path.slice(0, -1)) {
      const next = target[part];
      target[part] = typeof next === 'object' && next !== null ? { ...(next as object) } : {};
      target = target[part] as Record<string, unknown>;
    }
    target[path[path.length - 1] as string] = value;
  }
  return result;
}
