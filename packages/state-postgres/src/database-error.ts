import { SyncproxyError } from '@syncproxy/core';

/** Where in a transaction a failure happened: before COMMIT was sent nothing was applied; during it, nobody knows. */
export type FailurePoint = 'before-commit' | 'during-commit' | 'connect' | 'read';

// SQLSTATE classes: https://www.postgresql.org/docs/current/errcodes-appendix.html
const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENOTFOUND',
]);
const SHUTDOWN_STATES = new Set(['57P01', '57P02', '57P03']); // admin_shutdown (pg_terminate_backend), crash_shutdown, cannot_connect_now

/** A serialization failure or deadlock: the transaction can simply run again. */
export function isSerializationFailure(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  return code === '40001' || code === '40P01';
}

/** The connection is gone (or never came): the client must not be reused. */
export function isConnectionLost(error: unknown): boolean {
  const e = error as { code?: unknown; message?: unknown };
  const code = typeof e?.code === 'string' ? e.code : '';
  if (CONNECTION_CODES.has(code) || SHUTDOWN_STATES.has(code) || code.startsWith('08')) return true;
  const message = typeof e?.message === 'string' ? e.message : '';
  return /Connection terminated|connection timeout|Client has encountered a connection error|Connection ended|not queryable/i.test(
    message,
  );
}

/**
 * The store's one mapping from `pg` errors to typed errors. Messages name the
 * server as host:port and the SQLSTATE, never the connection string or password.
 */
export function toStoreError(
  error: unknown,
  options: { server: string; operation: string; at: FailurePoint },
): SyncproxyError {
  if (SyncproxyError.isInstance(error)) return error;
  const e = error as { code?: unknown; message?: unknown };
  const code = typeof e?.code === 'string' ? e.code : undefined;
  const { server, operation, at } = options;
  const details = { server, sqlState: code, at };
  if (at === 'connect' && isConnectionLost(error)) {
    return new SyncproxyError(
      `cannot connect to PostgreSQL at ${server} for the scheduler state (${code ?? 'connection failed'}): is the server running and reachable from here?`,
      { code: 'network', retryable: true, details },
    );
  }
  if (isConnectionLost(error)) {
    const outcome =
      at === 'during-commit'
        ? 'it may or may not have been applied (the connection dropped during COMMIT): read the state before retrying'
        : 'it was not applied: retry it';
    return new SyncproxyError(
      `scheduler state on PostgreSQL ${server}: connection lost during ${operation} (${code ?? 'connection terminated'}); ${outcome}`,
      { code: 'network', retryable: true, details },
    );
  }
  if (code === '28P01' || code === '28000') {
    return new SyncproxyError(
      `PostgreSQL at ${server} refused the credentials of the scheduler state store (${code}): check user and password`,
      { code: 'auth', retryable: false, details },
    );
  }
  if (code === '3D000') {
    return new SyncproxyError(
      `PostgreSQL at ${server}: the database does not exist (3D000): create it first`,
      {
        code: 'config',
        retryable: false,
        details,
      },
    );
  }
  if (code === '42501') {
    return new SyncproxyError(
      `PostgreSQL at ${server}: permission denied during ${operation} (42501): the store's role needs CREATE on the database and USAGE on its schema (see the README)`,
      { code: 'permission', retryable: false, details },
    );
  }
  if (code?.startsWith('23')) {
    return new SyncproxyError(
      `scheduler state on PostgreSQL ${server}: ${operation} broke a constraint (${code}): the state would contradict itself; nothing was applied`,
      { code: 'integrity', retryable: false, details },
    );
  }
  if (isSerializationFailure(error)) {
    return new SyncproxyError(
      `scheduler state on PostgreSQL ${server}: ${operation} kept conflicting with other nodes (${code}); nothing was applied: retry it`,
      { code: 'conflict', retryable: true, details },
    );
  }
  const message = typeof e?.message === 'string' ? e.message : String(error);
  return new SyncproxyError(
    `scheduler state on PostgreSQL ${server}: ${operation} failed (${code ?? 'no SQLSTATE'}: ${message})`,
    { code: 'platform', retryable: false, details, cause: error },
  );
}
