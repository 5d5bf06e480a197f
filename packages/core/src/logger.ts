import type { Redactor } from './config/redact.js';
import type { LogFields, Logger } from './contracts/logger.js';

/** A logger that writes nothing. */
export const silentLogger: Logger = Object.freeze({
  debug() {},
  info() {},
  warn() {},
  error() {},
});

/** Log levels, lowest first. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

/** A logger writing one JSON line per entry to stderr (or `write`), at `level` and above. */
export function createJsonLogger(options: { level?: LogLevel; write?: (line: string) => void } = {}): Logger {
  const min = LEVELS.indexOf(options.level ?? 'info');
  const write = options.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  const at =
    (level: LogLevel) =>
    (first: LogFields | string, second?: string): void => {
      if (LEVELS.indexOf(level) < min) return;
      const [fields, message] = typeof first === 'string' ? [undefined, first] : [first, second ?? ''];
      write(JSON.stringify({ time: new Date().toISOString(), level, message, ...fields }));
    };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** Wraps a logger so that no message or field it receives carries a secret. */
export function redactingLogger(logger: Logger, redactor: Redactor): Logger {
  const at =
    (level: LogLevel) =>
    (first: LogFields | string, second?: string): void => {
      if (typeof first === 'string') logger[level](redactor.text(first));
      else logger[level](redactor.value(first) as LogFields, redactor.text(second ?? ''));
    };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}
