/**
 * The bytes received from a socket and not yet parsed, kept as the list of
 * Buffers they arrived in. Headers are read from it in place; payloads are
 * copied once, straight into their destination, so a 4 MiB read costs one copy
 * and no concatenation.
 */
export class ByteQueue {
  private chunks: Buffer[] = [];
  /** Bytes of `chunks[0]` already consumed. */
  private head = 0;
  private total = 0;

  get length(): number {
    return this.total;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.total += chunk.length;
  }

  /** The byte at `index` from the front, without consuming it. */
  byteAt(index: number): number {
    let i = index + this.head;
    for (const chunk of this.chunks) {
      if (i < chunk.length) return chunk[i]!;
      i -= chunk.length;
    }
    throw new RangeError(`byteAt(${index}) beyond ${this.total} queued bytes`);
  }

  uint16At(index: number): number {
    return (this.byteAt(index) << 8) | this.byteAt(index + 1);
  }

  uint32At(index: number): number {
    const first = this.chunks[0];
    const at = this.head + index;
    if (first !== undefined && at + 4 <= first.length) return first.readUInt32BE(at);
    return (
      ((this.byteAt(index) << 24) |
        (this.byteAt(index + 1) << 16) |
        (this.byteAt(index + 2) << 8) |
        this.byteAt(index + 3)) >>>
      0
    );
  }

  /**
   * Consumes `n` bytes and returns them as one Buffer: a view when they lie in
   * one received chunk, else a copy. Meant for headers and small payloads.
   */
  take(n: number): Buffer {
    if (n > this.total) throw new RangeError(`take(${n}) beyond ${this.total} queued bytes`);
    const first = this.chunks[0];
    if (first !== undefined && this.head + n <= first.length) {
      const out = first.subarray(this.head, this.head + n);
      this.consume(n);
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    this.copyTo(out, 0, n);
    return out;
  }

  /** Consumes up to `n` bytes into `target` at `targetOffset`; returns how many were copied. */
  copyTo(target: Uint8Array, targetOffset: number, n: number): number {
    let copied = 0;
    while (copied < n && this.total > 0) {
      const chunk = this.chunks[0]!;
      const count = Math.min(n - copied, chunk.length - this.head);
      target.set(chunk.subarray(this.head, this.head + count), targetOffset + copied);
      copied += count;
      this.consume(count);
    }
    return copied;
  }

  /** Drops up to `n` bytes; returns how many were dropped. */
  skip(n: number): number {
    const count = Math.min(n, this.total);
    let left = count;
    while (left > 0) {
      const chunk = this.chunks[0]!;
      const step = Math.min(left, chunk.length - this.head);
      this.consume(step);
      left -= step;
    }
    return count;
  }

  /**
   * Copies the bytes left of the last pushed chunk, for when its buffer is
   * about to be reused. Earlier chunks are already owned, so a payload that
   * arrives over many reads is copied once, not once per read.
   */
  ownLast(): void {
    const last = this.chunks.length - 1;
    if (last < 0) return;
    const start = last === 0 ? this.head : 0;
    this.chunks[last] = Buffer.from(this.chunks[last]!.subarray(start));
    if (last === 0) this.head = 0;
  }

  clear(): void {
    this.chunks = [];
    this.head = 0;
    this.total = 0;
  }

  private consume(n: number): void {
    this.head += n;
    this.total -= n;
    const first = this.chunks[0];
    if (first !== undefined && this.head >= first.length) {
      this.chunks.shift();
      this.head = 0;
    }
  }
}
