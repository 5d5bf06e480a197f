/** Structured fields of a log line. Values are redacted before they are written. */
export type LogFields = Record<string, unknown>;

/**
 * One level of a logger, in pino's order: `(fields, message)` or `(message)`. The fields stay an
 * object, so a pino (or bunyan) instance keeps them as structured keys of the record.
 */
export interface LogFn {
  (fields: LogFields, message: string): void;
  (message: string): void;
}

/** The logger the SDK writes to. A pino instance fits as it is. */
export interface Logger {
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
}
