import { parseConfig, SyncproxyError } from '@syncproxy/core';
import type { Pool } from 'pg';
import { z } from 'zod';

/** Where the store's tables live and how it reaches PostgreSQL. */
export interface PostgresStateStoreOptions {
  /**
   * A pool the product owns (and closes). The store takes one connection for
   * its change feed and one per transaction. Either this or `connection`.
   */
  pool?: Pool;
  /** Connection settings for a pool the store makes and closes itself. */
  connection?: {
    /** `postgres://user:password@host:port/database`; the password never appears in errors or logs. */
    connectionString?: string;
    host?: string;
    port?: number;
    user?: string;
    password?: string;
    database?: string;
    /** Default 10. */
    maxConnections?: number;
    /** Default 10,000. */
    connectTimeoutMs?: number;
  };
  /** Schema of the tables, created when missing. Default `syncproxy`. Several schedulers share a schema to share state. */
  schema?: string;
  /** How often to look for other nodes' changes while `LISTEN` is not connected. Default 1,000. */
  pollIntervalMs?: number;
  /** Use `LISTEN/NOTIFY` for change notifications. Default true; false polls only. */
  notifications?: boolean;
}

const identifier = z
  .string()
  .regex(/^[a-z_][a-z0-9_]{0,39}$/, 'must be a lower-case SQL identifier (letters, digits, _)');

export const optionsSchema = z.object({
  connection: z
    .strictObject({
      connectionString: z.string().min(1).optional(),
      host: z.string().min(1).optional(),
      port: z.number().int().min(1).max(65_535).optional(),
      user: z.string().min(1).optional(),
      password: z.string().optional(),
      database: z.string().min(1).optional(),
      maxConnections: z.number().int().min(2).max(1_000).optional(),
      connectTimeoutMs: z.number().int().min(1).max(600_000).optional(),
    })
    .optional(),
  schema: identifier.optional(),
  pollIntervalMs: z.number().int().min(10).max(3_600_000).optional(),
  notifications: z.boolean().optional(),
});

export type ParsedOptions = z.infer<typeof optionsSchema>;

export function parseOptions(options: PostgresStateStoreOptions): ParsedOptions {
  const { pool, ...rest } = options ?? {};
  // parseConfig redacts what it echoes back; the password is only ever in `connection`.
  const parsed = parseConfig(optionsSchema, rest, 'postgres state store options');
  if ((pool === undefined) === (parsed.connection === undefined)) {
    throw new SyncproxyError(
      'invalid postgres state store options: give exactly one of pool and connection',
      { code: 'config', retryable: false },
    );
  }
  return parsed;
}

/** `host:port` of the server, for messages: never the user's password. */
export function describeServer(options: ParsedOptions, pool: Pool | undefined): string {
  const fromPool = pool?.options as { host?: string; port?: number; connectionString?: string } | undefined;
  const c = options.connection ?? fromPool ?? {};
  let host = c.host;
  let port = c.port;
  if (c.connectionString) {
    try {
      const url = new URL(c.connectionString);
      host ??= decodeURIComponent(url.hostname) || undefined;
      port ??= url.port ? Number(url.port) : undefined;
    } catch {
      // Not a URL (a libpq key=value string): fall back to the defaults below.
    }
  }
  return `${host ?? process.env.PGHOST ?? 'localhost'}:${port ?? (process.env.PGPORT || 5432)}`;
}
