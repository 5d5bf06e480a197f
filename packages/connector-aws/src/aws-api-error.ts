import { PlatformApiError, type PlatformApiErrorOptions } from '@syncproxy/core';

export interface AwsApiErrorOptions extends PlatformApiErrorOptions {
  /** The EBS direct `Reason` (`INVALID_BLOCK_TOKEN`, `UNRELATED_SNAPSHOTS`, `ACCOUNT_THROTTLED`...). */
  reason?: string;
}

/** An EC2 or EBS call that AWS answered with an error. */
export class AwsApiError extends PlatformApiError {
  readonly reason: string | undefined;

  constructor(options: AwsApiErrorOptions) {
    super(options);
    this.name = 'AwsApiError';
    this.reason = options.reason;
    if (options.reason !== undefined && this.details !== undefined) this.details.reason = options.reason;
  }

  static override isInstance(value: unknown): value is AwsApiError {
    return PlatformApiError.isInstance(value) && (value as { name?: unknown }).name === 'AwsApiError';
  }
}
