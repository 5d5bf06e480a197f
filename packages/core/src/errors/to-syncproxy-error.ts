import { SyncproxyError } from './syncproxy-error.js';

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
]);
const TIMEOUT_CODES = new Set([
  'ETIMEDOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);
const TLS_CODES =
  /^(ERR_TLS_|CERT_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_(GET|VERIFY)|ERR_SSL_|HOSTNAME_MISMATCH)/;

/** The error an AbortSignal's reason becomes. */
export function abortError(signal?: AbortSignal, what = 'operation'): SyncproxyError {
  const reason = signal?.reason;
  if (SyncproxyError.isInstance(reason)) return reason;
  return new SyncproxyError(`${what} aborted`, { code: 'aborted', retryable: false, cause: reason });
}

/**
 * Turns anything thrown (Node system errors, undici errors, AbortError) into a
 * SyncproxyError. Errors that already are one pass through unchanged.
 */
export function toSyncproxyError(
  error: unknown,
  context: { operation?: string; platform?: string } = {},
): SyncproxyError {
  if (SyncproxyError.isInstance(error)) return error;
  const what = context.operation ?? 'operation';
  const base = { platform: context.platform, cause: error };
  const err = error as { name?: string; code?: unknown; message?: string; cause?: unknown };
  if (err?.name === 'AbortError') {
    return new SyncproxyError(`${what} aborted`, { ...base, code: 'aborted', retryable: false });
  }
  const code = findCode(error);
  // The system code goes first: the AWS SDK's HTTP handler renames ECONNRESET and EPIPE errors
  // `TimeoutError` (to make its retry strategy retry them), but a reset is not a timeout.
  if (err?.name === 'TimeoutError' && (code === undefined || !NETWORK_CODES.has(code))) {
    return new SyncproxyError(`${what} timed out`, { ...base, code: 'timeout' });
  }
  if (code !== undefined) {
    if (TLS_CODES.test(code)) {
      return new SyncproxyError(`${what} failed: TLS verification failed (${code})`, {
        ...base,
        code: 'tls',
        retryable: false,
      });
    }
    if (TIMEOUT_CODES.has(code)) {
      return new SyncproxyError(`${what} timed out (${code})`, { ...base, code: 'timeout' });
    }
    if (NETWORK_CODES.has(code)) {
      return new SyncproxyError(`${what} failed: network error ${code}`, { ...base, code: 'network' });
    }
    if (code === 'ENOSPC')
      return new SyncproxyError(`${what} failed: no space left (ENOSPC)`, { ...base, code: 'io' });
    if (code === 'ENOENT')
      return new SyncproxyError(`${what} failed: not found (ENOENT)`, { ...base, code: 'not-found' });
    if (code === 'EACCES' || code === 'EPERM') {
      return new SyncproxyError(`${what} failed: permission denied (${code})`, {
        ...base,
        code: 'permission',
      });
    }
  }
  const message = err instanceof Error ? err.message : String(error);
  return new SyncproxyError(`${what} failed: ${message}`, { ...base, code: 'internal', retryable: false });
}

/** The first system/undici error code found along the cause chain. */
function findCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 6 && current && typeof current === 'object'; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}
