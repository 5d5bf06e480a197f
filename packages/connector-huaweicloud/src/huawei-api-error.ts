import { PlatformApiError, type PlatformApiErrorOptions } from '@syncproxy/core';

/** A Huawei Cloud API (IAM, ECS, EVS, CBR, OBS) that answered with an error. */
export class HuaweiApiError extends PlatformApiError {
  /** The platform's message (`error_msg`, `error.message`, OBS `<Message>`), redacted by the caller. */
  readonly platformMessage: string | undefined;

  constructor(options: PlatformApiErrorOptions & { platformMessage?: string }) {
    super({
      ...options,
      message:
        options.message ??
        `${options.operation} failed: HTTP ${options.status}${options.platformCode ? ` ${options.platformCode}` : ''}${options.platformMessage ? ` (${options.platformMessage})` : ''} from ${options.method} ${options.url.split('?')[0]}${options.requestId ? ` (request id ${options.requestId})` : ''}`,
    });
    this.name = 'HuaweiApiError';
    this.platformMessage = options.platformMessage;
  }

  static override isInstance(value: unknown): value is HuaweiApiError {
    return PlatformApiError.isInstance(value) && (value as { name?: unknown }).name === 'HuaweiApiError';
  }
}
