/**
 * Writes `rbd export-diff` streams (v1 and v2) the way ceph's Export.cc does:
 * the mock writes known bytes into a real test image with `rbd import-diff`,
 * and parser tests build streams, well-formed or not, with it.
 */
export type DiffStreamRecord =
  | { tag: 'w'; offset: number; data: Uint8Array }
  | { tag: 'z'; offset: number; length: number }
  /** Any tag with a raw payload (v2 framing adds the length). */
  | { tag: 'raw'; code: string; payload: Uint8Array };

export interface DiffStream {
  version: 1 | 2;
  fromSnap?: string;
  toSnap?: string;
  isProtected?: boolean;
  sizeBytes: number;
  records: DiffStreamRecord[];
  /** Leave out the `e` record. */
  withoutEnd?: boolean;
}

export function encodeExportDiff(stream: DiffStream): Uint8Array {
  const parts: Uint8Array[] = [Buffer.from(`rbd diff v${stream.version}\n`, 'latin1')];
  const record = (tag: string, payload: Uint8Array): void => {
    parts.push(Buffer.from(tag, 'latin1'));
    if (stream.version === 2) parts.push(u64(payload.byteLength));
    parts.push(payload);
  };
  const name = (text: string): Uint8Array => {
    const bytes = Buffer.from(text, 'utf8');
    return Buffer.concat([u32(bytes.byteLength), bytes]);
  };
  if (stream.fromSnap !== undefined) record('f', name(stream.fromSnap));
  if (stream.toSnap !== undefined) {
    record('t', name(stream.toSnap));
    if (stream.version === 2) record('p', Uint8Array.of(stream.isProtected ? 1 : 0));
  }
  record('s', u64(stream.sizeBytes));
  for (const r of stream.records) {
    if (r.tag === 'w') record('w', Buffer.concat([u64(r.offset), u64(r.data.byteLength), r.data]));
    else if (r.tag === 'z') record('z', Buffer.concat([u64(r.offset), u64(r.length)]));
    else record(r.code, r.payload);
  }
  if (!stream.withoutEnd) parts.push(Buffer.from('e', 'latin1'));
  return Buffer.concat(parts);
}

export function u64(value: number): Uint8Array {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(value));
  return b;
}

export function u32(value: number): Uint8Array {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(value);
  return b;
}
