import type { ChangedBlockReader, SyncWarning } from './contracts/reader.js';

/**
 * The reader with `warnings` added to its own (a connector's degraded mode,
 * found while opening it), every other member the reader's own: methods are
 * bound to the reader, so readers with `#private` state work through it.
 */
export function withReaderWarnings(
  reader: ChangedBlockReader,
  warnings: readonly SyncWarning[],
): ChangedBlockReader {
  if (warnings.length === 0) return reader;
  return new Proxy(reader, {
    get(target, property) {
      if (property === 'warnings') return [...(target.warnings ?? []), ...warnings];
      const value = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
