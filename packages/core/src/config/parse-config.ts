import type { z } from 'zod';
import { SyncproxyError } from '../errors/syncproxy-error.js';
import { MAX_PEM_CHARS } from './fields.js';

export interface ConfigIssue {
  /** Dotted field path, e.g. `cephClusters.0.keyring`; empty for the whole config. */
  path: string;
  message: string;
}

/** Deeper than any form; a deeper input is hostile and would cost a deep walk. */
const MAX_INPUT_DEPTH = 32;
/** Values (strings, numbers, keys) in one config; a form has dozens. */
const MAX_INPUT_NODES = 100_000;
/** Each path segment and issue message is cut to this length in the error message. */
const MAX_SEGMENT_CHARS = 64;
const MAX_ISSUE_CHARS = 200;
/** Only the first few issues are spelled out in the message (all are in `details.issues`). */
const MAX_LISTED_ISSUES = 8;

/**
 * Parses `input` with a connector's config schema (pass the connector or its
 * schema). On failure throws a SyncproxyError `config` whose message names
 * every bad field, and whose `details.issues` lists them; input values are
 * never echoed. Use it instead of `configSchema.parse`, which throws zod's
 * own error. Before the schema runs, the input is checked for size (no string
 * over {@link MAX_PEM_CHARS}, no nesting deeper than 32), so a schema that
 * forgot a bound still never works on megabytes, and the message stays short.
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
  const oversized = findOversized(input);
  if (oversized !== undefined) throw configError(what, [oversized]);
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issues: ConfigIssue[] = result.error.issues.map((issue) => ({
    path: issue.path.map((segment) => pathSegment(String(segment))).join('.'),
    message: shorten(issue.message, MAX_ISSUE_CHARS),
  }));
  throw configError(what, issues);
}

function configError(what: string, issues: ConfigIssue[]): SyncproxyError {
  const listed = issues.slice(0, MAX_LISTED_ISSUES).map((i) => `${i.path || '(root)'}: ${i.message}`);
  if (issues.length > MAX_LISTED_ISSUES) listed.push(`and ${issues.length - MAX_LISTED_ISSUES} more`);
  return new SyncproxyError(`invalid ${what}: ${listed.join('; ')}`, {
    code: 'config',
    retryable: false,
    details: { issues },
  });
}

/** A key as it shows in a path: cut when long, `""` when empty (an empty path means the root). */
function pathSegment(key: string): string {
  return key === '' ? '""' : shorten(key, MAX_SEGMENT_CHARS);
}

function shorten(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** The first value of `input` that is too big to parse, as an issue; undefined when none. */
function findOversized(input: unknown): ConfigIssue | undefined {
  let nodes = 0;
  const stack: { value: unknown; path: string[] }[] = [{ value: input, path: [] }];
  while (stack.length > 0) {
    const { value, path } = stack.pop()!;
    const where = path.map(pathSegment).join('.');
    if (++nodes > MAX_INPUT_NODES) return { path: where, message: `more than ${MAX_INPUT_NODES} values` };
    if (typeof value === 'string') {
      if (value.length > MAX_PEM_CHARS)
        return { path: where, message: `at most ${MAX_PEM_CHARS} characters` };
      continue;
    }
    if (value === null || typeof value !== 'object') continue;
    if (path.length >= MAX_INPUT_DEPTH)
      return { path: where, message: `nested deeper than ${MAX_INPUT_DEPTH}` };
    for (const key of Object.keys(value)) {
      if (key.length > MAX_SEGMENT_CHARS * 16) {
        return { path: where, message: `a key longer than ${MAX_SEGMENT_CHARS * 16} characters` };
      }
      stack.push({ value: (value as Record<string, unknown>)[key], path: [...path, key] });
    }
  }
  return undefined;
}
