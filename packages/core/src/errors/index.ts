export {
  codeForHttpStatus,
  isRetryableHttpStatus,
  PlatformApiError,
  type PlatformApiErrorOptions,
} from './platform-api-error.js';
export {
  type ErrorCode,
  SyncproxyError,
  type SyncproxyErrorJson,
  type SyncproxyErrorOptions,
} from './syncproxy-error.js';
export { abortError, toSyncproxyError } from './to-syncproxy-error.js';
