import type { z } from 'zod';
import { SyncproxyError } from '../errors/syncproxy-error.js';

export interface ConfigIssue {
  /** Dotted field path, e.g. `cephClusters.0.keyring`; empty for the whole config. */
  path: string;
  message: string;
}

/**
 * Parses `input` with a connector's config schema. On failure throws a
 * SyncproxyError `config` whose message names every bad field, and whose
 * `details.issues` lists them; input values are never echoed.
 */
export function parseConfig<T>(schema: z.ZodType<T>, input: unknown, what = 'config'): T {
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
