import { type ErrorCode, SyncproxyError } from './syncproxy-error.js';

export interface PlatformApiErrorOptions {
  /** The platform operation, in the platform's words (`GetSnapshotBlock`, `RetrievePropertiesEx`). */
  operation: string;
  method: string;
  url: string;
  status: number;
  requestId?: string;
  /** The response body, already redacted and shortened by the caller. */
  body?: string;
  /** The platform's own error code (`ThrottlingException`, `InvalidLogin`). */
  platformCode?: string;
  /** Overrides the code derived from the HTTP status. */
  code?: ErrorCode;
  retryable?: boolean;
  platform?: string;
  cause?: unknown;
  message?: string;
}

/** The SyncproxyError code an HTTP status maps to when the platform says nothing more precise. */
export function codeForHttpStatus(status: number): ErrorCode {
  if (status === 401) return 'auth';
  if (status === 403) return 'permission';
  if (status === 404) return 'not-found';
  if (status === 409) return 'conflict';
  if (status === 408) return 'timeout';
  if (status === 429) return 'throttled';
  if (status >= 500) return 'platform';
  return 'platform';
}

/** Retryable by default for 408, 429 and every 5xx. */
export function isRetryableHttpStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

const MAX_BODY_CHARS = 2048;

/** An HTTP call to a platform API that failed. */
export class PlatformApiError extends SyncproxyError {
  readonly operation: string;
  readonly method: string;
  readonly url: string;
  readonly status: number;
  readonly requestId: string | undefined;
  readonly body: string | undefined;
  readonly platformCode: string | undefined;

  constructor(options: PlatformApiErrorOptions) {
    const code = options.code ?? codeForHttpStatus(options.status);
    const message =
      options.message ??
      `${options.operation} failed: HTTP ${options.status}${options.platformCode ? ` ${options.platformCode}` : ''} from ${options.method} ${stripQuery(options.url)}${options.requestId ? ` (request id ${options.requestId})` : ''}`;
    super(message, {
      code,
      retryable: options.retryable ?? isRetryableHttpStatus(options.status),
      platform: options.platform,
      cause: options.cause,
      details: {
        operation: options.operation,
        status: options.status,
        ...(options.platformCode ? { platformCode: options.platformCode } : {}),
        ...(options.requestId ? { requestId: options.requestId } : {}),
      },
    });
    this.name = 'PlatformApiError';
    this.operation = options.operation;
    this.method = options.method;
    this.url = stripQuery(options.url);
    this.status = options.status;
    this.requestId = options.requestId;
    this.body = options.body === undefined ? undefined : options.body.slice(0, MAX_BODY_CHARS);
    this.platformCode = options.platformCode;
  }
}

/** Query strings can carry signatures and tokens: errors keep only the path. */
function stripQuery(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? url : `${url.slice(0, q)}?…`;
}
