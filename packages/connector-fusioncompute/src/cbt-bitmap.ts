import type { Extent } from '@syncproxy/core';
import { SyncproxyError } from '@syncproxy/core';

/** How getcbt spells its `bitMap` (UNCONFIRMED: "roundup(bitNum/4)" characters suggests hex). */
export type BitmapEncoding = 'hex' | 'base64';

/**
 * The bytes of a getcbt `bitMap`: bit `j` of byte `i` (low bit first) is block
 * `8i + j` of the page. In hex, each byte is two characters, high nibble first,
 * and a page that ends 1 to 4 blocks into a byte ends with one character: the
 * low nibble, which holds those blocks - that is what makes the length
 * `roundup(bitNum / 4)` (platforms/fusioncompute.md).
 */
export function decodeBitmap(bitMap: string, bitNum: number, encoding: BitmapEncoding): Uint8Array {
  const bytes = Math.ceil(bitNum / 8);
  if (encoding === 'base64') {
    const decoded = Buffer.from(bitMap, 'base64');
    if (decoded.length < bytes) throw badBitmap(`${decoded.length} bytes for ${bitNum} blocks`);
    return new Uint8Array(decoded.buffer, decoded.byteOffset, bytes);
  }
  const chars = Math.ceil(bitNum / 4);
  if (bitMap.length < chars || !/^[0-9a-fA-F]*$/.test(bitMap))
    throw badBitmap(`${bitMap.length} characters for ${bitNum} blocks (expected ${chars} hex characters)`);
  const out = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) {
    const pair = bitMap.slice(2 * i, 2 * i + 2);
    out[i] = Number.parseInt(pair.length === 2 && 2 * i + 2 <= chars ? pair : pair.slice(0, 1), 16);
  }
  // Blocks past bitNum in the last byte are not part of the page.
  const tail = bitNum % 8;
  if (tail !== 0) out[bytes - 1]! &= (1 << tail) - 1;
  return out;
}

/** The inverse of {@link decodeBitmap} (the mock's side). */
export function encodeBitmap(bits: Uint8Array, bitNum: number, encoding: BitmapEncoding): string {
  const bytes = Math.ceil(bitNum / 8);
  const view = bits.subarray(0, bytes);
  if (encoding === 'base64') return Buffer.from(view).toString('base64');
  let hex = Buffer.from(view).toString('hex');
  const chars = Math.ceil(bitNum / 4);
  if (chars % 2 === 1) hex = hex.slice(0, -2) + (view[bytes - 1]! & 0xf).toString(16);
  return hex;
}

/**
 * Appends the runs of set bits of one page as `data` extents to `out`,
 * coalescing with the last extent when a run continues across pages, and
 * clipping at `diskSize`.
 */
export function appendBitmapExtents(
  out: Extent[],
  bits: Uint8Array,
  page: { startBlock: number; bitNum: number; blockSizeBytes: number; diskSize: number },
): void {
  const { startBlock, bitNum, blockSizeBytes, diskSize } = page;
  let run = -1;
  const flush = (end: number): void => {
    const offset = (startBlock + run) * blockSizeBytes;
    const length = Math.min((startBlock + end) * blockSizeBytes, diskSize) - offset;
    run = -1;
    if (length <= 0) return;
    const last = out.at(-1);
    if (last !== undefined && last.kind === 'data' && last.offset + last.length === offset)
      last.length += length;
    else out.push({ offset, length, kind: 'data' });
  };
  for (let i = 0; i < bitNum; i++) {
    const byte = bits[i >> 3]!;
    if (byte === 0 && (i & 7) === 0 && i + 8 <= bitNum) {
      if (run !== -1) flush(i);
      i += 7;
      continue;
    }
    const set = (byte >> (i & 7)) & 1;
    if (set && run === -1) run = i;
    else if (!set && run !== -1) flush(i);
  }
  if (run !== -1) flush(bitNum);
}

function badBitmap(what: string): SyncproxyError {
  return new SyncproxyError(`getcbt answered a bitMap that does not decode: ${what}`, {
    code: 'protocol',
    retryable: false,
    platform: 'fusioncompute',
  });
}
