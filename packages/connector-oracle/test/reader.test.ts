import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OracleClient } from '@syncproxy/connector-oracle';
import { createOracleMockPlatform, type OracleMockPlatform } from '@syncproxy/connector-oracle/mock';
import {
  type BlockSink,
  type ChangedBlockReader,
  type ConnectorSession,
  createDispatcher,
  createLocalMountSlots,
  FileSink,
  type Host,
  Redactor,
  readManifest,
  type SnapshotRef,
  silentLogger,
  transferDisk,
} from '@syncproxy/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { connectorForMocks } from './helpers.js';

const MIB = 1024 * 1024;

/** A reader that counts the bytes the engine reads through it. */
function counting(reader: ChangedBlockReader): ChangedBlockReader & { bytesRead: number } {
  const counted = Object.create(reader) as ChangedBlockReader & { bytesRead: number };
  counted.bytesRead = 0;
  counted.read = async (offset, length, options) => {
    counted.bytesRead += length;
    return reader.read(offset, length, options);
  };
  if (reader.readInto) {
    counted.readInto = async (target, offset, options) => {
      counted.bytesRead += target.length;
      return reader.readInto!(target, offset, options);
    };
  }
  return counted;
}

function fill(seed: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (seed * 31 + i * 7) & 0xff || 1;
  return out;
}

describe('oracle reader against the OCI mock', () => {
  let platform: OracleMockPlatform;
  let session: ConnectorSession;
  let host: Host;
  let work: string;
  const bound = connectorForMocks();

  const liveClones = () => platform.oci.state.liveCloneVolumes().length;
  const proxyAttachments = () =>
    platform.oci.state.liveAttachments().filter((a) => a.instanceId === platform.oci.proxyInstanceId).length;

  async function sync(snapshot: SnapshotRef, disk: number, image: string, base?: SnapshotRef) {
    const previousManifest = base
      ? await readManifest(`${image}.manifest`).catch(() => undefined)
      : undefined;
    const reader = counting(
      await session.openReader(host.disks[disk]!, {
        snapshot,
        ...(base ? { base } : {}),
        ...(previousManifest ? { previousManifest } : {}),
      }),
    );
    try {
      // 1 MiB chunks: the engine reads whole chunks, so the delta's 1 MiB change blocks are what it reads.
      const result = await transferDisk({ reader, sink: new FileSink(image), chunkSizeBytes: MIB });
      return { reader, result };
    } finally {
      await reader.close();
    }
  }

  beforeEach(async () => {
    platform = await createOracleMockPlatform();
    bound.bind(platform.oci);
    const ref = await platform.createHost({
      name: 'web-1',
      disks: [{ sizeBytes: 8 * MIB }, { sizeBytes: 4 * MIB }],
    });
    await platform.writeDisk(ref.disks[0]!.id, 0, fill(1, 3 * MIB));
    await platform.writeDisk(ref.disks[1]!.id, MIB, fill(2, MIB));
    session = await bound.connector.connect(platform.config(), platform.context());
    host = (await session.listHosts()).find((h) => h.id === ref.id)!;
    work = await mkdtemp(join(tmpdir(), 'oracle-reader-'));
  });

  afterEach(async () => {
    await session.close();
    await platform.close();
    await rm(work, { recursive: true, force: true });
  });

  it('a full sync, then an incremental through an iSCSI delta volume, reads only the changed 1 MiB blocks and is byte-exact', async () => {
    const image = join(work, 'boot.img');
    const first = await session.createSnapshot(host);
    expect(first.disks.map((d) => d.data.backupType)).toEqual(['FULL', 'FULL']);
    const full = await sync(first, 0, image);
    expect(full.reader.bytesRead).toBe(3 * MIB);

    // 4 KiB inside the second MiB and 1 byte in the seventh: two 1 MiB change blocks (4 MiB chunks).
    await platform.writeDisk(host.disks[0]!.id, MIB + 100, fill(3, 4096));
    await platform.writeDisk(host.disks[0]!.id, 6 * MIB + 5, new Uint8Array([9]));
    const second = await session.createSnapshot(host);
    expect(second.disks.map((d) => d.data.backupType)).toEqual(['INCREMENTAL', 'INCREMENTAL']);
    const extents: unknown[] = [];
    const reader = await session.openReader(host.disks[0]!, { snapshot: second, base: first });
    for await (const e of reader.extents()) extents.push(e);
    await reader.close();
    const reported = platform.oci.state.stats.mappedBytesReported;
    const incremental = await sync(second, 0, image, first);
    expect(extents).toEqual([
      { offset: MIB, length: MIB, kind: 'data' },
      { offset: 6 * MIB, length: MIB, kind: 'data' },
    ]);
    expect(incremental.reader.bytesRead).toBe(2 * MIB);
    expect(platform.oci.state.stats.mappedBytesReported - reported).toBe(2 * MIB);
    expect(platform.oci.state.stats.iscsiLogins).toBe(2);
    expect(platform.oci.state.stats.iscsiLogouts).toBe(2);
    expect(incremental.reader.warnings ?? []).toEqual([]);
    const delta = [...platform.oci.state.volumes.values()].find((v) => v.isDelta);
    expect(delta?.sourceDetails).toMatchObject({
      type: 'bootVolumeBackupDelta',
      changeBlockSizeInBytes: MIB,
    });

    const truth = await platform.readDisk(host.disks[0]!.id, 0, 8 * MIB);
    expect(Buffer.compare(await readFile(image), Buffer.from(truth))).toBe(0);
    expect(liveClones()).toBe(0);
    expect(proxyAttachments()).toBe(0);
  });

  it('a delta OCI refuses (a FULL backup between the two) falls back to a full clone and a hash diff, with a typed warning', async () => {
    const image = join(work, 'data.img');
    const first = await session.createSnapshot(host);
    await sync(first, 1, image);
    await platform.writeDisk(host.disks[1]!.id, 3 * MIB, fill(4, 8192));
    // Someone else takes a FULL backup of the volume between the two syncs.
    const dispatcher = createDispatcher();
    const client = new OracleClient({
      config: platform.config() as never,
      dispatcher,
      privateKeyPem: platform.oci.privateKeyPem,
      logger: silentLogger,
      redactor: new Redactor(),
    });
    await client.createVolumeBackup({ volumeId: host.disks[1]!.id, type: 'FULL' as never });
    client.close();
    await dispatcher.close();
    const second = await session.createSnapshot(host);
    const { reader } = await sync(second, 1, image, first);
    expect(reader.warnings?.map((w) => w.code)).toEqual(['hash-diff', 'oracle-delta-refused']);
    expect(reader.warnings?.[1]?.message).toContain(
      'a FULL backup lies between firstBackupId and secondBackupId',
    );
    const truth = await platform.readDisk(host.disks[1]!.id, 0, 4 * MIB);
    expect(Buffer.compare(await readFile(image), Buffer.from(truth))).toBe(0);
    expect(liveClones()).toBe(0);
    expect(proxyAttachments()).toBe(0);
  });

  it('a base whose backups are gone (deleted by hand) falls back to a full read with a hash diff, byte-exact', async () => {
    const image = join(work, 'gone.img');
    const first = await session.createSnapshot(host);
    await sync(first, 1, image);
    await platform.writeDisk(host.disks[1]!.id, 0, fill(6, 4096));
    const second = await session.createSnapshot(host);
    await session.deleteSnapshot(first);
    const { reader } = await sync(second, 1, image, first);
    expect(reader.warnings?.map((w) => w.code)).toEqual(['hash-diff', 'oracle-delta-refused']);
    const truth = await platform.readDisk(host.disks[1]!.id, 0, 4 * MIB);
    expect(Buffer.compare(await readFile(image), Buffer.from(truth))).toBe(0);
    expect(liveClones()).toBe(0);
  });

  it('prechecks say when the proxy is not in the configured availability domain', async () => {
    const wrong = await bound.connector.connect(
      { ...(platform.config() as Record<string, unknown>), proxyAvailabilityDomain: 'Uocm:US-ASHBURN-AD-3' },
      platform.context(),
    );
    const checks = await wrong.prechecks(host);
    await wrong.close();
    expect(checks.map((c) => `${c.id}:${c.status}`)).toEqual([
      'host-running:pass',
      'disks-found:pass',
      'proxy-instance:fail',
    ]);
    expect(checks[2]!.detail).toBe('the proxy instance is RUNNING in Uocm:US-ASHBURN-AD-1');
  });

  it('a failure after attach (the attachment poll fails) leaves no volume and no attachment', async () => {
    const snapshot = await session.createSnapshot(host);
    platform.oci.fail({
      method: 'GET',
      path: /^\/20160918\/volumeAttachments\/ocid/,
      status: 400,
      code: 'InvalidParameter',
      times: 1,
    });
    await expect(session.openReader(host.disks[0]!, { snapshot })).rejects.toMatchObject({
      code: 'platform',
      retryable: false,
    });
    expect(platform.oci.state.stats.attachmentsCreated).toBe(1);
    expect(liveClones()).toBe(0);
    expect(proxyAttachments()).toBe(0);
  });

  it('a failure after the delta volume is created (attach refused) leaves no volume and no attachment', async () => {
    const first = await session.createSnapshot(host);
    await platform.writeDisk(host.disks[0]!.id, 0, fill(5, 4096));
    const second = await session.createSnapshot(host);
    platform.oci.fail({
      method: 'POST',
      path: '/20160918/volumeAttachments',
      status: 409,
      code: 'Conflict',
      times: 1,
    });
    await expect(session.openReader(host.disks[0]!, { snapshot: second, base: first })).rejects.toMatchObject(
      {
        code: 'conflict',
      },
    );
    expect([...platform.oci.state.volumes.values()].filter((v) => v.isDelta)).toHaveLength(1);
    expect(liveClones()).toBe(0);
    expect(proxyAttachments()).toBe(0);
  });

  it('a failure mid-read (the sink fails) leaves no volume and no attachment once the reader is closed', async () => {
    const snapshot = await session.createSnapshot(host);
    const reader = await session.openReader(host.disks[0]!, { snapshot });
    expect(liveClones()).toBe(1);
    expect(proxyAttachments()).toBe(1);
    let writes = 0;
    const sink: BlockSink = {
      async write() {
        if (++writes > 1) throw new Error('target disk full');
      },
      async writeZeroes() {},
      async flush() {},
      async close() {},
    };
    try {
      await expect(transferDisk({ reader, sink, chunkSizeBytes: MIB, manifest: false })).rejects.toThrow(
        'target disk full',
      );
    } finally {
      await reader.close();
    }
    expect(liveClones()).toBe(0);
    expect(proxyAttachments()).toBe(0);
  });

  it('an abort while the restored volume is provisioning still deletes it', async () => {
    const snapshot = await session.createSnapshot(host);
    const abort = new AbortController();
    platform.oci.fail({
      method: 'GET',
      path: /^\/20160918\/bootVolumes\/ocid/,
      status: 503,
      code: 'ServiceUnavailable',
      times: 1,
    });
    const opening = session.openReader(host.disks[0]!, { snapshot, signal: abort.signal });
    setImmediate(() => abort.abort());
    await expect(opening).rejects.toMatchObject({ code: 'aborted' });
    expect(liveClones()).toBe(0);
    expect(proxyAttachments()).toBe(0);
  });

  it('with the proxy at its mount-slot limit the next reader waits when the provider waits, and attaches once a slot is free', async () => {
    await session.close();
    const mountSlots = createLocalMountSlots({ maxMountedDisks: 1, waitMs: 60_000 });
    session = await bound.connector.connect(platform.config(), { ...platform.context(), mountSlots });
    const snapshot = await session.createSnapshot(host);
    const first = await session.openReader(host.disks[0]!, { snapshot });
    let opened = false;
    const second = session.openReader(host.disks[1]!, { snapshot }).then((r) => {
      opened = true;
      return r;
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(opened).toBe(false);
    expect(mountSlots.waiting).toBe(1);
    expect(platform.oci.state.stats.attachmentsCreated).toBe(1);
    await first.close();
    const reader = await second;
    expect(platform.oci.state.stats.peakAttachments).toBe(1);
    await reader.close();
  });

  it('with the default 50 mount slots and no scheduler, a 51st reader is refused with no-capacity and never attached', async () => {
    // A mock of its own with 100 items a page (OCI allows up to 1000): at the default 2, which keeps
    // every other test paging, each of the 51 readers pages through the proxy's attachments and
    // the RSA signing of those requests makes this one test cost most of the package's run.
    await session.close();
    await platform.close();
    platform = await createOracleMockPlatform({ pageSize: 100 });
    bound.bind(platform.oci);
    session = await bound.connector.connect(platform.config(), platform.context());
    const ref = await platform.createHost({
      name: 'big-1',
      disks: Array.from({ length: 51 }, () => ({ sizeBytes: MIB })),
    });
    const big = (await session.listHosts()).find((h) => h.id === ref.id)!;
    const snapshot = await session.createSnapshot(big);
    const readers = await Promise.all(
      big.disks.slice(0, 50).map((disk) => session.openReader(disk, { snapshot })),
    );
    try {
      expect(proxyAttachments()).toBe(50);
      await expect(session.openReader(big.disks[50]!, { snapshot })).rejects.toMatchObject({
        code: 'no-capacity',
      });
      expect(platform.oci.state.stats.attachmentsCreated).toBe(50);
      expect(platform.oci.state.stats.peakAttachments).toBe(50);
    } finally {
      await Promise.all(readers.map((r) => r.close()));
    }
    expect(proxyAttachments()).toBe(0);
    expect(liveClones()).toBe(0);
  });

  it('sweep removes tagged backups, clone volumes and attachments, and keeps what it is told to', async () => {
    const kept = await session.createSnapshot(host);
    const dropped = await session.createSnapshot(host);
    // A reader left open: its clone and attachment are what a crashed proxy leaves behind.
    const leftOpen = await session.openReader(host.disks[1]!, { snapshot: dropped });
    const dry = await session.sweep!({ keep: [kept.id], dryRun: true });
    expect(dry.resources.every((r) => !r.deleted)).toBe(true);
    expect(dry.resources).toHaveLength(6);
    expect(liveClones()).toBe(1);
    expect(proxyAttachments()).toBe(1);
    const young = await session.sweep!({ olderThan: new Date(Date.now() - 3_600_000) });
    expect(young.resources).toEqual([]);
    const report = await session.sweep!({ keep: [kept.id] });
    const kinds = report.resources.map((r) => `${r.kind}:${r.deleted}`).sort();
    expect(kinds).toEqual([
      'attachment:true',
      'boot-volume-backup:false',
      'boot-volume-backup:true',
      'volume-backup:false',
      'volume-backup:true',
      'volume:true',
    ]);
    expect(liveClones()).toBe(0);
    expect(proxyAttachments()).toBe(0);
    expect(await platform.snapshotCount(host.id)).toBe(2);
    await leftOpen.close();
  });
});
