import { join } from 'node:path';
import { inspect } from 'node:util';
import {
  createFusionComputeConnector,
  type FcReaderOptions,
  FcSnapshotReader,
  HostLimits,
} from '@syncproxy/connector-fusioncompute';
import type { CbtResetCause } from '@syncproxy/connector-fusioncompute/mock';
import { type ConnectorSession, createManualClock, type SnapshotRef, SyncproxyError } from '@syncproxy/core';
import { afterEach, describe, expect, it } from 'vitest';
import {
  hostFor,
  imageEquals,
  MIB,
  type Rig,
  recordingLogger,
  startRig,
  syncDisk,
  writePattern,
} from './helpers.js';

let rig: Rig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

describe('full and incremental syncs', () => {
  it('a full sync then an incremental give the disk byte for byte; the incremental reads only changed blocks', async () => {
    rig = await startRig();
    const { vm, volumes } = rig.fc.addVm({ name: 'db', volumes: [{}] });
    writePattern(volumes[0]!, 1);
    const session = await rig.connect();
    const host = hostFor(await session.listHosts(), vm.urn);
    const path = join(rig.dir, 'db.img');
    const first = await session.createSnapshot(host);
    const full = await syncDisk(session, host, 0, first, path);
    expect(full.warnings).toEqual([]);
    expect(await imageEquals(path, volumes[0]!)).toBe(true);
    volumes[0]!.disk.write(5 * MIB + 100, new Uint8Array(70_000).fill(7));
    volumes[0]!.disk.writeZeroes(57 * MIB, 65_536); // the first block writePattern wrote, discarded
    const second = await session.createSnapshot(host);
    const incremental = await syncDisk(session, host, 0, second, path, first);
    expect(incremental.warnings).toEqual([]);
    // One block discarded, and 70 000 bytes at 5 MiB + 100 touch two 64 KiB blocks.
    expect(incremental.result.bytesRead).toBe(3 * 65_536);
    expect(await imageEquals(path, volumes[0]!)).toBe(true);
    expect(rig.fc.backupResourceCount).toBe(0);
  });

  it('declares a full read without a base and an incremental with one (hints.incremental)', () => {
    // The session passes `incremental: base !== undefined`; the constructor touches nothing else.
    const options = { diskId: 'd', diskSize: MIB, granularity: 512, extents: [], warnings: [] };
    const open = (incremental: boolean) =>
      new FcSnapshotReader({ ...options, incremental } as unknown as FcReaderOptions);
    expect(open(false).hints?.incremental).toBe(false);
    expect(open(true).hints?.incremental).toBe(true);
  });

  it('a test-only gbBytes the volumes do not have is refused with integrity once getcbt shows where the volume ends', async () => {
    rig = await startRig({ gbBytes: 1024 * MIB });
    const { vm, volumes } = rig.fc.addVm({ name: 'gb', volumes: [{}] });
    writePattern(volumes[0]!, 5);
    const session = await rig.connect({ gbBytes: 8 * MIB });
    const host = hostFor(await session.listHosts(), vm.urn);
    expect(host.disks[0]!.sizeBytes).toBe(8 * MIB);
    const snapshot = await session.createSnapshot(host);
    const error = await session.openReader(host.disks[0]!, { snapshot }).catch((e) => e);
    expect([error.code, error.retryable, error.message]).toEqual([
      'integrity',
      false,
      `volume ${volumes[0]!.uri}: getcbt lists ${1024 * MIB} bytes of blocks, its size says ${8 * MIB}`,
    ]);
    expect(rig.fc.backupResourceCount).toBe(0);
  });

  it.each<CbtResetCause>(['ha', 'snapshot-restore', 'volume-expansion', 'host-restart'])(
    'CBT invalidated by %s between two syncs: openReader with the base says cbt-reset (syncHost syncs in full), and the full sync is exact',
    async (cause) => {
      rig = await startRig();
      const { vm, volumes } = rig.fc.addVm({ name: 'app', volumes: [{}] });
      const volume = volumes[0]!;
      writePattern(volume, 2);
      const session = await rig.connect();
      let host = hostFor(await session.listHosts(), vm.urn);
      const path = join(rig.dir, 'app.img');
      const first = await session.createSnapshot(host);
      await syncDisk(session, host, 0, first, path);
      const before = volume.cbtCreateTime;
      rig.fc.resetCbt(vm.id, cause);
      rig.fc.state.volumes.get(volume.id)!.disk.write(9 * MIB, new Uint8Array(4096).fill(9));
      host = hostFor(await session.listHosts(), vm.urn);
      const second = await session.createSnapshot(host);
      const after = rig.fc.state.volumes.get(volume.id)!.cbtCreateTime;
      const error = await session
        .openReader(host.disks[0]!, { snapshot: second, base: first })
        .catch((e) => e);
      expect([error.code, error.retryable, error.message]).toEqual([
        'cbt-reset',
        false,
        `disk ${volume.urn}: its CBT was restarted at ${after}, after the base snapshot (CBT since ${before}); HA, a snapshot restore, a volume expansion or a host restart resets CBT, so the disk needs a full sync`,
      ]);
      // What syncHost then does: a full sync of the disk into a fresh image, with this warning.
      const fresh = join(rig.dir, 'app-full.img');
      const { result } = await syncDisk(session, host, 0, second, fresh);
      const live = rig.fc.state.volumes.get(volume.id)!;
      expect(result.bytesRead).toBe(live.disk.allocatedExtents().reduce((n, e) => n + e.length, 0));
      expect(await imageEquals(fresh, live)).toBe(true);
      expect(rig.fc.backupResourceCount).toBe(0);
    },
  );

  it("a base chgID the VRM no longer knows: getcbt's own error becomes cbt-reset, its errorCode kept", async () => {
    rig = await startRig();
    const { vm, volumes } = rig.fc.addVm({ name: 'lost', volumes: [{}] });
    writePattern(volumes[0]!, 9, 2);
    const session = await rig.connect();
    const host = hostFor(await session.listHosts(), vm.urn);
    const path = join(rig.dir, 'lost.img');
    const first = await session.createSnapshot(host);
    await syncDisk(session, host, 0, first, path);
    volumes[0]!.generations.clear(); // same CBT start time, but the change ids are gone
    volumes[0]!.disk.writeZeroes(0, volumes[0]!.disk.sizeBytes);
    writePattern(volumes[0]!, 11, 1);
    const second = await session.createSnapshot(host);
    const error = await session.openReader(host.disks[0]!, { snapshot: second, base: first }).catch((e) => e);
    expect([error.code, error.retryable, error.errorCode, error.message]).toEqual([
      'cbt-reset',
      false,
      '10420051',
      `GetCbt failed: HTTP 400 10420051: the CBT base is invalid (CBT was reset): chgID ${String(first.disks[0]!.data.chgID)} from POST ${volumes[0]!.uri}/getcbt (the disk needs a full sync)`,
    ]);
    const fresh = join(rig.dir, 'lost-full.img');
    await syncDisk(session, host, 0, second, fresh);
    expect(await imageEquals(fresh, volumes[0]!)).toBe(true);
  });

  it('a token that expires mid-read is asked for again and the image is still exact', async () => {
    rig = await startRig();
    const { vm, volumes } = rig.fc.addVm({ name: 'files', volumes: [{}] });
    writePattern(volumes[0]!, 3, 8);
    const session = await rig.connect();
    const host = hostFor(await session.listHosts(), vm.urn);
    const snapshot = await session.createSnapshot(host);
    rig.fc.expireTokensAfterReads(3);
    const path = join(rig.dir, 'files.img');
    await syncDisk(session, host, 0, snapshot, path);
    expect(rig.fc.state.counters.get('backup tokens expired')).toBe(1);
    const created = rig.fc.calls.filter((c) => c.method === 'POST' && c.path.endsWith('/backupresources'));
    expect(created.map((c) => c.status)).toEqual([202, 202]);
    expect(await imageEquals(path, volumes[0]!)).toBe(true);
    expect(rig.fc.backupResourceCount).toBe(0);
  });

  it('a backup resource is extended before it runs out (PUT delay), on the connector clock', async () => {
    const clock = createManualClock(Date.parse('2026-12-06T05:00:00Z'));
    rig = await startRig({ now: () => clock.now() });
    const { vm, volumes } = rig.fc.addVm({ name: 'long', volumes: [{}] });
    writePattern(volumes[0]!, 4, 1);
    // Task polls without a wait: the manual clock only moves when the test says.
    const session = await rig.connect({ clock, taskPollMs: 0, config: { advanced: { backupDelaySec: 60 } } });
    const host = hostFor(await session.listHosts(), vm.urn);
    const snapshot = await session.createSnapshot(host);
    const reader = await session.openReader(host.disks[0]!, { snapshot });
    try {
      await reader.read(0, 4096);
      await clock.advance(39_000);
      expect(rig.fc.state.counters.get('backup resource extended')).toBeUndefined();
      await clock.advance(2_000);
      await expect.poll(() => rig!.fc.state.counters.get('backup resource extended')).toBe(1);
      const put = rig.fc.calls.find((c) => c.method === 'PUT');
      expect(put?.status).toBe(200);
      await clock.advance(70_000);
      // Lifetime 120 s now: a read at 111 s still works without a new resource.
      await reader.read(4096, 4096);
      expect(
        rig.fc.calls.filter((c) => c.method === 'POST' && c.path.endsWith('/backupresources')),
      ).toHaveLength(1);
    } finally {
      await reader.close();
    }
  });
});

describe('many disks, several proxies', () => {
  it('a 20-disk VM synced by 3 proxies never has more than 8 connections to its host nor 8 volumes in backup', async () => {
    rig = await startRig({ readLatencyMs: 3 });
    const { vm, volumes } = rig.fc.addVm({ name: 'big', volumes: Array.from({ length: 20 }, () => ({})) });
    for (const [i, v] of volumes.entries()) writePattern(v, 10 + i, 2);
    // The proxies of one product process share the connector value, hence its per-host limits.
    const limits = new HostLimits();
    const proxies = await Promise.all([0, 1, 2].map(() => rig!.connect({ hostLimits: limits })));
    const host = hostFor(await proxies[0]!.listHosts(), vm.urn);
    const snapshot = await proxies[0]!.createSnapshot(host);
    await Promise.all(
      host.disks.map((_, i) => syncDisk(proxies[i % 3]!, host, i, snapshot, join(rig!.dir, `big-${i}.img`))),
    );
    expect(rig.fc.cnas[0]!.peakConnections).toBeLessThanOrEqual(8);
    expect(rig.fc.cnas[0]!.refusedConnections).toBe(0);
    expect(rig.fc.state.peakVolumes).toBeLessThanOrEqual(8);
    expect(rig.fc.state.peakVolumes).toBeGreaterThan(1);
    expect(rig.fc.backupResourceCount).toBe(0);
    const { open } = await import('node:fs/promises');
    for (const [i, volume] of volumes.entries()) {
      // A fresh sparse image: only the allocated extents were written, the rest reads as zeroes.
      const image = await open(join(rig.dir, `big-${i}.img`), 'r');
      try {
        for (const extent of volume.disk.allocatedExtents()) {
          const bytes = Buffer.alloc(extent.length);
          await image.read(bytes, 0, extent.length, extent.offset);
          expect(bytes.equals(volume.disk.read(extent.offset, extent.length))).toBe(true);
        }
      } finally {
        await image.close();
      }
    }
  });
});

describe('login, versions and errors', () => {
  it('a wrong password rejects with auth, not retryable, after one login attempt', async () => {
    rig = await startRig();
    const error = await rig.connect({ config: { password: 'wrong-password' } }).catch((e: unknown) => e);
    expect(SyncproxyError.hasCode(error, 'auth')).toBe(true);
    expect((error as SyncproxyError).retryable).toBe(false);
    expect((error as SyncproxyError).message).toBe(
      'Login failed: HTTP 401 10000040: the user name, password or user type is incorrect from POST /service/session (check the user, the password and the user type)',
    );
    expect(rig.fc.state.counters.get('login refused')).toBe(1);
  });

  it.each([
    ['sha256-hex', 'none'],
    ['plain', 'X-ENCRIPT-ALGORITHM'],
    ['sha256-hex', 'X-ENCRYPT-ALGORITHM'],
    ['plain', 'none'],
  ])(
    'logs in with key %s and algorithm header %s, discovering the newest version',
    async (keyEncoding, header) => {
      rig = await startRig();
      const session = await rig.connect({ config: { advanced: { keyEncoding, algorithmHeader: header } } });
      expect(await session.verify()).toEqual({
        status: 'normal',
        hostCount: 1,
        platformVersion: 'FusionCompute REST 8.1',
      });
      const login = rig.fc.calls.find((c) => c.path === '/service/session')!;
      expect(login.headers.accept).toBe('application/json;version=8.1;charset=UTF-8');
      expect(login.headers['x-auth-usertype']).toBe('2');
      expect(login.headers['x-auth-authtype']).toBe('0');
    },
  );

  it('a wrong user type is refused with auth', async () => {
    rig = await startRig();
    const error = await rig.connect({ config: { userType: '0' } }).catch((e: unknown) => e);
    expect(SyncproxyError.hasCode(error, 'auth')).toBe(true);
  });

  it('an expired token logs in again once, and the call goes through', async () => {
    rig = await startRig();
    rig.fc.addVm({ name: 'a', volumes: [{}] });
    const session = await rig.connect();
    rig.fc.expireSessions();
    expect(await session.listHosts()).toHaveLength(1);
    expect(rig.fc.state.counters.get('login')).toBe(2);
  });

  it('VMs are paged with limit and offset', async () => {
    rig = await startRig();
    for (let i = 0; i < 5; i++) rig.fc.addVm({ name: `vm${i}`, volumes: [{}] });
    const session = await rig.connect({ pageSize: 2 });
    expect((await session.listHosts()).map((h) => h.name)).toEqual(['vm0', 'vm1', 'vm2', 'vm3', 'vm4']);
    const pages = rig.fc.calls.filter((c) => c.path.endsWith('/vms')).map((c) => c.query);
    expect(pages).toEqual([
      '?detail=2&limit=2&offset=0',
      '?detail=2&limit=2&offset=2',
      '?detail=2&limit=2&offset=4',
    ]);
  });

  it('tasks are polled to the end, with their progress', async () => {
    rig = await startRig({ taskPolls: 2 });
    const { vm } = rig.fc.addVm({ name: 'p', volumes: [{}] });
    const logger = recordingLogger();
    const session = await rig.connect({ logger });
    await session.createSnapshot(hostFor(await session.listHosts(), vm.urn));
    expect(logger.lines.filter((l) => l.includes('snapshot progress'))).toEqual(
      [45, 90, 100].map((percent) => `debug snapshot progress {"vm":"${vm.urn}","percent":${percent}}`),
    );
    expect(rig.fc.calls.filter((c) => c.path.includes('/tasks/')).map((c) => c.status)).toEqual([
      200, 200, 200,
    ]);
  });

  it('logout on close', async () => {
    rig = await startRig();
    const session = await rig.connect();
    await session.close();
    expect(rig.fc.state.counters.get('logout')).toBe(1);
    expect(rig.fc.state.sessions.size).toBe(0);
  });

  it('no secret in logs or errors: password, its SHA-256, session and backup tokens', async () => {
    rig = await startRig();
    const { vm, volumes } = rig.fc.addVm({ name: 's', volumes: [{}] });
    writePattern(volumes[0]!, 5, 2);
    const logger = recordingLogger();
    const session = await rig.connect({ logger });
    const host = hostFor(await session.listHosts(), vm.urn);
    const snapshot = await session.createSnapshot(host);
    const tokens = new Set<string>([...rig.fc.state.sessions.keys()]);
    rig.fc.expireSessions();
    rig.fc.expireTokensAfterReads(1);
    await syncDisk(session, host, 0, snapshot, join(rig.dir, 's.img'));
    for (const t of rig.fc.state.sessions.keys()) tokens.add(t);
    rig.fc.faults.add({
      kind: 'status',
      status: 500,
      body: { errorCode: '10000500', errorDes: 'boom' },
      path: '/service',
    });
    const errors = [
      await session.listHosts().catch((e: unknown) => e),
      await rig.connect({ config: { password: 'Wrong#Pass' } }).catch((e: unknown) => e),
    ];
    const { createHash } = await import('node:crypto');
    const secrets = [
      rig.fc.user.password,
      createHash('sha256').update(rig.fc.user.password).digest('hex'),
      'Wrong#Pass',
      ...tokens,
    ];
    const texts = [
      ...logger.lines,
      ...errors.map((e) => inspect(e, { depth: 10 })),
      ...errors.map((e) => JSON.stringify(e)),
    ];
    expect(logger.lines.some((l) => l.includes('logging in again'))).toBe(true);
    for (const secret of secrets) for (const text of texts) expect(text).not.toContain(secret);
  });
});

describe('after a failure at any step', () => {
  /** What syncHost does: snapshot, read every disk, keep the new snapshot only on success. */
  async function syncOnce(session: ConnectorSession, rigNow: Rig, vmUrn: string, base?: SnapshotRef) {
    const host = hostFor(await session.listHosts(), vmUrn);
    const snapshot = await session.createSnapshot(host);
    try {
      for (let i = 0; i < host.disks.length; i++)
        await syncDisk(session, host, i, snapshot, join(rigNow.dir, `f-${i}.img`), base);
      if (base) await session.deleteSnapshot(base);
      return snapshot;
    } catch (error) {
      await session.deleteSnapshot(snapshot);
      throw error;
    }
  }

  it.each([
    ['the snapshot task', (r: Rig) => r.fc.failNextTask('CreateSnapshot', 'vmBusy')],
    ['getcbt', (r: Rig) => r.fc.faults.add({ kind: 'status', status: 500, path: /\/getcbt$/, times: 1 })],
    ['the backup resource task', (r: Rig) => r.fc.failNextTask('CreateBackupResource', 'snapNotFound')],
    [
      'a data read',
      (r: Rig) =>
        r.fc.cnas[0]!.server.faults.add({
          kind: 'status',
          status: 500,
          body: { errorCode: '10000500', errorDes: 'io' },
        }),
    ],
    [
      'a shutdown mid-backup',
      (r: Rig) =>
        r.fc.cnas[0]!.server.faults.add({
          kind: 'latency',
          ms: 0,
          skip: 1,
          times: 1,
          when: () => {
            r.fc.shutdown([...r.fc.state.vms.keys()][0]!);
            return true;
          },
        }),
    ],
  ])(
    '%s: no backup resource and no snapshot the state does not reference are left',
    async (_step, inject) => {
      rig = await startRig();
      const { vm, volumes } = rig.fc.addVm({ name: 'f', volumes: [{}, {}] });
      for (const v of volumes) writePattern(v, 6, 2);
      const session = await rig.connect();
      const base = await syncOnce(session, rig, vm.urn);
      for (const v of volumes) writePattern(v, 7, 1);
      inject(rig);
      await expect(syncOnce(session, rig, vm.urn, base)).rejects.toThrow();
      expect(rig.fc.backupResourceCount).toBe(0);
      expect([...rig.fc.state.vms.get(vm.id)!.snapshots.values()].map((s) => s.urn)).toEqual([base.id]);
    },
  );
});

describe('sweep', () => {
  it('removes the snapshots and backup resources this SDK left, keeps what it is told to', async () => {
    rig = await startRig();
    const { vm, volumes } = rig.fc.addVm({ name: 'sw', volumes: [{}] });
    writePattern(volumes[0]!, 8, 1);
    const connector = createFusionComputeConnector({ taskPollMs: 1 });
    const crashed = await connector.connect(rig.fc.config());
    const host = hostFor(await crashed.listHosts(), vm.urn);
    const kept = await crashed.createSnapshot(host);
    const left = await crashed.createSnapshot(host);
    const reader = await crashed.openReader(host.disks[0]!, { snapshot: left });
    await reader.read(0, 4096);
    // The proxy dies: nothing is closed. Another proxy sweeps.
    const session = await rig.connect();
    const sweeper = session as ConnectorSession & Required<Pick<ConnectorSession, 'sweep'>>;
    const anHourAgo = new Date(Date.now() - 3_600_000);
    expect((await sweeper.sweep({ olderThan: anHourAgo })).resources).toEqual([]);
    const dry = await sweeper.sweep({ dryRun: true });
    expect(dry.resources.map((r) => [r.kind, r.deleted])).toEqual([
      ['backup-resource', false],
      ['snapshot', false],
      ['snapshot', false],
    ]);
    const report = await sweeper.sweep({ keep: [kept.id] });
    expect(report.resources.map((r) => [r.kind, r.id, r.deleted])).toEqual([
      ['backup-resource', expect.any(String), true],
      ['snapshot', kept.id, false],
      ['snapshot', left.id, true],
    ]);
    expect(rig.fc.backupResourceCount).toBe(0);
    expect([...rig.fc.state.vms.get(vm.id)!.snapshots.values()].map((s) => s.urn)).toEqual([kept.id]);
    await crashed.close();
  });
});
