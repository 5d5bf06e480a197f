import { type ErrorCode, PlatformApiError, type PlatformApiErrorOptions } from '@syncproxy/core';

export interface VimApiErrorOptions extends PlatformApiErrorOptions {
  /** The vim25 fault type from the SOAP detail (`InvalidLogin`, `ManagedObjectNotFound`, `FileFault`...). */
  faultType?: string;
}

/** A vim25 call that vCenter or ESXi answered with a SOAP fault or an HTTP error. */
export class VimApiError extends PlatformApiError {
  readonly faultType: string | undefined;

  constructor(options: VimApiErrorOptions) {
    super(options);
    this.name = 'VimApiError';
    this.faultType = options.faultType;
  }

  static override isInstance(value: unknown): value is VimApiError {
    return PlatformApiError.isInstance(value) && (value as { name?: unknown }).name === 'VimApiError';
  }
}

interface FaultClass {
  code: ErrorCode;
  retryable: boolean;
  hint?: string;
}

/**
 * The SyncproxyError code of a vim25 fault (vim25 fault types, govmomi
 * `vim25/types`). `FileFault` from QueryChangedDiskAreas means the CBT data
 * behind the changeId is gone (CBT was reset, disk moved): `cbt-reset`, and the
 * caller syncs in full.
 */
export function classifyFault(faultType: string, operation: string): FaultClass {
  switch (faultType) {
    case 'InvalidLogin':
      return { code: 'auth', retryable: false, hint: 'check the user name and the password' };
    case 'NotAuthenticated':
      return { code: 'auth', retryable: false, hint: 'the session was refused even after logging in again' };
    case 'NoPermission':
      return {
        code: 'permission',
        retryable: false,
        hint: 'grant the privileges listed in the connector README',
      };
    case 'ManagedObjectNotFound':
      return { code: 'not-found', retryable: false };
    case 'FileFault':
    case 'FileNotFound':
      return operation === 'QueryChangedDiskAreas'
        ? {
            code: 'cbt-reset',
            retryable: false,
            hint: 'the changed-block tracking data of the base changeId is gone (CBT was reset or the disk moved): run a full sync',
          }
        : { code: 'platform', retryable: false };
    case 'InvalidState':
    case 'TaskInProgress':
    case 'ConcurrentAccess':
      return { code: 'conflict', retryable: true };
    case 'SnapshotFault':
    case 'TooManySnapshotLevels':
      return { code: 'conflict', retryable: false };
    case 'RequestCanceled':
      return { code: 'aborted', retryable: false };
    case 'HostCommunication':
    case 'HostNotConnected':
    case 'SystemError':
      return { code: 'platform', retryable: true };
    case 'NotSupported':
    case 'MethodNotFound':
      return { code: 'unsupported', retryable: false };
    default:
      return { code: 'platform', retryable: false };
  }
}
