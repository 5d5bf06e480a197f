import { chmod, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openRbdReader, parseExportDiff, RbdCli } from '@syncproxy/connector-openstack-ceph';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExportDiffParser } from '../src/ceph/export-diff.js';
import { RbdExportDiffStream } from '../src/ceph/rbd-image.js';
import { SocketByteQueue } from '../src/ceph/socket-byte-queue.js';
import { encodeExportDiff, type FixtureRecord, type FixtureStream } from './fixtures/export-diff-stream.js';

/** A stand-in for the rbd CLI (`script` gets its directory) and an RbdCli that runs it. */
async function standInRbd(
  prefix: string,
  script: (dir: string) => string,
): Promise<{ dir: string; cli: RbdCli; remove(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const rbd = join(dir, 'rbd');
  await writeFile(rbd, script(dir));
  await chmod(rbd, 0o755);
  const cli = await cliFor(dir);
  return {
    dir,
    cli,
    remove: async () => {
      await cli.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** An RbdCli running the stand-in rbd of `dir`, with its private files there too. */
function cliFor(dir: string): Promise<RbdCli> {
  return RbdCli.create({
    monitors: '127.0.0.1',
    cephx: false,
    user: 'admin',
    rbdPath: join(dir, 'rbd'),
    tmpRoot: dir,
  });
}

/**
 * Feeds `bytes` to `queue` as a connected socket would, one read per event-loop turn: each read goes
 * into the buffer the queue named after the previous one (net's `onread`), stops short at every cut
 * (a socket hands a reader what is there), and pauses when the callback says so until the queue
 * resumes it. Records and their data then arrive split at any boundary, in the scratch buffer or
 * straight in the caller's buffer.
 */
function socketOver(queue: SocketByteQueue, bytes: Uint8Array, cuts: number[]): { destroyed: boolean } {
  const points = [...new Set(cuts)].sort((a, b) => a - b);
  const listeners: Record<string, Array<(error?: Error) => void>> = { end: [], close: [], error: [] };
  let at = 0;
  let flowing = true;
  let scheduled = false;
  let ended = false;
  let next = queue.onread.buffer();
  const socket = {
    destroyed: false,
    pause() {
      flowing = false;
    },
    resume() {
      flowing = true;
      schedule();
    },
    destroy() {
      if (socket.destroyed) return;
      socket.destroyed = true;
      for (const listener of listeners.close!) listener();
    },
    on(event: string, listener: (error?: Error) => void) {
      listeners[event]!.push(listener);
    },
  };
  const read = (): void => {
    scheduled = false;
    if (!flowing || socket.destroyed || ended) return;
    if (at >= bytes.byteLength) {
      ended = true;
      for (const listener of listeners.end!) listener();
      return;
    }
    const cut = points.find((p) => p > at) ?? bytes.byteLength;
    const count = Math.min(next.byteLength, cut - at, bytes.byteLength - at);
    next.set(bytes.subarray(at, at + count));
    at += count;
    if (queue.onread.callback(count, next) === false) flowing = false;
    next = queue.onread.buffer();
    schedule();
  };
  const schedule = (): void => {
    if (scheduled || !flowing) return;
    scheduled = true;
    setImmediate(read);
  };
  queue.attach(socket);
  schedule();
  return socket;
}

type Seen = { type: string; offset?: number; length?: number; data?: string };

/** Every record of `parser`, each write's data read into a fresh buffer at `slack` in pieces cut at `splits`. */
async function readAll(parser: ExportDiffParser, splits: number[], slack: number): Promise<Seen[]> {
  const seen: Seen[] = [];
  while (true) {
    const r = await parser.next();
    if (r.type === 'write') {
      const target = new Uint8Array(slack + r.length);
      const cuts = [...new Set(splits.map((s) => s % r.length).filter((s) => s > 0))].sort((a, b) => a - b);
      let at = 0;
      for (const end of [...cuts, r.length]) {
        await parser.readData(target, slack + at, end - at);
        at = end;
      }
      seen.push({ type: 'w', offset: r.offset, data: Buffer.from(target.subarray(slack)).toString('hex') });
    } else if (r.type === 'zero') seen.push({ type: 'z', offset: r.offset, length: r.length });
    else seen.push({ type: r.type });
    if (r.type === 'end') return seen;
  }
}

/** The same records by the streaming parser: the reference. */
async function reference(bytes: Uint8Array): Promise<Seen[]> {
  const seen: Seen[] = [];
  let data: Buffer[] = [];
  let write: { offset: number } | undefined;
  const flush = (): void => {
    if (write) seen.push({ type: 'w', offset: write.offset, data: Buffer.concat(data).toString('hex') });
    write = undefined;
    data = [];
  };
  for await (const r of parseExportDiff([bytes])) {
    if (r.type !== 'data') flush();
    if (r.type === 'write') write = { offset: r.offset };
    else if (r.type === 'data') data.push(Buffer.from(r.bytes));
    else if (r.type === 'zero') seen.push({ type: 'z', offset: r.offset, length: r.length });
    else seen.push({ type: r.type });
  }
  return seen;
}

/** Sorted w/z records, the writes large enough to pass the 64 KiB scratch buffer and be read directly. */
const streamArb: fc.Arbitrary<FixtureStream> = fc
  .record({
    version: fc.constantFrom(1 as const, 2 as const),
    items: fc.array(
      fc.record({
        gap: fc.nat({ max: 3000 }),
        isZero: fc.boolean(),
        length: fc.oneof(fc.integer({ min: 1, max: 300 }), fc.integer({ min: 4000, max: 150_000 })),
        fill: fc.nat({ max: 255 }),
      }),
      { maxLength: 8 },
    ),
  })
  .map(({ version, items }) => {
    let at = 0;
    const records: FixtureRecord[] = [];
    for (const item of items) {
      const offset = at + item.gap;
      if (item.isZero) records.push({ tag: 'z', offset, length: item.length });
      else {
        const data = new Uint8Array(item.length);
        for (let i = 0; i < data.length; i++) data[i] = (item.fill + i * 7 + (i >> 9)) & 0xff;
        records.push({ tag: 'w', offset, data });
      }
      at = offset + item.length;
    }
    return { version, toSnap: 's1', sizeBytes: at + 10, records };
  });

describe('ExportDiffParser over a socket read with onread', () => {
  it('lands every write record byte-exact in the caller buffer, whatever the short reads and read splits', async () => {
    await fc.assert(
      fc.asyncProperty(
        streamArb,
        fc.array(fc.nat({ max: 400_000 }), { maxLength: 30 }),
        fc.array(fc.nat({ max: 200_000 }), { maxLength: 6 }),
        fc.nat({ max: 5 }),
        async (stream, cuts, splits, slack) => {
          const bytes = encodeExportDiff(stream);
          const queue = new SocketByteQueue(undefined);
          const socket = socketOver(queue, bytes, cuts);
          const parser = new ExportDiffParser(queue);
          expect(await readAll(parser, splits, slack)).toEqual(await reference(bytes));
          await parser.close();
          expect(socket.destroyed).toBe(true);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('reads split at every byte of a record header and of its first data bytes', async () => {
    const data = new Uint8Array(70_000).map((_, i) => (i * 31) & 0xff);
    const stream: FixtureStream = {
      version: 2,
      sizeBytes: 1 << 20,
      records: [
        { tag: 'z', offset: 0, length: 4096 },
        { tag: 'w', offset: 4096, data },
      ],
    };
    const bytes = encodeExportDiff(stream);
    const expected = await reference(bytes);
    const writeAt = bytes.byteLength - 1 - data.byteLength - 16 - 8 - 1;
    for (let cut = 0; cut < bytes.byteLength - data.byteLength + 40; cut++) {
      const queue = new SocketByteQueue(undefined);
      socketOver(queue, bytes, [cut, writeAt + cut]);
      expect(await readAll(new ExportDiffParser(queue), [cut * 37], cut % 3)).toEqual(expected);
    }
  });

  it('fails a stream cut short inside the data of a write with a protocol error', async () => {
    const stream: FixtureStream = {
      version: 1,
      sizeBytes: 1 << 20,
      records: [{ tag: 'w', offset: 0, data: new Uint8Array(100_000).fill(7) }],
    };
    const bytes = encodeExportDiff(stream).subarray(0, 60_000);
    const queue = new SocketByteQueue(undefined);
    socketOver(queue, bytes, [5000]);
    await expect(readAll(new ExportDiffParser(queue), [], 0)).rejects.toMatchObject({ code: 'protocol' });
  });
});

describe('RbdExportDiffStream', () => {
  let dir: string;
  let cli: RbdCli;
  const data = new Uint8Array(3 << 20).map((_, i) => (i * 13 + (i >> 12)) & 0xff);
  const stream: FixtureStream = {
    version: 1,
    toSnap: 's1',
    sizeBytes: 8 << 20,
    records: [
      { tag: 'w', offset: 1 << 20, data },
      { tag: 'z', offset: 5 << 20, length: 1 << 20 },
    ],
  };

  let remove: () => Promise<void>;

  beforeAll(async () => {
    // A stand-in for rbd: prints the stream (on stdout, the socket), or fails like rbd does.
    ({ dir, cli, remove } = await standInRbd(
      'syncproxy-stream-test-',
      (at) =>
        `#!/bin/sh\nfor a in "$@"; do [ "$a" = pool/missing@s1 ] && { echo "rbd: error opening image missing: (2) No such file or directory" >&2; exit 2; }; done\nexec cat ${join(at, 'stream.bin')}\n`,
    ));
    await writeFile(join(dir, 'stream.bin'), encodeExportDiff(stream));
  });

  afterAll(() => remove());

  it.each([
    ['a Unix socket', true],
    ["Node's pipe (the fallback)", false],
  ])('reads rbd export-diff through %s into the caller buffer, byte-exact', async (_, useSocket) => {
    const diff = await RbdExportDiffStream.open(
      cli,
      { pool: 'pool', image: 'img', snapshot: 's1' },
      { useSocket },
    );
    const records: Seen[] = [];
    while (true) {
      const r = await diff.next();
      if (r.type === 'write') {
        const target = new Uint8Array(r.length);
        await diff.readData(target, 0, 1000);
        await diff.readData(target, 1000, r.length - 1000);
        expect(Buffer.from(target).equals(Buffer.from(data))).toBe(true);
      }
      records.push({ type: r.type });
      if (r.type === 'end') break;
    }
    expect(records.map((r) => r.type)).toEqual(['header', 'to-snap', 'size', 'write', 'zero', 'end']);
    await diff.close();
  });

  it("fails with rbd's own error when rbd exits before writing", async () => {
    const diff = await RbdExportDiffStream.open(cli, { pool: 'pool', image: 'missing', snapshot: 's1' });
    await expect(diff.next()).rejects.toMatchObject({ code: 'not-found' });
    await diff.close();
  });

  /** Every record of `diff`, the write's data checked against the fixture's. */
  async function readThrough(diff: RbdExportDiffStream): Promise<string[]> {
    const types: string[] = [];
    while (true) {
      const r = await diff.next();
      if (r.type === 'write') {
        const target = new Uint8Array(r.length);
        await diff.readData(target, 0, r.length);
        expect(Buffer.from(target).equals(Buffer.from(data))).toBe(true);
      }
      types.push(r.type);
      if (r.type === 'end') return types;
    }
  }

  it('falls back to the pipe where the socket path would not fit in sun_path, byte-exact', async () => {
    // A private directory deep enough that a socket path in it passes 107 bytes.
    const deep = join(dir, 'a'.repeat(60), 'b'.repeat(60));
    await mkdir(deep, { recursive: true });
    const longCli = await RbdCli.create({
      monitors: '127.0.0.1',
      cephx: false,
      user: 'admin',
      rbdPath: join(dir, 'rbd'),
      tmpRoot: deep,
    });
    try {
      const diff = await RbdExportDiffStream.open(longCli, { pool: 'pool', image: 'img', snapshot: 's1' });
      expect(await readThrough(diff)).toEqual(['header', 'to-snap', 'size', 'write', 'zero', 'end']);
      await diff.close();
    } finally {
      await longCli.close();
    }
  });

  it("removes the socket's file from the client's private directory once both ends are connected", async () => {
    const diff = await RbdExportDiffStream.open(cli, { pool: 'pool', image: 'img', snapshot: 's1' });
    const privateDirs = (await readdir(dir)).filter((name) => name.startsWith('syncproxy-rbd-'));
    expect(privateDirs).toHaveLength(1);
    expect((await readdir(join(dir, privateDirs[0]!))).filter((name) => name.startsWith('out-'))).toEqual([]);
    expect(await readThrough(diff)).toEqual(['header', 'to-snap', 'size', 'write', 'zero', 'end']);
    await diff.close();
  });

  it("leaves require following symlinks in the caller's process (no stat of the socket file: nodejs/node#51142)", async () => {
    // Two packages installed as links (pnpm's layout). Resolving the first puts the directories on
    // the way into require's cache; with a socket's or a FIFO's lstat the last stat of the process,
    // require then stops resolving links at a cached directory and hands back the link's path, from
    // where a package's own dependencies (a native binding beside it) are not found.
    const modules = join(dir, 'node_modules');
    for (const name of ['a', 'b']) {
      await mkdir(join(modules, '.store', name), { recursive: true });
      await writeFile(join(modules, '.store', name, 'index.js'), 'module.exports = 1;\n');
      await symlink(join('.store', name), join(modules, name));
    }
    const require = createRequire(join(dir, 'app.js'));
    expect(require.resolve('a')).toBe(join(modules, '.store', 'a', 'index.js'));
    const diff = await RbdExportDiffStream.open(cli, { pool: 'pool', image: 'img', snapshot: 's1' });
    expect(require.resolve('b')).toBe(join(modules, '.store', 'b', 'index.js'));
    expect(await readThrough(diff)).toEqual(['header', 'to-snap', 'size', 'write', 'zero', 'end']);
    await diff.close();
  });
});

describe('openRbdReader', () => {
  let dir: string;
  let cli: RbdCli;
  const sizeBytes = 8 << 20;
  const data = new Uint8Array(4 << 20).map((_, i) => (i * 5 + (i >> 10)) & 0xff);

  let remove: () => Promise<void>;

  beforeAll(async () => {
    // A stand-in for rbd whose diff (the listing) completes only once export-diff has started
    // (bounded: 5 s), so a reader that starts export-diff after the listing fails it.
    ({ dir, cli, remove } = await standInRbd('syncproxy-reader-test-', (at) =>
      [
        '#!/bin/sh',
        'for a in "$@"; do case "$a" in',
        `  info) echo '{"size":${sizeBytes},"object_size":4194304}'; exit 0;;`,
        `  diff) i=0; while [ ! -e ${join(at, 'export-diff-started')} ] && [ $i -lt 500 ]; do sleep 0.01; i=$((i+1)); done`,
        `    [ -e ${join(at, 'export-diff-started')} ] || { echo 'rbd: export-diff never started' >&2; exit 5; }`,
        `    echo '[{"offset":0,"length":4194304,"exists":"true"}]'; exit 0;;`,
        `  export-diff) touch ${join(at, 'export-diff-started')}; exec cat ${join(at, 'stream.bin')};;`,
        'esac; done',
        'exit 22',
        '',
      ].join('\n'),
    ));
    const stream: FixtureStream = {
      version: 1,
      toSnap: 's1',
      sizeBytes,
      records: [{ tag: 'w', offset: 0, data }],
    };
    await writeFile(join(dir, 'stream.bin'), encodeExportDiff(stream));
  });

  afterAll(() => remove());

  it('starts rbd export-diff while the extents are listed, before the first read', async () => {
    const reader = await openRbdReader({ cli, pool: 'pool', image: 'img', snapshot: 's1' });
    const extents = [];
    for await (const extent of reader.extents()) extents.push(extent);
    expect(extents).toEqual([{ offset: 0, length: 4 << 20, kind: 'data' }]);
    const bytes = await reader.read(0, 4 << 20);
    expect(Buffer.from(bytes).equals(Buffer.from(data))).toBe(true);
    await reader.close();
  });
});

describe('openRbdReader started ahead of its first listing', () => {
  let dir: string;
  let cli: RbdCli;
  const sizeBytes = 4 << 20;

  let remove: () => Promise<void>;

  beforeAll(async () => {
    // rbd info answers only once the rbd diff started with it has printed its listing and exited
    // (Node has reaped it): the listing is then read after its process is gone.
    ({ dir, cli, remove } = await standInRbd('syncproxy-early-test-', (at) => {
      const pid = join(at, 'diff.pid');
      return [
        '#!/bin/sh',
        'for a in "$@"; do case "$a" in',
        `  info) i=0; while [ ! -e ${pid} ] && [ $i -lt 500 ]; do sleep 0.01; i=$((i+1)); done`,
        `    while kill -0 "$(cat ${pid})" 2>/dev/null && [ $i -lt 1000 ]; do sleep 0.01; i=$((i+1)); done`,
        `    echo '{"size":${sizeBytes},"object_size":4194304}'; exit 0;;`,
        `  diff) echo '[{"offset":0,"length":${sizeBytes},"exists":"true"}]'; echo $$ > ${pid}.tmp; mv ${pid}.tmp ${pid}; exit 0;;`,
        '  export-diff) exit 0;;',
        '  sleepy) echo listing; exec sleep 30;;',
        'esac; done',
        'exit 22',
        '',
      ].join('\n');
    }));
  });

  afterAll(() => remove());

  it('keeps the listing of an rbd diff that exited before the engine lists', async () => {
    const reader = await openRbdReader({ cli, pool: 'pool', image: 'img', snapshot: 's1' });
    const extents = [];
    for await (const extent of reader.extents()) extents.push(extent);
    expect(extents).toEqual([{ offset: 0, length: sizeBytes, kind: 'data' }]);
    await reader.close();
  });

  it('declares a full read without a base and an incremental with one (hints.incremental)', async () => {
    const full = await openRbdReader({ cli, pool: 'pool', image: 'img', snapshot: 's1' });
    expect(full.hints?.incremental).toBe(false);
    await full.close();
    const incremental = await openRbdReader({
      cli,
      pool: 'pool',
      image: 'img',
      snapshot: 's1',
      fromSnapshot: 's0',
    });
    expect(incremental.hints?.incremental).toBe(true);
    await incremental.close();
  });

  it('closes a reader whose listing nobody read', async () => {
    const reader = await openRbdReader({ cli, pool: 'pool', image: 'img', snapshot: 's1' });
    await reader.close();
  });

  it('closes a client whose running command printed what nobody read', async () => {
    const own = await cliFor(dir);
    const proc = own.spawn(['sleepy']);
    // The command has printed once its first bytes are there; it then runs until it is ended.
    await new Promise((resolve) => proc.stdout.once('readable', resolve));
    await own.close();
    await expect(proc.exited).rejects.toMatchObject({ code: expect.any(String) });
  });
});
