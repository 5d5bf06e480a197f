import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type ConnectorSession,
  createManualClock,
  type HostSyncEvent,
  type HostSyncPhaseEvent,
  imageFileName,
  loadSyncState,
  readManifest,
  SyncproxyError,
  syncHost,
  TARGET_LOCK_FILE,
} from '../../src/index.js';
import { tempDir } from '../transfer/fixtures/temp-dir.js';
import { FilePlatform, GRAIN, randomBytes } from './fixtures/file-platform.js';

const MiB = 1 << 20;
let dir: { path: string; remove: () => Promise<void> };
beforeEach(async () => {
  dir = await tempDir('syncproxy-host-sync-');
});
afterEach(async () => {
  await dir.remove();
});

async function setup(options: ConstructorParameters<typeof FilePlatform>[1] = {}) {
  const platform = new FilePlatform(join(dir.path, 'platform'), {
    disks: { 'disk-a': 8 * MiB, 'disk-b': 4 * MiB },
    ...options,
  });
  platform.write('disk-a', 0, randomBytes(MiB, 1));
  platform.write('disk-a', 5 * MiB, randomBytes(2 * MiB, 2));
  platform.write('disk-b', MiB, randomBytes(GRAIN * 3, 3));
  const session = await platform.connector().connect({ name: 'test' });
  const target = join(dir.path, 'target');
  return { platform, session, target };
}

/** One 16 MiB disk of random bytes, read slowly enough to stop a sync midway, and where its image goes. */
async function slowOneDisk(name: string, seed: number) {
  const platform = new FilePlatform(join(dir.path, `${name}p`), {
    disks: { 'disk-1': 16 * MiB },
    readDelayMs: 20,
  });
  platform.write('disk-1', 0, randomBytes(16 * MiB, seed));
  const session = await platform.connector().connect({ name: 'x' });
  const target = join(dir.path, `${name}t`);
  return { platform, session, target, path: join(target, imageFileName('disk-1')) };
}

/** A full sync of one slow disk, then an incremental of what `change` writes, stopped after one chunk. */
async function interruptedIncremental(name: string, seed: number, change: (platform: FilePlatform) => void) {
  const disk = await slowOneDisk(name, seed);
  const options = {
    session: disk.session,
    platform: 'file-platform',
    hostId: 'h1',
    target: disk.target,
    transfer: { chunkSizeBytes: MiB },
  };
  expect(await syncHost(options)).toMatchObject({ ok: true, mode: 'full' });
  change(disk.platform);
  const stop = new AbortController();
  const first = await syncHost({
    ...options,
    concurrency: 1,
    checkpointEveryChunks: 1,
    signal: stop.signal,
    onEvent: (e) => {
      if (e.type === 'progress' && e.progress.chunksDone >= 1) stop.abort();
    },
  });
  expect(first).toMatchObject({ ok: false, interrupted: true, mode: 'incremental' });
  return { ...disk, options };
}

/** One grain changed at the start of each of the 16 chunks: every chunk is written in part. */
const grainPerChunk = (seed: number) => (platform: FilePlatform) => {
  for (let chunk = 0; chunk < 16; chunk++)
    platform.write('disk-1', chunk * MiB, randomBytes(GRAIN, seed + chunk));
};

/** Flips one byte of the file at `path`; with `keepMtime`, puts its modification time back. */
async function flipByte(path: string, at: number, keepMtime: boolean): Promise<void> {
  const { open, utimes } = await import('node:fs/promises');
  const before = await stat(path);
  const handle = await open(path, 'r+');
  const byte = new Uint8Array(1);
  await handle.read(byte, 0, 1, at);
  byte[0] = byte[0]! ^ 0xff;
  await handle.write(byte, 0, 1, at);
  await handle.close();
  // Half a millisecond in: a Date's seconds as a double can land a nanosecond under its millisecond,
  // which the image's identity (whole milliseconds of mtimeNs) would see as another mtime.
  if (keepMtime) await utimes(path, before.atime, (Math.floor(before.mtimeMs) + 0.5) / 1000);
}

async function imageOf(target: string, diskId: string): Promise<Uint8Array> {
  return new Uint8Array(await readFile(join(target, imageFileName(diskId))));
}

async function expectExact(platform: FilePlatform, target: string): Promise<void> {
  for (const id of platform.diskIds()) {
    expect(Buffer.compare(await imageOf(target, id), platform.read(id)), `image of ${id}`).toBe(0);
  }
}

/** The snapshots the state references: those the platform must hold after a successful sync. */
async function referencedSnapshots(target: string): Promise<string[]> {
  const state = await loadSyncState(target);
  return [...new Set(Object.values(state!.disks).map((d) => d.snapshotId))].sort();
}

describe('syncHost', () => {
  it('auto: a full sync, then an incremental one; exact images; only the base is left on the platform', async () => {
    const { platform, session, target } = await setup();
    const first = await syncHost({ session, platform: 'file-platform', hostId: 'h1', target, verify: true });
    expect(first).toMatchObject({ ok: true, mode: 'full', resumed: false, warnings: [] });
    expect(first.disks.map((d) => [d.diskId, d.status, d.result?.verified])).toEqual([
      ['disk-a', 'done', true],
      ['disk-b', 'done', true],
    ]);
    await expectExact(platform, target);
    expect(platform.snapshotIds()).toEqual([first.snapshotId]);

    platform.write('disk-a', 2 * MiB, randomBytes(GRAIN, 4));
    platform.write('disk-a', 0, new Uint8Array(GRAIN));
    const second = await syncHost({ session, platform: 'file-platform', hostId: 'h1', target });
    expect(second).toMatchObject({ ok: true, mode: 'incremental', deletedSnapshots: [first.snapshotId] });
    expect(second.disks[0]!.result!.bytesRead).toBe(GRAIN);
    await expectExact(platform, target);
    expect(platform.snapshotIds()).toEqual([second.snapshotId]);
    expect(await referencedSnapshots(target)).toEqual([second.snapshotId]);
    await expect(stat(join(target, TARGET_LOCK_FILE))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('two syncs of one target at once: exactly one succeeds, the other gets conflict naming the holder', async () => {
    const { platform, session, target } = await setup();
    const run = () => syncHost({ session, platform: 'file-platform', hostId: 'h1', target });
    const results = await Promise.allSettled([run(), run()]);
    const ok = results.filter((r) => r.status === 'fulfilled');
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(ok).toHaveLength(1);
    expect(failed).toHaveLength(1);
    expect(failed[0]!.reason).toBeInstanceOf(SyncproxyError);
    expect(failed[0]!.reason.code).toBe('conflict');
    expect(failed[0]!.reason.message).toMatch(
      new RegExp(`^target ${target} is in use by process ${process.pid} on .+ since \\d{4}-`),
    );
    expect(platform.snapshotIds()).toEqual(await referencedSnapshots(target));
    await expectExact(platform, target);
  });

  it('a lock left by a dead process of this host is taken over', async () => {
    const { platform, session, target } = await setup();
    const { mkdir } = await import('node:fs/promises');
    await mkdir(target, { recursive: true });
    const { hostname } = await import('node:os');
    // PID 2^22 + 1 is above Linux's pid_max: no such process.
    await writeFile(
      join(target, TARGET_LOCK_FILE),
      JSON.stringify({ pid: 4194305, hostname: hostname(), since: '2026-01-01T00:00:00.000Z' }),
    );
    const report = await syncHost({ session, platform: 'file-platform', hostId: 'h1', target });
    expect(report.ok).toBe(true);
    await expectExact(platform, target);
  });

  it('a lock of a live process is a conflict, and nothing is snapshotted', async () => {
    const { platform, session, target } = await setup();
    const { mkdir } = await import('node:fs/promises');
    await mkdir(target, { recursive: true });
    await writeFile(
      join(target, TARGET_LOCK_FILE),
      JSON.stringify({ pid: process.ppid, hostname: 'elsewhere', since: '2026-01-01T00:00:00.000Z' }),
    );
    await expect(
      syncHost({ session, platform: 'file-platform', hostId: 'h1', target }),
    ).rejects.toMatchObject({
      code: 'conflict',
      message: `target ${target} is in use by process ${process.ppid} on elsewhere since 2026-01-01T00:00:00.000Z (one sync per target at a time; wait for it or stop it)`,
    });
    expect(platform.snapshotIds()).toEqual([]);
  });

  it('incremental without a base is a config error naming the field, before any snapshot', async () => {
    const { platform, session, target } = await setup();
    await expect(
      syncHost({ session, platform: 'file-platform', hostId: 'h1', target, mode: 'incremental' }),
    ).rejects.toMatchObject({ code: 'config', details: { field: 'mode' } });
    expect(platform.snapshotIds()).toEqual([]);
  });

  it('bad options are config errors naming the field', async () => {
    const { session, target } = await setup();
    const base = { session, platform: 'file-platform', hostId: 'h1', target };
    for (const [patch, field] of [
      [{ mode: 'sometimes' }, 'mode'],
      [{ hostId: '' }, 'hostId'],
      [{ concurrency: 0 }, 'concurrency'],
      [{ diskIds: ['disk-a', 'disk-a'] }, 'diskIds'],
      [{ diskIds: ['disk-z'] }, 'diskIds'],
      [{ verifyTarget: 'bytes' }, 'verifyTarget'],
    ] as const) {
      await expect(syncHost({ ...base, ...(patch as object) })).rejects.toMatchObject({
        code: 'config',
        details: { field },
      });
    }
  });

  it('base snapshot deleted on the platform: the next sync is full, warns base-lost (result and events), and is exact', async () => {
    const { platform, session, target } = await setup();
    const first = await syncHost({ session, platform: 'file-platform', hostId: 'h1', target });
    platform.deleteSnapshot(first.snapshotId);
    platform.write('disk-b', 0, randomBytes(GRAIN, 9));
    const events: HostSyncEvent[] = [];
    const second = await syncHost({
      session,
      platform: 'file-platform',
      hostId: 'h1',
      target,
      onEvent: (e) => events.push(e),
    });
    expect(second.ok).toBe(true);
    expect(second.mode).toBe('full');
    expect(second.warnings.map((w) => [w.code, w.diskId]).sort()).toEqual([
      ['base-lost', 'disk-a'],
      ['base-lost', 'disk-b'],
    ]);
    expect(
      events.filter((e) => e.type === 'warning').map((e) => e.type === 'warning' && e.warning.code),
    ).toEqual(['base-lost', 'base-lost']);
    await expectExact(platform, target);
    expect(platform.snapshotIds()).toEqual([second.snapshotId]);
  });

  it('a CBT reset on the incremental: that disk gets a full sync with a cbt-reset warning, and is exact', async () => {
    const { platform, session, target } = await setup();
    await syncHost({ session, platform: 'file-platform', hostId: 'h1', target });
    platform.write('disk-a', 3 * MiB, randomBytes(GRAIN, 31));
    const openReader = session.openReader.bind(session);
    const resetting = Object.create(session, {
      openReader: {
        value: async (disk: { id: string }, options: { base?: unknown }) => {
          if (disk.id === 'disk-a' && options.base !== undefined) {
            throw new SyncproxyError('changeId is no longer valid', { code: 'cbt-reset', retryable: false });
          }
          return openReader(disk as never, options as never);
        },
      },
    });
    const report = await syncHost({ session: resetting, platform: 'file-platform', hostId: 'h1', target });
    expect(report).toMatchObject({ ok: true, mode: 'mixed' });
    expect(report.disks.map((d) => [d.diskId, d.mode])).toEqual([
      ['disk-a', 'full'],
      ['disk-b', 'incremental'],
    ]);
    expect(report.warnings.map((w) => [w.code, w.diskId])).toEqual([['cbt-reset', 'disk-a']]);
    await expectExact(platform, target);
  });

  it('a sync that fails before any disk made progress deletes its fresh snapshot and leaves no pending sync', async () => {
    const { platform, session, target } = await setup();
    const refusing = Object.create(session, {
      openReader: {
        value: async () => {
          throw new SyncproxyError('no read permission on the snapshot', {
            code: 'permission',
            retryable: false,
          });
        },
      },
    });
    const report = await syncHost({ session: refusing, platform: 'file-platform', hostId: 'h1', target });
    expect(report.ok).toBe(false);
    expect(report.disks.map((d) => [d.status, d.error?.code])).toEqual([
      ['failed', 'permission'],
      ['failed', 'permission'],
    ]);
    expect(report.deletedSnapshots).toEqual([report.snapshotId]);
    expect(platform.snapshotIds()).toEqual([]);
    expect((await loadSyncState(target))!.pending).toBeUndefined();
  });

  it('an image deleted, truncated or altered since the last sync gets a full sync with target-changed', async () => {
    const { platform, session, target } = await setup();
    await syncHost({ session, platform: 'file-platform', hostId: 'h1', target });
    const { rm, truncate } = await import('node:fs/promises');
    await rm(join(target, imageFileName('disk-a')));
    await truncate(join(target, imageFileName('disk-b')), MiB);
    const second = await syncHost({ session, platform: 'file-platform', hostId: 'h1', target });
    expect(second.ok).toBe(true);
    expect(second.disks.map((d) => d.mode)).toEqual(['full', 'full']);
    expect(second.warnings.map((w) => w.code)).toEqual(['target-changed', 'target-changed']);
    await expectExact(platform, target);

    // A flipped byte with the mtime put back: only verifyTarget 'manifest' sees it.
    await flipByte(join(target, imageFileName('disk-a')), 100, true);
    const third = await syncHost({
      session,
      platform: 'file-platform',
      hostId: 'h1',
      target,
      verifyTarget: 'manifest',
    });
    expect(third.disks.map((d) => d.mode)).toEqual(['full', 'incremental']);
    expect(third.warnings.map((w) => [w.code, w.diskId])).toEqual([['target-changed', 'disk-a']]);
    expect(third.warnings[0]!.message).toContain('1 chunk(s) of the image differ from its manifest');
    await expectExact(platform, target);
  });

  it('an incremental an interrupted sync planned but never started is checked again: an image truncated since gets a full sync', async () => {
    const { platform, session, target } = await setup();
    await syncHost({ session, platform: 'file-platform', hostId: 'h1', target });
    platform.write('disk-a', 2 * MiB, randomBytes(GRAIN, 31));
    const stop = new AbortController();
    const first = await syncHost({
      session,
      platform: 'file-platform',
      hostId: 'h1',
      target,
      signal: stop.signal,
      onEvent: (e) => {
        if (e.type === 'snapshot') stop.abort();
      },
    });
    expect(first).toMatchObject({ ok: false, interrupted: true, mode: 'incremental' });
    const { truncate } = await import('node:fs/promises');
    await truncate(join(target, imageFileName('disk-a')), MiB);
    const second = await syncHost({ session, platform: 'file-platform', hostId: 'h1', target });
    expect(second).toMatchObject({ ok: true, resumed: true, snapshotId: first.snapshotId });
    expect(second.disks.map((d) => d.mode)).toEqual(['full', 'incremental']);
    expect(second.warnings.map((w) => [w.code, w.diskId])).toEqual([['target-changed', 'disk-a']]);
    await expectExact(platform, target);
  });

  it('a started transfer resumes only onto an image of the disk size, and with verifyTarget manifest only while its done chunks match', async () => {
    const { platform, session, target, path } = await slowOneDisk('s', 41);
    const { truncate } = await import('node:fs/promises');
    const interrupt = async () => {
      const stop = new AbortController();
      const report = await syncHost({
        session,
        platform: 'file-platform',
        hostId: 'h1',
        target,
        concurrency: 1,
        checkpointEveryChunks: 1,
        transfer: { chunkSizeBytes: MiB },
        signal: stop.signal,
        onEvent: (e) => {
          if (e.type === 'progress' && e.progress.chunksDone >= 2) stop.abort();
        },
      });
      expect(report).toMatchObject({ ok: false, interrupted: true });
    };
    // Truncated inside the done chunks: the checkpoint is dropped and the disk is sent again.
    await interrupt();
    await truncate(path, MiB);
    const truncated = await syncHost({
      session,
      platform: 'file-platform',
      hostId: 'h1',
      target,
      transfer: { chunkSizeBytes: MiB },
    });
    expect(truncated).toMatchObject({ ok: true, resumed: true });
    expect(truncated.disks[0]!.result).toMatchObject({ resumed: false, chunksSkipped: 0 });
    expect(truncated.warnings.map((w) => w.code)).toEqual(['target-changed']);
    expect(truncated.warnings[0]!.message).toContain(`the image is ${MiB} bytes, not the disk's ${16 * MiB}`);
    await expectExact(platform, target);

    // A byte of a done chunk flipped behind the mtime: the manifest level sees it.
    platform.write('disk-1', 0, randomBytes(16 * MiB, 42));
    await interrupt();
    await flipByte(path, 100, true);
    const flipped = await syncHost({
      session,
      platform: 'file-platform',
      hostId: 'h1',
      target,
      verifyTarget: 'manifest',
      transfer: { chunkSizeBytes: MiB },
    });
    expect(flipped).toMatchObject({ ok: true, resumed: true });
    expect(flipped.warnings.map((w) => w.code)).toEqual(['target-changed']);
    expect(flipped.warnings[0]!.message).toContain('1 chunk(s) of the image differ from its manifest');
    await expectExact(platform, target);
  });

  it('an interrupted incremental resumed with verifyTarget manifest checks the chunks it will not write too: a byte flipped there behind the mtime gets a full sync', async () => {
    // The incremental changes chunks 8 to 11 only, and is stopped after one of them.
    const { platform, target, path, options } = await interruptedIncremental('i', 51, (p) =>
      p.write('disk-1', 8 * MiB, randomBytes(4 * MiB, 52)),
    );
    // Chunk 14, past where the stopped run got and outside its changes, flipped behind its mtime.
    await flipByte(path, 14 * MiB + 100, true);
    const resumed = await syncHost({ ...options, verifyTarget: 'manifest' });
    expect(resumed).toMatchObject({ ok: true, resumed: true, mode: 'full' });
    expect(resumed.warnings.map((w) => w.code)).toEqual(['target-changed']);
    expect(resumed.warnings[0]!.message).toContain('1 chunk(s) of the image differ from its manifest');
    await expectExact(platform, target);
  });

  it('an incremental that writes part of a chunk proves the rest of it against the manifest first: a byte flipped there behind the mtime gets a full sync (target-changed), never a digest that takes it in', async () => {
    const { platform, session, target, path } = await slowOneDisk('p', 61);
    const options = {
      session,
      platform: 'file-platform',
      hostId: 'h1',
      target,
      transfer: { chunkSizeBytes: MiB },
    };
    expect(await syncHost(options)).toMatchObject({ ok: true, mode: 'full' });
    // The incremental writes the first grain of chunk 3; the image's byte half way into chunk 3 is flipped.
    platform.write('disk-1', 3 * MiB, randomBytes(GRAIN, 62));
    await flipByte(path, 3 * MiB + MiB / 2, true);
    const second = await syncHost(options);
    expect(second).toMatchObject({ ok: true, mode: 'full' });
    expect(second.warnings.map((w) => [w.code, w.diskId])).toEqual([['target-changed', 'disk-1']]);
    expect(second.warnings[0]!.message).toContain('chunk 3 of the image differs from its manifest');
    await expectExact(platform, target);
    // The manifest the full sync left vouches for the image: the next incremental applies onto it.
    platform.write('disk-1', 5 * MiB, randomBytes(GRAIN, 63));
    const third = await syncHost({ ...options, verifyTarget: 'manifest' });
    expect(third).toMatchObject({ ok: true, mode: 'incremental', warnings: [] });
    await expectExact(platform, target);
  });

  it('a resumed incremental cannot prove the part of a chunk it does not write where the stopped run may have written: that chunk is unknown in the manifest, and a later verifyTarget manifest sync finds a byte flipped there', async () => {
    const { platform, target, path, options } = await interruptedIncremental('u', 71, grainPerChunk(71));
    // Chunk 12, which the stopped run had not finished, flipped outside the grain the incremental writes.
    await flipByte(path, 12 * MiB + MiB / 2, false);
    // The identity level trusts a started transfer's image (host-sync.md): this resume takes the flipped byte
    // as it is, but its manifest does not vouch for the chunks it could not prove.
    const resumed = await syncHost(options);
    expect(resumed).toMatchObject({ ok: true, resumed: true, mode: 'incremental' });
    expect(resumed.disks[0]!.result!.unknownChunks).toBeGreaterThan(0);
    const checked = await syncHost({ ...options, verifyTarget: 'manifest' });
    expect(checked).toMatchObject({ ok: true, mode: 'full' });
    expect(checked.warnings.map((w) => w.code)).toEqual(['target-changed']);
    await expectExact(platform, target);
  });

  it('a resumed incremental with verifyTarget manifest that cannot prove a chunk it writes in part syncs the disk in full (target-changed): a byte flipped there is never kept', async () => {
    const { platform, target, path, options } = await interruptedIncremental('v', 81, grainPerChunk(81));
    // A chunk in flight when the run stopped: the saved manifest does not know it, so no check before the
    // transfer can see a byte flipped there; the transfer must not take it in.
    const saved = await readManifest(`${path}.manifest`);
    const inFlight = Array.from({ length: 16 }, (_, i) => i).find((i) => saved.entry(i).state === 'unknown');
    expect(inFlight).toBeDefined();
    await flipByte(path, inFlight! * MiB + MiB / 2, true);
    const resumed = await syncHost({ ...options, verifyTarget: 'manifest' });
    expect(resumed).toMatchObject({ ok: true, resumed: true, mode: 'full' });
    expect(resumed.warnings.map((w) => w.code)).toEqual(['target-changed']);
    await expectExact(platform, target);
  });

  it('with verifyTarget manifest and manifestReadBack false, a disk whose incremental writes part of a chunk is synced again in full: its manifest cannot prove that chunk', async () => {
    const { platform, session, target } = await setup();
    const options = {
      session,
      platform: 'file-platform',
      hostId: 'h1',
      target,
      verifyTarget: 'manifest' as const,
    };
    await syncHost(options);
    platform.write('disk-a', 2 * MiB, randomBytes(GRAIN, 91));
    const second = await syncHost({ ...options, transfer: { manifestReadBack: false } });
    expect(second).toMatchObject({ ok: true });
    expect(second.disks.map((d) => d.mode)).toEqual(['full', 'incremental']);
    expect(second.warnings.map((w) => [w.code, w.diskId])).toEqual([['target-changed', 'disk-a']]);
    expect(second.warnings[0]!.message).toContain(
      '1 chunk(s) of the image are not proven by its manifest after the incremental',
    );
    await expectExact(platform, target);
  });

  it('an interrupted sync whose checkpoints were swapped between two disks resumes exact: a checkpoint binds to its disk', async () => {
    const platform = new FilePlatform(join(dir.path, 'sp'), {
      disks: { 'disk-1': 32 * MiB, 'disk-2': 32 * MiB },
      readDelayMs: 30,
    });
    platform.write('disk-1', 0, randomBytes(32 * MiB, 21));
    platform.write('disk-2', 0, randomBytes(32 * MiB, 22));
    const session = await platform.connector().connect({ name: 'x' });
    const target = join(dir.path, 'st');
    const stop = new AbortController();
    const done = new Map<string, number>();
    const first = await syncHost({
      session,
      platform: 'file-platform',
      hostId: 'h1',
      target,
      concurrency: 1,
      checkpointEveryChunks: 1,
      signal: stop.signal,
      onEvent: (e) => {
        if (e.type !== 'progress') return;
        done.set(e.diskId, e.progress.chunksDone);
        if ((done.get('disk-1') ?? 0) >= 1 && (done.get('disk-2') ?? 0) >= 1) stop.abort();
      },
    });
    expect(first).toMatchObject({ ok: false, interrupted: true });
    expect(first.disks.map((d) => d.status)).toEqual(['interrupted', 'interrupted']);
    const { rename } = await import('node:fs/promises');
    const [a, b] = ['disk-1', 'disk-2'].map((id) => `${join(target, imageFileName(id))}.checkpoint.json`);
    await rename(a!, `${a}.swap`);
    await rename(b!, a!);
    await rename(`${a}.swap`, b!);
    const second = await syncHost({ session, platform: 'file-platform', hostId: 'h1', target });
    expect(second).toMatchObject({ ok: true, resumed: true, snapshotId: first.snapshotId });
    // Neither disk trusted the other's checkpoint: both were sent whole.
    expect(second.disks.map((d) => [d.result?.resumed, d.result?.chunksSkipped])).toEqual([
      [false, 0],
      [false, 0],
    ]);
    await expectExact(platform, target);
  });

  it('disk ids that escape to one name never share an image, and a host listing a disk twice is refused', async () => {
    expect(imageFileName('/d/a_b.img')).not.toBe(imageFileName('/d/a/b.img'));
    expect(imageFileName('a%2Fb')).not.toBe(imageFileName('a/b'));
    expect(imageFileName('x'.repeat(300))).toMatch(/^x{160}~[0-9a-f]{16}\.raw$/);
    expect(imageFileName('vol-0abc')).toBe('vol-0abc.raw');
    const platform = new FilePlatform(join(dir.path, 'p2'), {
      disks: { '/d/a_b.img': MiB, '/d/a/b.img': MiB },
    });
    platform.write('/d/a_b.img', 0, randomBytes(GRAIN, 5));
    platform.write('/d/a/b.img', 0, randomBytes(GRAIN, 6));
    const session = await platform.connector().connect({ name: 'x' });
    const target = join(dir.path, 't2');
    expect((await syncHost({ session, platform: 'file-platform', hostId: 'h1', target })).ok).toBe(true);
    await expectExact(platform, target);

    const twice = await platform.connector().connect({ name: 'x' });
    const listHosts = twice.listHosts.bind(twice);
    const doubled = Object.create(twice, {
      listHosts: {
        value: async () => (await listHosts()).map((h) => ({ ...h, disks: [...h.disks, h.disks[0]!] })),
      },
    });
    await expect(
      syncHost({ session: doubled, platform: 'file-platform', hostId: 'h1', target: join(dir.path, 't3') }),
    ).rejects.toMatchObject({ code: 'config', details: { field: 'hostId' } });
  });

  it('a hash-diff reader through defineConnector reads the disk exactly once per sync, full and incremental', async () => {
    const platform = new FilePlatform(join(dir.path, 'hp'), {
      disks: { d: 16 * MiB },
      changeTracking: 'hash',
    });
    platform.write('d', 0, randomBytes(16 * MiB, 7));
    const session = await platform.connector().connect({ name: 'x' });
    const target = join(dir.path, 'ht');
    const full = await syncHost({ session, platform: 'file-platform', hostId: 'h1', target });
    expect(full.ok).toBe(true);
    expect(platform.bytesRead).toBe(16 * MiB);
    platform.write('d', 3 * MiB, randomBytes(GRAIN, 8));
    platform.bytesRead = 0;
    const incremental = await syncHost({ session, platform: 'file-platform', hostId: 'h1', target });
    expect(incremental).toMatchObject({ ok: true, mode: 'incremental' });
    expect(platform.bytesRead).toBe(16 * MiB);
    expect(incremental.disks[0]!.result!.bytesWritten).toBe(4 * MiB);
    await expectExact(platform, target);
  });

  it('a target holding random bytes ends exact and verified, run after run', async () => {
    const { platform, session, target } = await setup();
    const { mkdir } = await import('node:fs/promises');
    await mkdir(target, { recursive: true });
    await writeFile(join(target, imageFileName('disk-a')), randomBytes(8 * MiB, 11));
    await writeFile(join(target, imageFileName('disk-b')), randomBytes(6 * MiB, 12));
    for (const mode of ['auto', 'full', 'full'] as const) {
      const report = await syncHost({
        session,
        platform: 'file-platform',
        hostId: 'h1',
        target,
        mode,
        verify: true,
      });
      expect(report.ok).toBe(true);
      expect(report.disks.every((d) => d.result?.verified === true)).toBe(true);
      await expectExact(platform, target);
    }
  });

  it('phase events: the snapshot wait and the clean-up tick with elapsed time, verification counts bytes', async () => {
    const { session, target } = await setup();
    const clock = createManualClock(0);
    // The platform's snapshot and deletion calls wait for the test, which moves the clock meanwhile.
    const gates = { createSnapshot: gate(), deleteSnapshot: gate() };
    const gated = new Proxy(session, {
      get(t, key) {
        const value = Reflect.get(t, key) as unknown;
        if (key !== 'createSnapshot' && key !== 'deleteSnapshot') {
          return typeof value === 'function' ? value.bind(t) : value;
        }
        const g = gates[key];
        return async (...args: unknown[]) => {
          g.entered();
          await g.released;
          return (value as (...a: unknown[]) => unknown).apply(t, args);
        };
      },
    }) as ConnectorSession;
    const phases: HostSyncPhaseEvent[] = [];
    const options = {
      session: gated,
      platform: 'file-platform',
      hostId: 'h1',
      target,
      clock,
      phaseTickMs: 1000,
      onEvent: (event: HostSyncEvent) => {
        if (event.type === 'phase') phases.push(event);
      },
    };
    const first = syncHost({ ...options, verify: true });
    await gates.createSnapshot.reached;
    await clock.advance(2500);
    gates.createSnapshot.release();
    expect((await first).ok).toBe(true);
    const of = (phase: string, diskId?: string) =>
      phases
        .filter((e) => e.phase === phase && e.diskId === diskId)
        .map(({ type: _type, phase: _phase, diskId: _diskId, ...rest }) => rest);
    expect(of('snapshot')).toEqual([
      { state: 'start', elapsedMs: 0 },
      { state: 'progress', elapsedMs: 1000 },
      { state: 'progress', elapsedMs: 2000 },
      { state: 'end', elapsedMs: 2500 },
    ]);
    for (const [diskId, size] of [
      ['disk-a', 8 * MiB],
      ['disk-b', 4 * MiB],
    ] as const) {
      expect(of('transfer', diskId)).toEqual([
        { state: 'start', elapsedMs: 0 },
        { state: 'end', elapsedMs: 0 },
      ]);
      expect(of('verify', diskId)).toEqual([
        { state: 'start', elapsedMs: 0 },
        { state: 'end', elapsedMs: 0, bytesDone: size, bytesTotal: size },
      ]);
    }
    expect(of('cleanup')).toEqual([]);

    // The next sync re-hashes the images (verifyTarget: manifest) and deletes the first snapshot.
    phases.length = 0;
    gates.createSnapshot.release();
    const second = syncHost({ ...options, verifyTarget: 'manifest' });
    await gates.deleteSnapshot.reached;
    await clock.advance(3000);
    gates.deleteSnapshot.release();
    expect(await second).toMatchObject({ ok: true, mode: 'incremental' });
    expect(of('verify', 'disk-a')).toEqual([
      { state: 'start', elapsedMs: 0 },
      { state: 'end', elapsedMs: 0, bytesDone: 8 * MiB, bytesTotal: 8 * MiB },
    ]);
    expect(of('cleanup')).toEqual([
      { state: 'start', elapsedMs: 0 },
      { state: 'progress', elapsedMs: 1000 },
      { state: 'progress', elapsedMs: 2000 },
      { state: 'progress', elapsedMs: 3000 },
      { state: 'end', elapsedMs: 3000 },
    ]);
    // Every tick stopped with its step.
    expect(clock.pendingTimers()).toBe(0);
  });
});

/** A wait the test opens: `reached` once the code under test waits on it. */
function gate() {
  let entered!: () => void;
  let release!: () => void;
  const reached = new Promise<void>((resolve) => {
    entered = resolve;
  });
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  return { entered, reached, released, release };
}
