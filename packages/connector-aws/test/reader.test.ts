import { type AwsConnectorOptions, createAwsConnector } from '@syncproxy/connector-aws';
import {
  BLOCK_SIZE,
  type MockAws,
  type MockAwsOptions,
  startMockAws,
  type VolumeDisk,
  type VolumeSnapshotView,
} from '@syncproxy/connector-aws/mock';
import {
  type BlockSink,
  type ConnectorSession,
  type Host,
  SyncproxyError,
  transferDisk,
} from '@syncproxy/core';
import { seededBytes, VirtualDisk } from '@syncproxy/testkit/mock';
import { afterEach, describe, expect, test } from 'vitest';
import { AwsClient } from '../src/client.js';
import { awsConfigSchema } from '../src/config.js';
import { EbsSnapshotReader } from '../src/reader.js';
import { applyReader, coalesce, collectExtents } from './helpers.js';

const GIB = 1024 ** 3;
const FAST = {
  snapshotWait: { initialDelayMs: 0 },
  retry: { baseDelayMs: 1, maxDelayMs: 5 },
} satisfies AwsConnectorOptions;

let open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const thing of open.reverse()) await thing.close();
  open = [];
});

async function setup(
  options: { mock?: MockAwsOptions; connector?: AwsConnectorOptions; config?: Record<string, unknown> } = {},
): Promise<{ aws: MockAws; session: ConnectorSession; host: Host; disk: VirtualDisk }> {
  const aws = await startMockAws(options.mock);
  open.push(aws);
  const disk = new VirtualDisk({ sizeBytes: GIB });
  disk.write(0, seededBytes(1, 3 * BLOCK_SIZE + 1000));
  disk.write(40 * BLOCK_SIZE - 5, seededBytes(2, 20 * BLOCK_SIZE));
  disk.write(GIB - 10, seededBytes(3, 10));
  aws.addInstance({ name: 'db', volumes: [{ disk }] });
  const session = await createAwsConnector({ ...FAST, ...options.connector }).connect({
    ...aws.config(),
    ...options.config,
  });
  open.push(session);
  const [host] = await session.listHosts();
  return { aws, session, host: host!, disk };
}

function live(disk: VirtualDisk): Uint8Array {
  return disk.read(0, disk.sizeBytes);
}

describe('credentials', () => {
  test('a wrong secret fails with an auth error on the first request, not retried', async () => {
    const aws = await startMockAws();
    open.push(aws);
    const session = await createAwsConnector(FAST).connect({
      ...aws.config(),
      secretAccessKey: 'not-the-secret',
    });
    open.push(session);
    const error = await session.verify().catch((e: unknown) => e);
    expect(SyncproxyError.isInstance(error)).toBe(true);
    expect(error).toMatchObject({
      code: 'auth',
      retryable: false,
      platform: 'aws',
      platformCode: 'AuthFailure',
      status: 401,
    });
    expect((error as Error).message).toBe(
      'DescribeRegions failed: HTTP 401 AuthFailure: AWS was not able to validate the provided access credentials (check the access key id and the secret access key)',
    );
    expect((error as Error).message).not.toContain('not-the-secret');
    expect(aws.calls).toHaveLength(1);
    expect(aws.state.stats.authFailures).toBe(1);
  });

  test('EBS answers a wrong secret with 403 InvalidSignatureException and an unknown key with UnrecognizedClientException', async () => {
    const { aws, session, host } = await setup();
    const snapshot = await session.createSnapshot(host);
    const snapshotId = snapshot.disks[0]!.data.snapshotId as string;
    for (const [override, name] of [
      [{ secretAccessKey: 'wrong' }, 'InvalidSignatureException'],
      [{ accessKeyId: 'AKIAUNKNOWNKEY000000' }, 'UnrecognizedClientException'],
    ] as const) {
      const client = new AwsClient({
        config: awsConfigSchema.parse({ ...aws.config(), ...override }),
        retry: { attempts: 3, baseDelayMs: 1 },
      });
      const before = aws.calls.length;
      const error = await client.listBlocks({ snapshotId }).catch((e: unknown) => e);
      client.close();
      expect(error).toMatchObject({ code: 'auth', retryable: false, status: 403, platformCode: name });
      expect(aws.calls.length - before).toBe(1);
    }
  });
});

describe('full and incremental reads', () => {
  test('a full read lists only written blocks and returns the disk byte for byte', async () => {
    const { aws, session, host, disk } = await setup();
    const reader = await session.openReader(host.disks[0]!, { snapshot: await session.createSnapshot(host) });
    expect(coalesce(await collectExtents(reader))).toEqual([
      { offset: 0, length: 4 * BLOCK_SIZE, kind: 'data' },
      { offset: 39 * BLOCK_SIZE, length: 21 * BLOCK_SIZE, kind: 'data' },
      { offset: GIB - BLOCK_SIZE, length: BLOCK_SIZE, kind: 'data' },
    ]);
    expect(Buffer.compare(await applyReader(reader), live(disk))).toBe(0);
    expect(aws.state.stats.blocksServed).toBe(26);
  });

  test('an incremental lists exactly the changed blocks (data, and zero for discarded ones) and gives the new disk', async () => {
    const { session, host, disk } = await setup();
    const first = await session.createSnapshot(host);
    const image = await applyReader(await session.openReader(host.disks[0]!, { snapshot: first }));
    disk.write(41 * BLOCK_SIZE + 3, seededBytes(9, 5));
    disk.writeZeroes(0, BLOCK_SIZE);
    disk.write(100 * BLOCK_SIZE, seededBytes(10, BLOCK_SIZE));
    const second = await session.createSnapshot(host);
    const reader = await session.openReader(host.disks[0]!, { snapshot: second, base: first });
    expect(await collectExtents(reader)).toEqual([
      { offset: 0, length: BLOCK_SIZE, kind: 'zero' },
      { offset: 41 * BLOCK_SIZE, length: BLOCK_SIZE, kind: 'data' },
      { offset: 100 * BLOCK_SIZE, length: BLOCK_SIZE, kind: 'data' },
    ]);
    expect(Buffer.compare(await applyReader(reader, image), live(disk))).toBe(0);
  });

  test('declares a full read without a base and an incremental with one (hints.incremental)', async () => {
    const aws = await startMockAws();
    open.push(aws);
    const client = new AwsClient({ config: awsConfigSchema.parse(aws.config()) });
    const full = new EbsSnapshotReader({ client, snapshotId: 'snap-2', diskSizeBytes: GIB });
    const incremental = new EbsSnapshotReader({
      client,
      snapshotId: 'snap-2',
      baseSnapshotId: 'snap-1',
      diskSizeBytes: GIB,
    });
    expect(full.hints?.incremental).toBe(false);
    expect(incremental.hints?.incremental).toBe(true);
    client.close();
  });

  test('snapshots of different volumes are refused as UNRELATED_SNAPSHOTS, a cbt-reset that asks for a full sync', async () => {
    const { aws, session, host } = await setup();
    aws.addInstance({ name: 'other', volumes: [{ sizeBytes: GIB }] });
    const other = (await session.listHosts()).find((h) => h.name === 'other')!;
    const base = await session.createSnapshot(other);
    const snapshot = await session.createSnapshot(host);
    const mixed = { ...base, disks: [{ ...base.disks[0]!, diskId: host.disks[0]!.id }] };
    const reader = await session.openReader(host.disks[0]!, { snapshot, base: mixed });
    const error = await collectExtents(reader).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'cbt-reset', retryable: false, platformCode: 'ValidationException' });
    expect((error as Error).message).toContain('(UNRELATED_SNAPSHOTS)');
  });

  test('a pending snapshot is refused by the mock with ValidationException, and by openReader before any read', async () => {
    const { aws, session, host } = await setup({ mock: { snapshotPollsUntilCompleted: 0 } });
    const done = await session.createSnapshot(host);
    const snapshotId = done.disks[0]!.data.snapshotId as string;
    Object.assign(aws.state.snapshots.get(snapshotId)!, {
      state: 'pending',
      pollsLeft: 100,
      pollsTotal: 100,
    });
    await expect(session.openReader(host.disks[0]!, { snapshot: done })).rejects.toMatchObject({
      code: 'conflict',
    });
    const client = new AwsClient({ config: awsConfigSchema.parse(aws.config()) });
    await expect(client.listBlocks({ snapshotId })).rejects.toMatchObject({
      platformCode: 'ValidationException',
      reason: 'INVALID_SNAPSHOT_ID',
    });
    await expect(client.listBlocks({ snapshotId: 'snap-0000000000000ffff' })).rejects.toMatchObject({
      code: 'not-found',
      reason: 'SNAPSHOT_NOT_FOUND',
    });
    client.close();
  });

  test('an archived snapshot is refused as unsupported', async () => {
    const { aws, session, host } = await setup();
    const snapshot = await session.createSnapshot(host);
    aws.state.snapshots.get(snapshot.disks[0]!.data.snapshotId as string)!.storageTier = 'archive';
    await expect(session.openReader(host.disks[0]!, { snapshot })).rejects.toMatchObject({
      code: 'unsupported',
    });
  });
});

describe('faults', () => {
  test('throttling on 20% of requests still gives the disk byte for byte', async () => {
    const { aws, session, host, disk } = await setup({
      connector: { retry: { attempts: 10, baseDelayMs: 1, maxDelayMs: 5 } },
    });
    const snapshot = await session.createSnapshot(host);
    const reader = await session.openReader(host.disks[0]!, { snapshot });
    const fault = aws.throttle({ ratio: 0.2 });
    const image = await applyReader(reader);
    fault.remove();
    expect(Buffer.compare(image, live(disk))).toBe(0);
    expect(fault.hits).toBeGreaterThan(0);
  });

  test('a block sent once with a wrong checksum is fetched again and the result is exact', async () => {
    const { aws, session, host, disk } = await setup();
    const reader = await session.openReader(host.disks[0]!, { snapshot: await session.createSnapshot(host) });
    aws.corruptChecksums(1);
    expect(Buffer.compare(await applyReader(reader), live(disk))).toBe(0);
    expect(aws.state.stats.corruptedBlocks).toBe(1);
    expect(aws.state.stats.blocksServed).toBe(27);
  });

  test('readInto a reused SharedArrayBuffer: exact bytes across partial, whole and unwritten blocks, a bad checksum refetched', async () => {
    const { aws, session, host, disk } = await setup();
    const reader = await session.openReader(host.disks[0]!, { snapshot: await session.createSnapshot(host) });
    // From inside block 2 to inside block 45: partial ends, whole blocks in place, blocks 4-38 never written.
    const offset = 2 * BLOCK_SIZE + 777;
    const length = 43 * BLOCK_SIZE + 1234;
    const target = new Uint8Array(new SharedArrayBuffer(length + 10)).fill(0xaa);
    aws.corruptChecksums(1);
    await reader.readInto!(target.subarray(5, 5 + length), offset);
    expect(Buffer.compare(target.subarray(5, 5 + length), disk.read(offset, length))).toBe(0);
    expect([...target.subarray(0, 5), ...target.subarray(5 + length)]).toEqual(new Array(10).fill(0xaa));
    expect(aws.state.stats.corruptedBlocks).toBe(1);
  });

  test('a block whose checksum is always wrong fails with an integrity error, not retried further', async () => {
    const { aws, session, host } = await setup({ connector: { retry: { attempts: 3, baseDelayMs: 1 } } });
    const reader = await session.openReader(host.disks[0]!, { snapshot: await session.createSnapshot(host) });
    aws.corruptChecksums(Number.POSITIVE_INFINITY);
    const error = await reader.read(0, BLOCK_SIZE).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'integrity', retryable: false, platform: 'aws' });
    expect((error as Error).message).toMatch(
      /^GetSnapshotBlock snap-[0-9a-f]+ block 0 failed verification: SHA-256 of the body is \S+, x-amz-Checksum says \S+; still wrong after 3 attempts$/,
    );
    expect(aws.state.stats.corruptedBlocks).toBe(3);
  });

  test('a block whose checksum is always wrong, read into shared memory (its SHA-256 taken on the hashing threads), fails with the same integrity error', async () => {
    const { aws, session, host } = await setup({ connector: { retry: { attempts: 3, baseDelayMs: 1 } } });
    const reader = await session.openReader(host.disks[0]!, { snapshot: await session.createSnapshot(host) });
    aws.corruptChecksums(Number.POSITIVE_INFINITY);
    const target = new Uint8Array(new SharedArrayBuffer(BLOCK_SIZE));
    const error = await reader.readInto!(target, 0).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'integrity', retryable: false, platform: 'aws' });
    expect((error as Error).message).toMatch(
      /^GetSnapshotBlock snap-[0-9a-f]+ block 0 failed verification: SHA-256 of the body is \S+, x-amz-Checksum says \S+; still wrong after 3 attempts$/,
    );
    expect(aws.state.stats.corruptedBlocks).toBe(3);
  });

  test('a GetSnapshotBlock that always answers 503 is requested exactly 6 times (the client owns the retries), then fails for good', async () => {
    const { aws, session, host } = await setup();
    const reader = await session.openReader(host.disks[0]!, { snapshot: await session.createSnapshot(host) });
    aws.faults.add({
      kind: 'status',
      status: 503,
      path: /\/blocks\/0$/,
      body: { Message: 'unavailable' },
      headers: { 'x-amzn-errortype': 'ServiceUnavailableException' },
    });
    const sink: BlockSink = {
      write: async () => {},
      writeZeroes: async () => {},
      flush: async () => {},
      close: async () => {},
    };
    const error = await transferDisk({
      reader,
      sink,
      concurrency: 1,
      retry: { baseDelayMs: 1, maxDelayMs: 2 },
      checkpoint: false,
      manifest: false,
    }).catch((e: unknown) => e);
    await reader.close();
    expect(error).toMatchObject({
      code: 'platform',
      retryable: false,
      platform: 'aws',
      details: { attempts: 6 },
    });
    expect(aws.calls.filter((c) => /\/blocks\/0$/.test(c.path))).toHaveLength(6);
  });

  test('a block AWS throttles 8 times in a row is still read (a refusal did no work: 12 tries), byte for byte', async () => {
    const { aws, session, host, disk } = await setup();
    const reader = await session.openReader(host.disks[0]!, { snapshot: await session.createSnapshot(host) });
    const fault = aws.faults.add({
      kind: 'status',
      status: 400,
      path: /\/blocks\/0$/,
      times: 8,
      body: { Message: 'Rate exceeded', Reason: 'ACCOUNT_THROTTLED' },
      headers: { 'x-amzn-errortype': 'RequestThrottledException' },
    });
    const image = await applyReader(reader);
    expect(fault.hits).toBe(8);
    expect(Buffer.compare(image, live(disk))).toBe(0);
  });

  test('a 500 from GetSnapshotBlock is retried', async () => {
    const { aws, session, host, disk } = await setup();
    const reader = await session.openReader(host.disks[0]!, { snapshot: await session.createSnapshot(host) });
    aws.faults.add({
      kind: 'status',
      status: 500,
      path: /\/blocks\/\d+$/,
      times: 2,
      body: { Message: 'internal' },
      headers: { 'x-amzn-errortype': 'InternalServerException' },
    });
    expect(Buffer.compare(await applyReader(reader), live(disk))).toBe(0);
  });
});

describe('tokens and pages', () => {
  test('block tokens that expire mid-read are re-listed from their block index and the result is exact', async () => {
    let now = Date.UTC(2026, 0, 1);
    const clock = { now: () => now };
    const { aws, session, host, disk } = await setup({
      mock: { now: clock.now, blockTokenLifetimeSec: 300 },
      connector: { clock, reader: { pageSize: 100 } },
    });
    const reader = await session.openReader(host.disks[0]!, { snapshot: await session.createSnapshot(host) });
    const extents = await collectExtents(reader);
    // Each block read moves time on by 30 s: tokens (300 s) expire every few blocks.
    const tick = (): boolean => {
      now += 30_000;
      return false;
    };
    aws.faults.add({ kind: 'latency', ms: 0, path: /\/blocks\/\d+$/, when: tick });
    const image = new Uint8Array(disk.sizeBytes);
    for (const e of extents) image.set(await reader.read(e.offset, e.length), e.offset);
    expect(Buffer.compare(image, live(disk))).toBe(0);
    expect(aws.state.stats.requests.ListSnapshotBlocks).toBeGreaterThan(1);
  });

  test('a token AWS refuses as expired (clocks disagree) is re-listed once and the result is exact', async () => {
    // The mock's clock runs ahead of the reader's (the system clock) by 301 s after the listing.
    let now = Date.now();
    const { aws, session, host, disk } = await setup({
      mock: { now: () => now, blockTokenLifetimeSec: 300 },
    });
    const reader = await session.openReader(host.disks[0]!, { snapshot: await session.createSnapshot(host) });
    const extents = await collectExtents(reader);
    now += 301_000;
    const image = new Uint8Array(disk.sizeBytes);
    for (const e of extents) image.set(await reader.read(e.offset, e.length), e.offset);
    expect(Buffer.compare(image, live(disk))).toBe(0);
    expect(aws.state.stats.refusedBlockTokens).toBeGreaterThan(0);
  });

  test('maxResults 100 with empty pages that continue: every block is listed', async () => {
    const aws = await startMockAws({ maxBlocksScannedPerPage: 150 });
    open.push(aws);
    const disk = new VirtualDisk({ sizeBytes: GIB });
    const written = [...Array.from({ length: 250 }, (_, i) => i), 1500, 1501, 2047];
    for (const index of written) disk.write(index * BLOCK_SIZE, seededBytes(index, 16));
    aws.addInstance({ volumes: [{ disk }] });
    const session = await createAwsConnector({ ...FAST, reader: { pageSize: 100 } }).connect(aws.config());
    open.push(session);
    const [host] = await session.listHosts();
    const reader = await session.openReader(host!.disks[0]!, {
      snapshot: await session.createSnapshot(host!),
    });
    expect(coalesce(await collectExtents(reader))).toEqual([
      { offset: 0, length: 250 * BLOCK_SIZE, kind: 'data' },
      { offset: 1500 * BLOCK_SIZE, length: 2 * BLOCK_SIZE, kind: 'data' },
      { offset: 2047 * BLOCK_SIZE, length: BLOCK_SIZE, kind: 'data' },
    ]);
    expect(aws.state.stats.emptyPages).toBeGreaterThanOrEqual(8);
    const listCalls = aws.calls.filter((c) => /\/blocks$/.test(c.path));
    expect(listCalls.every((c) => c.query.includes('maxResults=100'))).toBe(true);
    expect(Buffer.compare(await applyReader(reader), live(disk))).toBe(0);
  });
});

/** A 1 TiB volume whose blocks are made on demand from their index: no memory for its 2 GiB of data. */
function generatedVolume(sizeBytes: number, written: number[]): VolumeDisk {
  const patterns = Array.from({ length: 16 }, (_, i) => seededBytes(1000 + i, BLOCK_SIZE));
  const set = new Set(written);
  const view: VolumeSnapshotView = {
    id: '',
    writtenBlocks: () => written,
    changedBlocks: () => written.map((index) => ({ index, inTarget: true })),
    read(offset, length) {
      const out = new Uint8Array(length);
      const index = Math.floor(offset / BLOCK_SIZE);
      if (set.has(index) && length === BLOCK_SIZE && offset % BLOCK_SIZE === 0)
        out.set(patterns[index % 16]!);
      return out;
    },
  };
  return { sizeBytes, snapshot: (id) => ({ ...view, id }), deleteSnapshot() {} };
}

test('a 1 TiB volume with 2 GiB written: the full sync reads only those 2 GiB, byte for byte', async () => {
  const aws = await startMockAws();
  open.push(aws);
  const stride = 512;
  const written = Array.from({ length: 4096 }, (_, i) => i * stride + (i % 7));
  const volume = generatedVolume(1024 * GIB, written);
  aws.addInstance({ volumes: [{ disk: volume }] });
  const session = await createAwsConnector(FAST).connect(aws.config());
  open.push(session);
  const [host] = await session.listHosts();
  expect(host!.disks[0]!.sizeBytes).toBe(1024 * GIB);
  const reader = await session.openReader(host!.disks[0]!, { snapshot: await session.createSnapshot(host!) });
  const patterns = Array.from({ length: 16 }, (_, i) => seededBytes(1000 + i, BLOCK_SIZE));
  const mismatches: number[] = [];
  let dataBytes = 0;
  const sink: BlockSink = {
    async write(offset, data) {
      for (let at = 0; at < data.length; at += BLOCK_SIZE) {
        const index = (offset + at) / BLOCK_SIZE;
        if (Buffer.compare(data.subarray(at, at + BLOCK_SIZE), patterns[index % 16]!) !== 0)
          mismatches.push(index);
      }
      dataBytes += data.length;
    },
    async writeZeroes() {},
    async flush() {},
    async close() {},
  };
  const result = await transferDisk({ reader, sink, checkpoint: false, manifest: false, concurrency: 16 });
  expect(result.bytesRead).toBe(2 * GIB);
  expect(dataBytes).toBe(2 * GIB);
  expect(mismatches).toEqual([]);
  expect(aws.state.stats.bytesServed).toBe(2 * GIB);
}, 240_000);

describe('a volume whose size is not a multiple of 512 KiB', () => {
  test('the last, partial block is listed clipped and read from a full 512 KiB block', async () => {
    const aws = await startMockAws();
    open.push(aws);
    const size = 5 * BLOCK_SIZE + 1234;
    const disk = new VirtualDisk({ sizeBytes: size, blockSizeBytes: 2 });
    disk.write(0, seededBytes(5, 100));
    disk.write(size - 1234, seededBytes(6, 1234));
    aws.addInstance({ volumes: [{ disk }] });
    const session = await createAwsConnector(FAST).connect(aws.config());
    open.push(session);
    const [host] = await session.listHosts();
    const snapshot = await session.createSnapshot(host!);
    const client = new AwsClient({ config: awsConfigSchema.parse(aws.config()) });
    const reader = new EbsSnapshotReader({
      client,
      snapshotId: snapshot.disks[0]!.data.snapshotId as string,
      diskSizeBytes: size,
    });
    expect(await collectExtents(reader)).toEqual([
      { offset: 0, length: BLOCK_SIZE, kind: 'data' },
      { offset: 5 * BLOCK_SIZE, length: 1234, kind: 'data' },
    ]);
    expect(Buffer.compare(await applyReader(reader), disk.read(0, size))).toBe(0);
    expect(Buffer.compare(await reader.read(size - 2000, 2000), disk.read(size - 2000, 2000))).toBe(0);
    await expect(reader.read(size - 10, 11)).rejects.toMatchObject({ code: 'internal' });
    client.close();
  });
});
