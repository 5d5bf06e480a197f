import { type ErrorCode, PlatformApiError, type PlatformApiErrorOptions } from '@syncproxy/core';

export interface FcApiErrorOptions extends PlatformApiErrorOptions {
  /** FusionCompute's `errorCode` (a 8-10 digit string), kept as the platform code. */
  errorCode?: string;
  /** FusionCompute's `errorDes`. */
  errorDes?: string;
}

/** A FusionCompute REST call answered with `{errorCode, errorDes}` or an HTTP error. */
export class FcApiError extends PlatformApiError {
  readonly errorCode: string | undefined;
  readonly errorDes: string | undefined;

  constructor(options: FcApiErrorOptions) {
    super({ ...options, ...(options.errorCode ? { platformCode: options.errorCode } : {}) });
    this.name = 'FcApiError';
    this.errorCode = options.errorCode;
    this.errorDes = options.errorDes;
  }

  static override isInstance(value: unknown): value is FcApiError {
    return PlatformApiError.isInstance(value) && (value as { name?: unknown }).name === 'FcApiError';
  }
}

/**
 * The `errorCode`s this connector treats specially. Huawei publishes no list
 * with the REST reference we could reach: these are the mock's codes, and a
 * product that meets other ones on a real VRM passes its own map
 * (`createFusionComputeConnector({ errorCodes })`). Everything else is
 * classified by HTTP status.
 */
export interface FcErrorCodes {
  /** Wrong user, password or user type. */
  authFailed: string[];
  /** The CBT base (chgID / volCBTCreateTime) is gone: HA, snapshot restore, expansion, host restart. */
  cbtInvalid: string[];
  /** An operation exclusive with snapshots runs (start, shutdown, disk attach or expansion, storage migration). */
  vmBusy: string[];
  /** The resource does not exist (any more). */
  notFound: string[];
  /** The host's backup limits are reached (8 volumes in backup, 8 backup connections). */
  backupLimit: string[];
  /** The backup resource's token expired or is unknown. */
  tokenExpired: string[];
  /** The VM was shut down while a backup resource read it. */
  vmShutDown: string[];
}

export const DEFAULT_ERROR_CODES: FcErrorCodes = {
  authFailed: ['10000040'],
  cbtInvalid: ['10420051'],
  vmBusy: ['10300055'],
  notFound: ['10000022', '10300002', '10420002'],
  backupLimit: ['10420058'],
  tokenExpired: ['10420060'],
  vmShutDown: ['10420061'],
};

/** The SyncproxyError code and retryability of a FusionCompute errorCode, when it has a special meaning. */
export function classifyErrorCode(
  codes: FcErrorCodes,
  errorCode: string | undefined,
): { code: ErrorCode; retryable: boolean; hint?: string } | undefined {
  if (errorCode === undefined) return undefined;
  if (codes.authFailed.includes(errorCode))
    return { code: 'auth', retryable: false, hint: 'check the user, the password and the user type' };
  if (codes.cbtInvalid.includes(errorCode))
    return { code: 'cbt-reset', retryable: false, hint: 'the disk needs a full sync' };
  if (codes.vmBusy.includes(errorCode))
    return {
      code: 'conflict',
      retryable: true,
      hint: 'an operation exclusive with snapshots is running on the VM; retry when it ends',
    };
  if (codes.notFound.includes(errorCode)) return { code: 'not-found', retryable: false };
  if (codes.backupLimit.includes(errorCode))
    return {
      code: 'no-capacity',
      retryable: true,
      hint: 'the host allows 8 volumes in backup and 8 backup connections at most; retry later',
    };
  if (codes.tokenExpired.includes(errorCode)) return { code: 'auth', retryable: true };
  if (codes.vmShutDown.includes(errorCode))
    return {
      code: 'platform',
      retryable: false,
      hint: 'keep the VM running, hibernated or stopped until the sync ends',
    };
  return undefined;
}
