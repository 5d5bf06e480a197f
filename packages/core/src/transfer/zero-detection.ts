/** Zero pages compared against with memcmp: one buffer shared by every transfer, never written. */
const ZERO_BLOCK_BYTES = 1 << 20;
export const ZERO_BLOCK: Uint8Array = new Uint8Array(ZERO_BLOCK_BYTES);

/**
 * True when every byte of `data` is 0. Buffer.compare is a native memcmp,
 * an order of magnitude faster than a JavaScript loop over the bytes.
 */
export function isAllZero(data: Uint8Array): boolean {
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  for (let at = 0; at < bytes.length; at += ZERO_BLOCK_BYTES) {
    const end = Math.min(at + ZERO_BLOCK_BYTES, bytes.length);
    if (Buffer.compare(bytes.subarray(at, end), ZERO_BLOCK.subarray(0, end - at)) !== 0) return false;
  }
  return true;
}

/**
 * Zeroes `length` bytes of `target` from `at`. Copies from a shared zero buffer:
 * on a SharedArrayBuffer, `fill` takes a slow element-wise path, a copy is memcpy.
 */
export function zeroFill(target: Uint8Array, at: number, length: number): void {
  for (let done = 0; done < length; done += ZERO_BLOCK_BYTES) {
    target.set(ZERO_BLOCK.subarray(0, Math.min(ZERO_BLOCK_BYTES, length - done)), at + done);
  }
}
