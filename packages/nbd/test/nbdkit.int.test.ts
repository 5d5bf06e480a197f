import { randomBytes } from 'node:crypto';
import { mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type ChangedBlockReader,
  type Extent,
  FileCheckpointStore,
  FileSink,
  SyncproxyError,
  transferDisk,
} from '@syncproxy/core';
import { connectNbd, NbdReader, NbdSink } from '@syncproxy/nbd';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type NbdkitServer, nbdcopy, nbdinfoMap, sha256File, startNbdkit } from './nbdkit.js';

const MiB = 1024 * 1024;
const servers: NbdkitServer[] = [];
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'syncproxy-nbd-int-'));
});
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function nbdkit(
  args: string[],
  options: Parameters<typeof startNbdkit>[1] = {},
): Promise<NbdkitServer> {
  const server = await startNbdkit(args, options);
  servers.push(server);
  return server;
}

let fileCount = 0;
function tempFile(name: string): string {
  fileCount++;
  return join(dir, `${fileCount}-${name}`);
}

/** nbdinfo's map as extents of this SDK: ZERO (bit 1) reads as zeroes, anything else is data; runs merged. */
function mapToExtents(map: Array<{ offset: number; length: number; type: number }>): Extent[] {
  const out: Extent[] = [];
  for (const m of map) {
    const kind = (m.type & 2) !== 0 ? 'zero' : 'data';
    const last = out[out.length - 1];
    if (last && last.kind === kind && last.offset + last.length === m.offset) last.length += m.length;
    else out.push({ offset: m.offset, length: m.length, kind });
  }
  return out;
}

async function collect(reader: ChangedBlockReader): Promise<Extent[]> {
  const out: Extent[] = [];
  for await (const e of reader.extents()) out.push(e);
  return out;
}

/** A disk image with random data, zero runs and a hole, written as a file. */
async function makeImage(path: string, sizeBytes: number): Promise<void> {
  const data = randomBytes(sizeBytes);
  data.fill(0, sizeBytes / 8, sizeBytes / 4);
  data.fill(0, sizeBytes / 2, (sizeBytes * 5) / 8 + 12345);
  await writeFile(path, data);
}

/** Reads a local image: the test's stand-in for a connector's reader. */
async function fileReader(path: string): Promise<ChangedBlockReader> {
  const handle = await open(path, 'r');
  const { size } = await handle.stat();
  return {
    diskSize: size,
    granularity: 4096,
    hints: { incremental: false },
    async *extents() {
      yield { offset: 0, length: size, kind: 'data' };
    },
    async read(offset, length) {
      const out = Buffer.alloc(length);
      await handle.read(out, 0, length, offset);
      return out;
    },
    close: () => handle.close(),
  };
}

const noState = { checkpoint: false, manifest: false } as const;

const plugins: Array<[string, string[]]> = [
  ['memory', ['memory', 'size=48M']],
  [
    'sparse-random',
    ['sparse-random', 'size=96M', 'percent=50', 'seed=42', 'runlength=1048576', 'random-content=true'],
  ],
  [
    'data',
    ['data', '@0x1000 ( 0x55 0xaa 1 2 3 )*40000 @0x900000 ( "syncproxy" )*2000 @0x1ff0000 0xff', 'size=40M'],
  ],
];

describe.each(plugins)('a full copy from nbdkit %s', (name, args) => {
  it('has the SHA-256 of nbdcopy of the same export, and extents equal to nbdinfo --map', async () => {
    const server = await nbdkit(args);
    if (name === 'memory') {
      // Give the memory disk content first: random data with zero runs, written by nbdcopy.
      const image = tempFile('seed.img');
      await makeImage(image, 48 * MiB);
      await nbdcopy(image, server.uri);
    }
    const expected = tempFile('nbdcopy.img');
    await nbdcopy(server.uri, expected);

    const reader = await NbdReader.open({ uri: server.uri });
    expect(await collect(reader)).toEqual(mapToExtents(await nbdinfoMap(server.uri)));
    const target = tempFile('copy.img');
    const result = await transferDisk({ reader, sink: new FileSink(target), ...noState });
    await reader.close();

    expect((await stat(target)).size).toBe(reader.diskSize);
    expect(await sha256File(target)).toBe(await sha256File(expected));
    expect(result.bytesWritten + result.zeroBytes).toBe(reader.diskSize);
  });
});

describe('faults', () => {
  const disk = [
    'sparse-random',
    'size=64M',
    'percent=50',
    'seed=7',
    'runlength=1048576',
    'random-content=true',
  ];

  it('finishes byte-exact through retries when reads fail with EIO at a 10% rate', async () => {
    const clean = await nbdkit(disk);
    const expected = tempFile('expected.img');
    await nbdcopy(clean.uri, expected);
    const faulty = await nbdkit([...disk, 'error=EIO', 'error-pread-rate=10%'], { filters: ['error'] });

    // 256 KiB requests: about 128 reads, so the chance that none draws an error is about 1e-6.
    const reader = await NbdReader.open({ uri: faulty.uri, maxRequestBytes: 256 * 1024 });
    const target = tempFile('copy.img');
    const result = await transferDisk({
      reader,
      sink: new FileSink(target),
      retry: { attempts: 20, baseDelayMs: 1, maxDelayMs: 5 },
      ...noState,
    });
    await reader.close();
    expect(result.retries).toBeGreaterThan(0);
    expect(await sha256File(target)).toBe(await sha256File(expected));
  });

  it('stays byte-exact behind the delay filter', async () => {
    const clean = await nbdkit(disk);
    const expected = tempFile('expected.img');
    await nbdcopy(clean.uri, expected);
    const slow = await nbdkit([...disk, 'delay-read=20ms', 'delay-extents=50ms'], { filters: ['delay'] });

    const reader = await NbdReader.open({ uri: slow.uri });
    const target = tempFile('copy.img');
    await transferDisk({ reader, sink: new FileSink(target), ...noState });
    await reader.close();
    expect(await sha256File(target)).toBe(await sha256File(expected));
  });

  it('reports a server killed mid-copy as a typed error, and a resume completes byte-exact', async () => {
    const clean = await nbdkit(disk);
    const expected = tempFile('expected.img');
    await nbdcopy(clean.uri, expected);
    const socketPath = join(dir, 'restart.sock');
    const first = await nbdkit([...disk, 'delay-read=30ms'], { filters: ['delay'], socketPath });

    const target = tempFile('copy.img');
    const checkpoint = new FileCheckpointStore(`${target}.checkpoint.json`);
    const reader = await NbdReader.open({ uri: first.uri, connectTimeoutMs: 2000 });
    let killed: Promise<void> | undefined;
    const failed = await transferDisk({
      reader,
      sink: new FileSink(target),
      checkpoint,
      checkpointEvery: { chunks: 1 },
      manifest: false,
      concurrency: 2,
      retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 1 },
      onProgress: (p) => {
        if (p.chunksDone >= 2) killed ??= first.kill('SIGKILL');
      },
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    await killed;
    await reader.close();
    expect(SyncproxyError.isInstance(failed)).toBe(true);
    const error = failed as SyncproxyError;
    expect(error.code).toBe('network');
    // The engine owned the retries (2 attempts here): an error that used them up is no longer retryable.
    expect(error.retryable).toBe(false);

    await rm(socketPath, { force: true });
    const second = await nbdkit(disk, { socketPath });
    const again = await NbdReader.open({ uri: second.uri });
    const result = await transferDisk({
      reader: again,
      sink: new FileSink(target),
      checkpoint,
      manifest: false,
    });
    await again.close();
    expect(result.resumed).toBe(true);
    expect(result.chunksSkipped).toBeGreaterThanOrEqual(2);
    expect(await sha256File(target)).toBe(await sha256File(expected));
  });

  it('maps a server EPERM on write to a non-retryable permission error', async () => {
    const server = await nbdkit(['memory', 'size=1M', 'error=EPERM', 'error-pwrite-rate=100%'], {
      filters: ['error'],
    });
    const client = await connectNbd({ uri: server.uri });
    const error = await client.write(0, new Uint8Array(4096)).then(
      () => undefined,
      (e: unknown) => e as SyncproxyError,
    );
    expect(error?.code).toBe('permission');
    expect(error?.retryable).toBe(false);
    expect(error?.details).toMatchObject({ nbdError: 'EPERM', command: 'WRITE', offset: 0, length: 4096 });
    await client.close();
  });

  it('maps ENOSPC on write to a non-retryable io error', async () => {
    const server = await nbdkit(['memory', 'size=1M', 'error=ENOSPC', 'error-pwrite-rate=100%'], {
      filters: ['error'],
    });
    const sink = new NbdSink({ uri: server.uri });
    await sink.open(1024 * 1024);
    const error = await sink.write(0, new Uint8Array(4096)).then(
      () => undefined,
      (e: unknown) => e as SyncproxyError,
    );
    expect(error?.code).toBe('io');
    expect(error?.retryable).toBe(false);
    expect(error?.details).toMatchObject({ nbdError: 'ENOSPC' });
    await sink.close();
  });

  it('refuses a read-only export as a sink', async () => {
    const server = await nbdkit(['memory', 'size=1M'], { readOnly: true });
    const sink = new NbdSink({ uri: server.uri });
    const error = await sink.open(1024 * 1024).then(
      () => undefined,
      (e: unknown) => e as SyncproxyError,
    );
    expect(error?.code).toBe('permission');
    expect(error?.message).toBe('NBD export "" is read-only: it cannot be a sink');
    await sink.close();
  });
});

describe('NbdSink', () => {
  it('copies a file into the memory plugin; nbdcopy reads back identical bytes', async () => {
    const source = tempFile('source.img');
    await makeImage(source, 40 * MiB);
    const server = await nbdkit(['memory', 'size=40M']);
    // Content to be overwritten, so zero ranges must really be zeroed.
    const old = tempFile('old.img');
    await writeFile(old, Buffer.alloc(40 * MiB, 0xee));
    await nbdcopy(old, server.uri);
    const reader = await fileReader(source);
    const result = await transferDisk({ reader, sink: new NbdSink({ uri: server.uri }), ...noState });
    await reader.close();
    expect(result.zeroBytes).toBeGreaterThan(0);

    const back = tempFile('back.img');
    await nbdcopy(server.uri, back);
    expect((await readFile(back)).equals(await readFile(source))).toBe(true);
  });

  it('zeroes with WRITE_ZEROES, past a refused fast zero, and with zero bytes where the server has no zeroing', async () => {
    const modes: Array<[string[], string[], Partial<Record<'canWriteZeroes' | 'canFastZero', boolean>>]> = [
      [[], [], { canWriteZeroes: true }],
      [['nozero'], ['zeromode=plugin', 'fastzeromode=slow'], { canWriteZeroes: true, canFastZero: true }],
      [['nozero'], ['zeromode=none'], { canWriteZeroes: false }],
    ];
    for (const [filters, params, capabilities] of modes) {
      const server = await nbdkit(['memory', 'size=4M', ...params], { filters });
      const client = await connectNbd({ uri: server.uri });
      expect(client.info).toMatchObject(capabilities);
      const sink = new NbdSink({ client });
      await sink.open(4 * MiB);
      await sink.write(0, new Uint8Array(4 * MiB).fill(0x5a));
      await sink.writeZeroes(MiB, 2 * MiB);
      await sink.writeZeroes(3 * MiB, 4096);
      const back = await sink.read(0, 4 * MiB);
      await sink.close();
      await client.close();
      const expected = new Uint8Array(4 * MiB).fill(0x5a);
      expected.fill(0, MiB, 3 * MiB + 4096);
      expect(Buffer.from(back).equals(Buffer.from(expected))).toBe(true);
      await servers.pop()?.stop();
    }
  });
});

describe('NbdSink readInto', () => {
  it('reads the export back into a given shared buffer, as the engine reads kept bytes', async () => {
    const server = await nbdkit(['memory', 'size=2M']);
    const sink = new NbdSink({ uri: server.uri });
    await sink.open(2 * MiB);
    const data = randomBytes(MiB);
    await sink.write(512 * 1024, data);
    const target = new Uint8Array(new SharedArrayBuffer(MiB + 4096)).fill(9);
    await sink.readInto(512 * 1024 - 4096, target);
    await sink.close();
    expect(Buffer.from(target.subarray(0, 4096)).equals(Buffer.alloc(4096))).toBe(true);
    expect(Buffer.from(target.subarray(4096)).equals(data)).toBe(true);
  });
});

describe('NbdReader with changed extents', () => {
  it('applies only the given extents on top of the previous full image, matching nbdcopy of the new state', async () => {
    const server = await nbdkit(['memory', 'size=16M']);
    const seed = tempFile('seed.img');
    await makeImage(seed, 16 * MiB);
    await nbdcopy(seed, server.uri);
    const target = tempFile('target.img');
    const full = await NbdReader.open({ uri: server.uri });
    await transferDisk({ reader: full, sink: new FileSink(target), ...noState });
    await full.close();

    // The "CBT" of this change: two ranges rewritten, one zeroed.
    const client = await connectNbd({ uri: server.uri });
    await client.write(MiB, new Uint8Array(65536).fill(1));
    await client.write(9 * MiB + 4096, new Uint8Array(8192).fill(2));
    await client.writeZeroes(12 * MiB, MiB);
    await client.close();
    const changed: Extent[] = [
      { offset: MiB, length: 65536, kind: 'data' },
      { offset: 9 * MiB + 4096, length: 8192, kind: 'data' },
      { offset: 12 * MiB, length: MiB, kind: 'zero' },
    ];
    const incremental = await NbdReader.open({ uri: server.uri, changedExtents: changed });
    expect(await collect(incremental)).toEqual(changed);
    const result = await transferDisk({ reader: incremental, sink: new FileSink(target), ...noState });
    await incremental.close();
    expect(result.bytesRead).toBe(65536 + 8192);

    const expected = tempFile('expected.img');
    await nbdcopy(server.uri, expected);
    expect(await sha256File(target)).toBe(await sha256File(expected));
  });
});
