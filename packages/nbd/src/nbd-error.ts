import { type ErrorCode, SyncproxyError } from '@syncproxy/core';
import { NbdErrno } from './protocol.js';

interface ErrnoMeaning {
  name: string;
  text: string;
  code: ErrorCode;
  retryable: boolean;
}

const MEANINGS: Record<number, ErrnoMeaning> = {
  [NbdErrno.EPERM]: { name: 'EPERM', text: 'operation not permitted', code: 'permission', retryable: false },
  // EIO is what a flaky disk or backend (vddk, an HTTP plugin) reports: worth another try.
  [NbdErrno.EIO]: { name: 'EIO', text: 'input/output error', code: 'io', retryable: true },
  [NbdErrno.ENOMEM]: { name: 'ENOMEM', text: 'server out of memory', code: 'io', retryable: true },
  [NbdErrno.EINVAL]: { name: 'EINVAL', text: 'invalid argument', code: 'protocol', retryable: false },
  [NbdErrno.ENOSPC]: { name: 'ENOSPC', text: 'no space left on device', code: 'io', retryable: false },
  [NbdErrno.EOVERFLOW]: { name: 'EOVERFLOW', text: 'value too large', code: 'protocol', retryable: false },
  [NbdErrno.ENOTSUP]: {
    name: 'ENOTSUP',
    text: 'operation not supported',
    code: 'unsupported',
    retryable: false,
  },
  // The server is going away; a new connection (to it or its replacement) may work.
  [NbdErrno.ESHUTDOWN]: {
    name: 'ESHUTDOWN',
    text: 'server is shutting down',
    code: 'network',
    retryable: true,
  },
};

/** The symbolic name of an NBD errno (`EIO`), or `errno N` for one the protocol does not define. */
export function nbdErrnoName(errno: number): string {
  return MEANINGS[errno]?.name ?? `errno ${errno}`;
}

export interface NbdCommandErrorContext {
  /** `READ`, `WRITE`, ... */
  command: string;
  offset: number;
  length: number;
  exportName: string;
  /** The server's own message (structured error chunks carry one). */
  serverMessage?: string;
}

/**
 * The SyncproxyError for an NBD error reply. `details.nbdError` keeps the
 * symbolic errno so callers can tell ENOSPC from another `io` failure.
 */
export function nbdCommandError(errno: number, context: NbdCommandErrorContext): SyncproxyError {
  const meaning = MEANINGS[errno] ?? {
    name: `errno ${errno}`,
    text: 'unknown error',
    code: 'io' as const,
    retryable: false,
  };
  const said = context.serverMessage ? `: ${context.serverMessage}` : '';
  const hint = meaning.name === 'EPERM' ? ' (is the export read-only?)' : '';
  return new SyncproxyError(
    `NBD ${context.command} of ${context.length} bytes at offset ${context.offset} on export "${context.exportName}" failed: ${meaning.name} (${meaning.text})${said}${hint}`,
    {
      code: meaning.code,
      retryable: meaning.retryable,
      details: {
        nbdError: meaning.name,
        errno,
        command: context.command,
        offset: context.offset,
        length: context.length,
      },
    },
  );
}

/** A broken promise of the protocol by the server: never retried on the same connection. */
export function protocolError(message: string, details?: Record<string, unknown>): SyncproxyError {
  return new SyncproxyError(`NBD protocol error: ${message}`, {
    code: 'protocol',
    retryable: false,
    details,
  });
}
