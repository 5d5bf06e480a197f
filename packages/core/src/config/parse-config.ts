import type { z } from 'zod';
import { SyncproxyError } from '../errors/syncproxy-error.js';

export interface ConfigIssue {
  /** Dotted field path, e.g. `cephClusters.0.keyring`; empty for the whole config. */
  path: string;
  message: string;
}

/**
 * Parses `input` with a connector's config schema (pass the connector or its
 * schema). On failure throws a SyncproxyError `config` whose message names
 * every bad field, and whose `details.issues` lists them; input values are
 * never echoed. Use it instead of `configSchema.parse`, which throws zod's
 * own error.
 */
export function parseConfig<T>(
  source: z.ZodType<T> | { readonly id: string; readonly configSchema: z.ZodType<T> },
  input: unknown,
  what?: string,
): T {
  const isConnector = typeof (source as { configSchema?: unknown })?.configSchema === 'object';
  const schema = isConnector
    ? (source as { configSchema: z.ZodType<T> }).configSchema
    : (source as z.ZodType<T>);
  what ??= isConnector ? `${(source as { id: string }).id} config` : 'config';
  if (typeof schema?.safeParse !== 'function') {
    throw new SyncproxyError('parseConfig: pass a connector or a zod schema', {
      code: 'config',
      retryable: false,
    });
  }
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issues: ConfigIssue[] = result.error.issues.map((issue) => ({
    path: issue.path.map(String).join('.'),
    message: issue.message,
  }));
  const list = issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ');
  throw new SyncproxyError(`invalid ${what}: ${list}`, {
    code: 'config',
    retryable: false,
    details: { issues },
  });
}
