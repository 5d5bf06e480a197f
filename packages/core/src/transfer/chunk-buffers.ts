/**
 * Chunk buffers on SharedArrayBuffers, reused from one chunk to the next: no
 * allocation (page faults, GC of external memory) per read, and a hashing
 * worker can read them without a copy. Only full-size chunks are pooled; at
 * most `maxPooled` are kept, so the pool never holds more than the engine's
 * in-flight bound.
 */
export class ChunkBufferPool {
  private readonly free: Uint8Array[] = [];

  constructor(
    private readonly chunkSizeBytes: number,
    private readonly maxPooled: number,
  ) {}

  acquire(length: number): Uint8Array {
    if (length === this.chunkSizeBytes) {
      const reused = this.free.pop();
      if (reused !== undefined) return reused;
    }
    return new Uint8Array(new SharedArrayBuffer(length));
  }

  /** Gives a buffer back once nothing reads or writes it any more. */
  release(buffer: Uint8Array): void {
    if (buffer.byteLength === this.chunkSizeBytes && this.free.length < this.maxPooled)
      this.free.push(buffer);
  }
}
