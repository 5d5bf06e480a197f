import { type ChangedBlockReader, type Extent, withReaderWarnings } from '@syncproxy/core';
import { describe, expect, it } from 'vitest';

class PrivateReader implements ChangedBlockReader {
  readonly diskSize = 8;
  readonly granularity = 1;
  readonly warnings = [{ code: 'own', message: 'the reader says so' }];
  readonly hints = { chunkSizeBytes: 4 };
  #bytes = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
  async *extents(): AsyncIterable<Extent> {
    yield { offset: 0, length: this.#bytes.length, kind: 'data' };
  }
  async read(offset: number, length: number): Promise<Uint8Array> {
    return this.#bytes.slice(offset, offset + length);
  }
  async close(): Promise<void> {}
}

describe('withReaderWarnings', () => {
  it('adds the warnings after the reader’s own and keeps every member, #private state included', async () => {
    const reader = withReaderWarnings(new PrivateReader(), [
      { code: 'hash-diff', message: 'no change tracking' },
    ]);
    expect(reader.warnings).toEqual([
      { code: 'own', message: 'the reader says so' },
      { code: 'hash-diff', message: 'no change tracking' },
    ]);
    expect(reader.hints).toEqual({ chunkSizeBytes: 4 });
    expect([...(await reader.read(2, 3))]).toEqual([3, 4, 5]);
    const extents: Extent[] = [];
    for await (const extent of reader.extents()) extents.push(extent);
    expect(extents).toEqual([{ offset: 0, length: 8, kind: 'data' }]);
  });

  it('returns the reader itself when there is nothing to add', () => {
    const inner = new PrivateReader();
    expect(withReaderWarnings(inner, [])).toBe(inner);
  });
});
