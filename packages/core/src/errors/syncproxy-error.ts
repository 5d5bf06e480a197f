const MARKER = Symbol.for('@syncproxy/core/SyncproxyError');

/**
 * Every error code the SDK raises. Connectors pick the code that says what the
 * caller should do next; `retryable` says whether trying again may help.
 */
export type ErrorCode =
  | 'config'
  | 'auth'
  | 'permission'
  | 'not-found'
  | 'throttled'
  | 'conflict'
  | 'network'
  | 'timeout'
  | 'tls'
  | 'integrity'
  | 'unsupported'
  | 'aborted'
  | 'platform'
  | 'protocol'
  | 'io'
  | 'no-capacity'
  | 'cbt-reset'
  | 'internal';

/** Codes that are worth retrying unless a thrower says otherwise. */
const RETRYABLE_BY_DEFAULT: ReadonlySet<ErrorCode> = new Set(['throttled', 'network', 'timeout']);

export interface SyncproxyErrorOptions {
  code: ErrorCode;
  /** Defaults to true for throttled, network and timeout; false otherwise. */
  retryable?: boolean;
  /** Connector id of the platform involved, when there is one. */
  platform?: string;
  cause?: unknown;
  /** Structured, secret-free facts for logs and programs (ids, counts, offsets). */
  details?: Record<string, unknown>;
}

/** The JSON form of a {@link SyncproxyError}: what a product may store or send. */
export interface SyncproxyErrorJson {
  name: string;
  code: ErrorCode;
  message: string;
  retryable: boolean;
  platform?: string;
  details?: Record<string, unknown>;
  cause?: unknown;
}

/**
 * The one error type the SDK throws. Recognise it with
 * {@link SyncproxyError.isInstance}, which works across copies of the package.
 */
export class SyncproxyError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly platform: string | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(message: string, options: SyncproxyErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SyncproxyError';
    this.code = options.code;
    this.retryable = options.retryable ?? RETRYABLE_BY_DEFAULT.has(options.code);
    this.platform = options.platform;
    this.details = options.details;
    Object.defineProperty(this, MARKER, { value: true });
  }

  /** True for any SyncproxyError, whichever copy of `@syncproxy/core` made it. */
  static isInstance(value: unknown): value is SyncproxyError {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[MARKER] === true;
  }

  /** True when `value` is a SyncproxyError with one of `codes`. */
  static hasCode(value: unknown, ...codes: ErrorCode[]): value is SyncproxyError {
    return SyncproxyError.isInstance(value) && codes.includes(value.code);
  }

  toJSON(): SyncproxyErrorJson {
    const json: SyncproxyErrorJson = {
      name: this.name,
      code: this.code,
      message: this.message,
      retryable: this.retryable,
    };
    if (this.platform !== undefined) json.platform = this.platform;
    if (this.details !== undefined) json.details = this.details;
    if (this.cause !== undefined) json.cause = causeToJson(this.cause);
    return json;
  }

  /**
   * The error {@link SyncproxyError.toJSON} describes, for one that crossed a thread or a process
   * (its cause stays in its JSON form). Anything else than that JSON is an `internal` error that
   * keeps the value as its cause.
   */
  static fromJSON(json: unknown): SyncproxyError {
    const j = json as Partial<SyncproxyErrorJson> | null;
    if (typeof j !== 'object' || j === null || typeof j.message !== 'string' || typeof j.code !== 'string') {
      return new SyncproxyError('an error came back in an unknown form', { code: 'internal', cause: json });
    }
    const options: SyncproxyErrorOptions = { code: j.code };
    if (typeof j.retryable === 'boolean') options.retryable = j.retryable;
    if (typeof j.platform === 'string') options.platform = j.platform;
    if (typeof j.details === 'object' && j.details !== null) options.details = j.details;
    if (j.cause !== undefined) options.cause = j.cause;
    return new SyncproxyError(j.message, options);
  }
}

function causeToJson(cause: unknown, depth = 0): unknown {
  if (depth > 8) return '[cause chain truncated]';
  if (SyncproxyError.isInstance(cause)) return cause.toJSON();
  if (cause instanceof Error) {
    const out: Record<string, unknown> = { name: cause.name, message: cause.message };
    const code = (cause as { code?: unknown }).code;
    if (typeof code === 'string' || typeof code === 'number') out.code = code;
    if (cause.cause !== undefined) out.cause = causeToJson(cause.cause, depth + 1);
    return out;
  }
  if (typeof cause === 'object' && cause !== null) {
    // Error-like values that are not Errors (serialised errors, null-prototype clones made by test runners).
    const like = cause as { name?: unknown; message?: unknown; code?: unknown; cause?: unknown };
    if (typeof like.message === 'string') {
      const out: Record<string, unknown> = {
        name: typeof like.name === 'string' ? like.name : 'Error',
        message: like.message,
      };
      if (typeof like.code === 'string' || typeof like.code === 'number') out.code = like.code;
      if (like.cause !== undefined) out.cause = causeToJson(like.cause, depth + 1);
      return out;
    }
    try {
      return JSON.parse(JSON.stringify(cause)) as unknown;
    } catch {
      return '[unserializable cause]';
    }
  }
  return String(cause);
}
