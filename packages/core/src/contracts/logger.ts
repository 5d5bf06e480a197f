/** Structured fields of a log line. Values are redacted before they are written. */
export type LogFields = Record<string, unknown>;

/** The logger the SDK writes to. Any pino/winston/console-like object fits. */
export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}
