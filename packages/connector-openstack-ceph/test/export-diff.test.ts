import { type ExportDiffRecord, parseExportDiff } from '@syncproxy/connector-openstack-ceph';
import { SyncproxyError } from '@syncproxy/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  chunked,
  encodeExportDiff,
  type FixtureRecord,
  type FixtureStream,
  u32,
  u64,
} from './fixtures/export-diff-stream.js';

/** What a stream says, with data pieces joined back into whole records. */
interface Parsed {
  version: number;
  fromSnap?: string;
  toSnap?: string;
  sizeBytes?: number;
  isProtected?: boolean;
  records: Array<{ tag: 'w'; offset: number; data: string } | { tag: 'z'; offset: number; length: number }>;
  skipped: string[];
  ended: boolean;
}

async function parse(source: AsyncIterable<Uint8Array>, maxPieceBytes?: number): Promise<Parsed> {
  const out: Parsed = { version: 0, records: [], skipped: [], ended: false };
  let current: { offset: number; length: number; pieces: Uint8Array[]; next: number } | undefined;
  const flush = (): void => {
    if (!current) return;
    const data = Buffer.concat(current.pieces);
    expect(data.byteLength).toBe(current.length);
    out.records.push({ tag: 'w', offset: current.offset, data: data.toString('hex') });
    current = undefined;
  };
  for await (const r of parseExportDiff(source, { maxPieceBytes })) {
    if (r.type !== 'data') flush();
    switch (r.type) {
      case 'header':
        out.version = r.version;
        break;
      case 'from-snap':
        out.fromSnap = r.name;
        break;
      case 'to-snap':
        out.toSnap = r.name;
        break;
      case 'size':
        out.sizeBytes = r.sizeBytes;
        break;
      case 'protected':
        out.isProtected = r.isProtected;
        break;
      case 'skipped':
        out.skipped.push(r.tag);
        break;
      case 'write':
        current = { offset: r.offset, length: r.length, pieces: [], next: r.offset };
        break;
      case 'data':
        expect(current).toBeDefined();
        expect(r.offset).toBe(current!.next);
        if (maxPieceBytes !== undefined) expect(r.bytes.byteLength).toBeLessThanOrEqual(maxPieceBytes);
        current!.pieces.push(Buffer.from(r.bytes));
        current!.next += r.bytes.byteLength;
        break;
      case 'zero':
        out.records.push({ tag: 'z', offset: r.offset, length: r.length });
        break;
      case 'end':
        out.ended = true;
        break;
    }
  }
  return out;
}

function expected(stream: FixtureStream): Parsed {
  const out: Parsed = { version: stream.version, records: [], skipped: [], ended: !stream.withoutEnd };
  if (stream.fromSnap !== undefined) out.fromSnap = stream.fromSnap;
  if (stream.toSnap !== undefined) {
    out.toSnap = stream.toSnap;
    if (stream.version === 2) out.isProtected = stream.isProtected ?? false;
  }
  out.sizeBytes = stream.sizeBytes;
  for (const r of stream.records) {
    if (r.tag === 'w' && r.data.byteLength > 0) {
      out.records.push({ tag: 'w', offset: r.offset, data: Buffer.from(r.data).toString('hex') });
    } else if (r.tag === 'z' && r.length > 0)
      out.records.push({ tag: 'z', offset: r.offset, length: r.length });
    else if (r.tag === 'raw') out.skipped.push(r.code);
  }
  return out;
}

async function parseError(source: AsyncIterable<Uint8Array>): Promise<SyncproxyError> {
  try {
    await parse(source);
  } catch (error) {
    if (SyncproxyError.isInstance(error)) return error;
    throw error;
  }
  throw new Error('the stream parsed without error');
}

/** Sorted, non-overlapping w/z records inside an image of the returned size. */
const recordsArb = fc
  .array(
    fc.record({
      gap: fc.nat({ max: 5000 }),
      tag: fc.constantFrom('w' as const, 'z' as const),
      data: fc.uint8Array({ minLength: 1, maxLength: 300 }),
      zeroLength: fc.integer({ min: 1, max: 1 << 22 }),
    }),
    { maxLength: 12 },
  )
  .map((items) => {
    let at = 0;
    const records: FixtureRecord[] = [];
    for (const item of items) {
      const offset = at + item.gap;
      if (item.tag === 'w') {
        records.push({ tag: 'w', offset, data: item.data });
        at = offset + item.data.byteLength;
      } else {
        records.push({ tag: 'z', offset, length: item.zeroLength });
        at = offset + item.zeroLength;
      }
    }
    return { records, end: at };
  });

const streamArb: fc.Arbitrary<FixtureStream> = fc
  .record({
    version: fc.constantFrom(1 as const, 2 as const),
    fromSnap: fc.option(fc.string({ maxLength: 40 }), { nil: undefined }),
    toSnap: fc.option(fc.string({ maxLength: 40 }), { nil: undefined }),
    isProtected: fc.boolean(),
    slack: fc.nat({ max: 1 << 20 }),
    body: recordsArb,
  })
  .map(({ body, slack, ...rest }) => {
    const stream: FixtureStream = { ...rest, sizeBytes: body.end + slack, records: body.records };
    if (rest.fromSnap === undefined) delete stream.fromSnap;
    if (rest.toSnap === undefined) delete stream.toSnap;
    return stream;
  });

const cutsArb = fc.array(fc.nat({ max: 20_000 }), { maxLength: 40 });

describe('parseExportDiff', () => {
  it('parses a v1 stream as ceph writes it: banner, f, t, s, w, z, e', async () => {
    const bytes = encodeExportDiff({
      version: 1,
      fromSnap: 's1',
      toSnap: 's2',
      sizeBytes: 1 << 20,
      records: [
        { tag: 'w', offset: 4096, data: Buffer.from('hello') },
        { tag: 'z', offset: 8192, length: 512 },
      ],
    });
    const records: ExportDiffRecord[] = [];
    for await (const r of parseExportDiff(chunked(bytes))) records.push(r);
    expect(records).toEqual([
      { type: 'header', version: 1 },
      { type: 'from-snap', name: 's1' },
      { type: 'to-snap', name: 's2' },
      { type: 'size', sizeBytes: 1 << 20 },
      { type: 'write', offset: 4096, length: 5 },
      { type: 'data', offset: 4096, bytes: Buffer.from('hello') },
      { type: 'zero', offset: 8192, length: 512 },
      { type: 'end' },
    ]);
  });

  it('parses a v2 stream with its p record', async () => {
    const bytes = encodeExportDiff({
      version: 2,
      toSnap: 'snap',
      isProtected: true,
      sizeBytes: 65536,
      records: [{ tag: 'w', offset: 0, data: Uint8Array.of(1, 2, 3) }],
    });
    const parsed = await parse(chunked(bytes));
    expect(parsed).toEqual({
      version: 2,
      toSnap: 'snap',
      isProtected: true,
      sizeBytes: 65536,
      records: [{ tag: 'w', offset: 0, data: '010203' }],
      skipped: [],
      ended: true,
    });
  });

  it('yields exactly the records written, however the stream is chunked (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        streamArb,
        cutsArb,
        fc.integer({ min: 1, max: 512 }),
        async (stream, cuts, maxPiece) => {
          const parsed = await parse(chunked(encodeExportDiff(stream), cuts), maxPiece);
          expect(parsed).toEqual(expected(stream));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('fails with a protocol error on any truncation, never reporting the stream complete (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        streamArb,
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        cutsArb,
        async (stream, at, cuts) => {
          const bytes = encodeExportDiff(stream);
          const cut = Math.floor(at * bytes.byteLength);
          const error = await parseError(chunked(bytes.subarray(0, cut), cuts));
          expect(error.code).toBe('protocol');
          expect(error.retryable).toBe(false);
          expect(error.message).toMatch(
            /^rbd export-diff stream: truncated in .+ \(\d+ more bytes expected\) \(at byte \d+\)$/,
          );
        },
      ),
      { numRuns: 300 },
    );
  });

  it('fails with a protocol error when a stream ends without its e record', async () => {
    const bytes = encodeExportDiff({ version: 1, sizeBytes: 4096, records: [], withoutEnd: true });
    const error = await parseError(chunked(bytes));
    expect(error.message).toBe(
      'rbd export-diff stream: truncated in a record tag (1 more bytes expected) (at byte 21)',
    );
  });

  it('skips unknown v2 records by their length (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        streamArb.map((s) => ({ ...s, version: 2 as const })),
        fc.array(
          fc.record({
            index: fc.nat(),
            code: fc.constantFrom('x', 'Q', '!', 'W'),
            payload: fc.uint8Array({ maxLength: 600 }),
          }),
          {
            maxLength: 4,
          },
        ),
        cutsArb,
        async (stream, unknown, cuts) => {
          const records = [...stream.records];
          for (const u of unknown) {
            records.splice(u.index % (records.length + 1), 0, {
              tag: 'raw',
              code: u.code,
              payload: u.payload,
            });
          }
          const withUnknown = { ...stream, records };
          expect(await parse(chunked(encodeExportDiff(withUnknown), cuts))).toEqual(expected(withUnknown));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('rejects an unknown v1 tag with a protocol error naming it', async () => {
    const bytes = encodeExportDiff({
      version: 1,
      sizeBytes: 4096,
      records: [{ tag: 'raw', code: 'x', payload: Uint8Array.of(1, 2) }],
    });
    const error = await parseError(chunked(bytes));
    expect(error.code).toBe('protocol');
    expect(error.message).toBe('rbd export-diff stream: unknown record tag "x" in a v1 stream (at byte 21)');
  });

  it('rejects a v2 record whose framed length disagrees with its fields', async () => {
    const lying = Buffer.concat([
      Buffer.from('rbd diff v2\n'),
      Buffer.from('s'),
      u64(8),
      u64(1 << 20),
      Buffer.from('w'),
      u64(16 + 10),
      u64(0),
      u64(4),
      Buffer.from('abcd'),
      Buffer.from('e'),
    ]);
    const error = await parseError(chunked(lying));
    expect(error.code).toBe('protocol');
    expect(error.message).toBe(
      "rbd export-diff stream: 'w' record claims 26 payload bytes for 4 data bytes (at byte 29)",
    );
  });

  it('rejects a z record whose framed length is not 16', async () => {
    const lying = Buffer.concat([
      Buffer.from('rbd diff v2\n'),
      Buffer.from('z'),
      u64(17),
      u64(0),
      u64(4),
      Buffer.from('e'),
    ]);
    const error = await parseError(chunked(lying));
    expect(error.message).toBe(
      "rbd export-diff stream: 'z' record claims 17 payload bytes, its fields need 16 (at byte 12)",
    );
  });

  it('rejects a w record that claims more data than the stream holds, without buffering the claim', async () => {
    const lying = Buffer.concat([
      Buffer.from('rbd diff v1\n'),
      Buffer.from('w'),
      u64(0),
      u64(2 ** 40),
      Buffer.from('only this'),
    ]);
    const error = await parseError(chunked(lying));
    expect(error.message).toBe(
      "rbd export-diff stream: truncated in the data of a 'w' record (1099511627767 more bytes expected) (at byte 38)",
    );
  });

  it('rejects offsets and lengths beyond 2^53 - 1', async () => {
    const lying = Buffer.concat([
      Buffer.from('rbd diff v1\n'),
      Buffer.from('z'),
      Buffer.alloc(8, 0xff),
      u64(1),
      Buffer.from('e'),
    ]);
    const error = await parseError(chunked(lying));
    expect(error.message).toBe(
      "rbd export-diff stream: the offset of a 'z' record exceeds 2^53 - 1 (at byte 13)",
    );
  });

  it('rejects a snapshot name longer than the limit instead of buffering it', async () => {
    const lying = Buffer.concat([Buffer.from('rbd diff v1\n'), Buffer.from('f'), u32(0xffffffff)]);
    const error = await parseError(chunked(lying));
    expect(error.message).toBe(
      "rbd export-diff stream: 'f' record names a snapshot of 4294967295 bytes (limit 4096) (at byte 12)",
    );
  });

  it('rejects records that go backwards or overlap', async () => {
    const bytes = encodeExportDiff({
      version: 1,
      sizeBytes: 1 << 20,
      records: [
        { tag: 'w', offset: 100, data: new Uint8Array(50) },
        { tag: 'z', offset: 149, length: 10 },
      ],
    });
    const error = await parseError(chunked(bytes));
    expect(error.message).toBe(
      "rbd export-diff stream: 'z' record at offset 149 overlaps or precedes data already described up to 150 (at byte 88)",
    );
  });

  it('rejects a record that ends beyond the image size', async () => {
    const bytes = encodeExportDiff({
      version: 1,
      sizeBytes: 4096,
      records: [{ tag: 'z', offset: 4000, length: 97 }],
    });
    const error = await parseError(chunked(bytes));
    expect(error.message).toBe(
      "rbd export-diff stream: 'z' record 4000+97 ends beyond the image size 4096 (at byte 21)",
    );
  });

  it('rejects bytes after the end record', async () => {
    const bytes = Buffer.concat([
      encodeExportDiff({ version: 1, sizeBytes: 0, records: [] }),
      Buffer.from('x'),
    ]);
    const error = await parseError(chunked(bytes));
    expect(error.message).toBe('rbd export-diff stream: bytes follow the end record (at byte 22)');
  });

  it('rejects a stream that is not an rbd diff', async () => {
    const error = await parseError(chunked(Buffer.from('rbd image v2\nxxxxxxxx')));
    expect(error.message).toBe(
      'rbd export-diff stream: not an rbd diff stream (banner "rbd image v2") (at byte 0)',
    );
  });

  it('ends with records or a protocol error for any corruption of a valid stream (fuzz)', async () => {
    await fc.assert(
      fc.asyncProperty(
        streamArb,
        fc.array(fc.record({ at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }), {
          minLength: 1,
          maxLength: 6,
        }),
        cutsArb,
        async (stream, flips, cuts) => {
          const bytes = Buffer.from(encodeExportDiff(stream));
          for (const f of flips) bytes[12 + (f.at % Math.max(1, bytes.byteLength - 12))] = f.byte;
          try {
            const parsed = await parse(chunked(bytes, cuts));
            expect(parsed.ended).toBe(true);
          } catch (error) {
            expect(SyncproxyError.hasCode(error, 'protocol')).toBe(true);
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it('ends with records or a protocol error for random bytes after a banner (fuzz)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('rbd diff v1\n', 'rbd diff v2\n'),
        fc.uint8Array({ maxLength: 400 }),
        async (banner, tail) => {
          try {
            await parse(chunked(Buffer.concat([Buffer.from(banner), tail])));
          } catch (error) {
            expect(SyncproxyError.hasCode(error, 'protocol')).toBe(true);
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it('pulls the source only as records are consumed (bounded memory)', async () => {
    const size = 64 * 1024 * 1024;
    let pulled = 0;
    async function* source(): AsyncGenerator<Uint8Array> {
      yield Buffer.concat([Buffer.from('rbd diff v1\n'), Buffer.from('w'), u64(0), u64(size)]);
      for (let i = 0; i < size / 65536; i++) {
        pulled++;
        yield new Uint8Array(65536);
      }
      yield Buffer.from('e');
    }
    const records = parseExportDiff(source(), { maxPieceBytes: 65536 });
    let pieces = 0;
    for await (const r of records) {
      if (r.type === 'data') {
        pieces++;
        // One chunk is read ahead at most: the parser holds no more than that.
        expect(pulled).toBeLessThanOrEqual(pieces + 1);
        if (pieces === 10) break;
      }
    }
    expect(pulled).toBe(10);
  });

  it('stops with an aborted error when its signal aborts', async () => {
    const controller = new AbortController();
    const bytes = encodeExportDiff({
      version: 1,
      sizeBytes: 1 << 20,
      records: [{ tag: 'w', offset: 0, data: new Uint8Array(1000) }],
    });
    const records = parseExportDiff(chunked(bytes, [100, 200, 300]), { signal: controller.signal });
    await records.next();
    controller.abort();
    await expect(
      (async () => {
        for await (const _ of records);
      })(),
    ).rejects.toMatchObject({ code: 'aborted' });
  });
});
