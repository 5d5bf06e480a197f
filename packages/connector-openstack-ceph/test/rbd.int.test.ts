import { randomBytes, randomUUID } from 'node:crypto';
import { chmod, copyFile, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type ExportDiffRecord,
  type IncrementalMode,
  openRbdReader,
  parseExportDiff,
  RbdCli,
  rbdDiffExtents,
  rbdImageInfo,
} from '@syncproxy/connector-openstack-ceph';
import { type Extent, FileSink, SyncproxyError, transferDisk } from '@syncproxy/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyReader } from './fixtures/apply-reader.js';
import { adminRbd, type CephCluster, startCephCluster, stopCephCluster } from './fixtures/ceph-cluster.js';
import { encodeExportDiff } from './fixtures/export-diff-stream.js';

const MiB = 1024 * 1024;
const OBJECT = MiB;
const SIZE = 24 * MiB;

let cluster: CephCluster;
let work: string;
let cli: RbdCli;
const logLines: string[] = [];
const image = `volume-${randomUUID()}`;

/** [offset, end) pairs of a list of ranges, adjacent ones joined. */
function union(ranges: Array<{ offset: number; length: number }>): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const r of ranges) {
    const last = out[out.length - 1];
    if (last && last[1] === r.offset) last[1] = r.offset + r.length;
    else out.push([r.offset, r.offset + r.length]);
  }
  return out;
}

async function exportedImage(snapshot: string): Promise<Buffer> {
  const path = join(work, `export-${snapshot}-${randomUUID()}.raw`);
  await adminRbd(cluster, ['export', `${cluster.pool}/${image}@${snapshot}`, path]);
  return readFile(path);
}

async function records(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
): Promise<Array<{ offset: number; length: number }>> {
  const out: Array<{ offset: number; length: number }> = [];
  for await (const r of parseExportDiff(source) as AsyncIterable<ExportDiffRecord>) {
    if (r.type === 'write' || r.type === 'zero') out.push({ offset: r.offset, length: r.length });
  }
  return out;
}

async function extentsOf(iterable: AsyncIterable<Extent>): Promise<Extent[]> {
  const out: Extent[] = [];
  for await (const e of iterable) out.push(e);
  return out;
}

beforeAll(async () => {
  cluster = startCephCluster();
  work = await mkdtemp(join(tmpdir(), 'syncproxy-ceph-test-'));
  cli = await RbdCli.create({
    monitors: cluster.monHost,
    cephx: true,
    user: cluster.user,
    keyring: `[client.cinder]\n\tkey = ${cluster.key}\n\tcaps mon = "profile rbd"\n`,
    logger: {
      debug: (...args: unknown[]) => {
        logLines.push(args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' '));
      },
      info: (...args: unknown[]) => {
        logLines.push(args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' '));
      },
      warn: (...args: unknown[]) => {
        logLines.push(args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' '));
      },
      error: (...args: unknown[]) => {
        logLines.push(args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' '));
      },
    },
  });
  const spec = `${cluster.pool}/${image}`;
  await adminRbd(cluster, ['create', '--size', `${SIZE / MiB}M`, '--object-size', `${OBJECT / MiB}M`, spec]);
  // s1: writes inside objects, across an object boundary, whole objects, near the end, and zeroes.
  await adminRbd(
    cluster,
    ['import-diff', '-', spec],
    encodeExportDiff({
      version: 1,
      toSnap: 's1',
      sizeBytes: SIZE,
      records: [
        { tag: 'w', offset: 0, data: randomBytes(1000) },
        { tag: 'w', offset: MiB + 512, data: randomBytes(300 * 1024) },
        { tag: 'w', offset: 5 * MiB - 4096, data: randomBytes(8192) },
        { tag: 'w', offset: 10 * MiB, data: randomBytes(2 * MiB) },
        { tag: 'w', offset: 15 * MiB, data: new Uint8Array(65536) },
        { tag: 'w', offset: 23 * MiB + 1000, data: randomBytes(100) },
      ],
    }),
  );
  // s2: overwrites, a partial and a whole-object discard, a new object.
  await adminRbd(
    cluster,
    ['import-diff', '-', spec],
    encodeExportDiff({
      version: 1,
      fromSnap: 's1',
      toSnap: 's2',
      sizeBytes: SIZE,
      records: [
        { tag: 'w', offset: 0, data: randomBytes(1) },
        { tag: 'w', offset: MiB + 100 * 1024, data: randomBytes(10 * 1024) },
        { tag: 'z', offset: 10 * MiB + 256 * 1024, length: 128 * 1024 },
        { tag: 'z', offset: 11 * MiB, length: MiB },
        { tag: 'w', offset: 20 * MiB + 4096, data: randomBytes(4096) },
      ],
    }),
  );
});

afterAll(async () => {
  await cli?.close();
  stopCephCluster(cluster);
  if (work) await rm(work, { recursive: true, force: true });
});

describe('rbd on a real Ceph', () => {
  it('reads the size and object size of a snapshot with rbd info', async () => {
    const info = await rbdImageInfo(cli, { pool: cluster.pool, image, snapshot: 's1' });
    expect(info.sizeBytes).toBe(SIZE);
    expect(info.objectSizeBytes).toBe(OBJECT);
  });

  for (const [name, fromSnapshot] of [
    ['full', undefined],
    ['incremental', 's1'],
  ] as const) {
    for (const mode of ['exact', 'whole-object'] as const) {
      it(`parses a captured export-diff stream (${name}, ${mode}) to the same extents as rbd diff`, async () => {
        const ref = {
          pool: cluster.pool,
          image,
          snapshot: 's2',
          mode,
          ...(fromSnapshot ? { fromSnapshot } : {}),
        };
        const diff = await extentsOf(rbdDiffExtents(cli, ref, SIZE));
        const args = ['export-diff', ...(fromSnapshot ? ['--from-snap', fromSnapshot] : [])];
        if (mode === 'whole-object') args.push('--whole-object');
        const captured = await adminRbd(cluster, [...args, `${cluster.pool}/${image}@s2`, '-']);
        const parsed = await records([captured] as Iterable<Uint8Array>);
        expect(diff.length).toBeGreaterThan(0);
        expect(union(parsed)).toEqual(union(diff));
      });
    }
  }

  it('lists exactly what rbd diff lists, discarded ranges as zero extents', async () => {
    const text = (
      await adminRbd(cluster, [
        'diff',
        '--format',
        'json',
        '--from-snap',
        's1',
        `${cluster.pool}/${image}@s2`,
      ])
    ).toString();
    const expected = (JSON.parse(text) as Array<{ offset: number; length: number; exists: string }>).map(
      (e) => ({
        offset: e.offset,
        length: e.length,
        kind: e.exists === 'true' ? 'data' : 'zero',
      }),
    );
    const seen = await extentsOf(
      rbdDiffExtents(cli, { pool: cluster.pool, image, snapshot: 's2', fromSnapshot: 's1' }, SIZE),
    );
    expect(seen).toEqual(expected);
    expect(seen).toContainEqual({ offset: 11 * MiB, length: MiB, kind: 'zero' });
  });

  /** A full sync of s1 then an incremental s1 -> s2 with transferDisk into a FileSink, each compared with `rbd export`. */
  async function syncTwice(mode: IncrementalMode): Promise<{ full: Extent[]; incremental: Extent[] }> {
    const target = join(work, `target-${mode}.raw`);
    const streamsBefore = logLines.filter((l) => l.includes('"export-diff"')).length;
    const fullReader = await openRbdReader({ cli, pool: cluster.pool, image, snapshot: 's1', mode });
    const full = await extentsOf(fullReader.extents());
    await transferDisk({
      reader: fullReader,
      sink: new FileSink(target),
      checkpoint: false,
      manifest: false,
    });
    await fullReader.close();
    expect((await readFile(target)).equals(await exportedImage('s1'))).toBe(true);

    const incReader = await openRbdReader({
      cli,
      pool: cluster.pool,
      image,
      snapshot: 's2',
      fromSnapshot: 's1',
      mode,
    });
    const incremental = await extentsOf(incReader.extents());
    await transferDisk({ reader: incReader, sink: new FileSink(target), checkpoint: false, manifest: false });
    await incReader.close();
    expect((await readFile(target)).equals(await exportedImage('s2'))).toBe(true);
    // The engine reads in order: one export-diff stream per transfer, never restarted.
    expect(logLines.filter((l) => l.includes('"export-diff"')).length - streamsBefore).toBe(2);
    return { full, incremental };
  }

  it('syncs full then incremental byte-exact with rbd diff extents', async () => {
    const { incremental } = await syncTwice('exact');
    // Exact mode reports less than whole objects: the 10 KiB overwrite is not a whole object.
    expect(incremental.some((e) => e.length % OBJECT !== 0)).toBe(true);
  });

  it('syncs byte-exact in rbd du mode, with a superset of the rbd diff extents at object granularity', async () => {
    const { full, incremental } = await syncTwice('whole-object');
    for (const extents of [full, incremental]) {
      for (const e of extents) {
        expect(e.offset % OBJECT).toBe(0);
        expect(e.length % OBJECT === 0 || e.offset + e.length === SIZE).toBe(true);
      }
    }
    for (const [snapshot, fromSnapshot, du] of [
      ['s1', undefined, full],
      ['s2', 's1', incremental],
    ] as const) {
      const exact = await extentsOf(
        rbdDiffExtents(
          cli,
          { pool: cluster.pool, image, snapshot, ...(fromSnapshot ? { fromSnapshot } : {}) },
          SIZE,
        ),
      );
      for (const e of exact) {
        const holder = du.find((d) => d.offset <= e.offset && e.offset + e.length <= d.offset + d.length);
        expect(holder, `rbd du covers ${e.offset}+${e.length}`).toBeDefined();
      }
    }
  });

  it('serves concurrent reads of chunks that do not line up with the export-diff records', async () => {
    const target = join(work, 'target-chunks.raw');
    await writeFile(target, '');
    for (const [snapshot, fromSnapshot] of [
      ['s1', undefined],
      ['s2', 's1'],
    ] as const) {
      const reader = await openRbdReader({
        cli,
        pool: cluster.pool,
        image,
        snapshot,
        ...(fromSnapshot ? { fromSnapshot } : {}),
      });
      await applyReader(reader, target, { chunkBytes: 100_000, concurrency: 3 });
      await reader.close();
      expect((await readFile(target)).equals(await exportedImage(snapshot))).toBe(true);
    }
  });

  it('readInto a dirty reused buffer: every extent exact, zero records in it filled with zeroes', async () => {
    const expected = await exportedImage('s2');
    for (const mode of ['exact', 'whole-object'] as const) {
      for (const fromSnapshot of [undefined, 's1']) {
        const reader = await openRbdReader({
          cli,
          pool: cluster.pool,
          image,
          snapshot: 's2',
          mode,
          ...(fromSnapshot ? { fromSnapshot } : {}),
        });
        const buffer = new Uint8Array(new SharedArrayBuffer(4 * MiB));
        for (const e of await extentsOf(reader.extents())) {
          if (e.kind !== 'data') continue;
          for (let at = e.offset; at < e.offset + e.length; at += buffer.length) {
            const piece = buffer.subarray(0, Math.min(buffer.length, e.offset + e.length - at));
            piece.fill(0xaa);
            await reader.readInto!(piece, at);
            expect(Buffer.compare(piece, expected.subarray(at, at + piece.length)), `${mode} ${at}`).toBe(0);
          }
        }
        await reader.close();
      }
    }
  });

  it('serves reads asked out of order, restarting the stream when a read is behind it', async () => {
    const reader = await openRbdReader({ cli, pool: cluster.pool, image, snapshot: 's1' });
    const expected = await exportedImage('s1');
    const later = await reader.read(10 * MiB + 4096, 8192);
    const earlier = await reader.read(MiB + 512, 4096);
    expect(Buffer.from(later).equals(expected.subarray(10 * MiB + 4096, 10 * MiB + 12288))).toBe(true);
    expect(Buffer.from(earlier).equals(expected.subarray(MiB + 512, MiB + 4608))).toBe(true);
    await reader.close();
  });

  it('rejects an aborted read with code aborted and keeps serving the others', async () => {
    const reader = await openRbdReader({ cli, pool: cluster.pool, image, snapshot: 's1' });
    const expected = await exportedImage('s1');
    const controller = new AbortController();
    const aborted = reader.read(23 * MiB, 4096, { signal: controller.signal });
    const kept = reader.read(10 * MiB, 4096);
    controller.abort();
    await expect(aborted).rejects.toMatchObject({ code: 'aborted', message: 'rbd read aborted' });
    expect(Buffer.from(await kept).equals(expected.subarray(10 * MiB, 10 * MiB + 4096))).toBe(true);
    await reader.close();
  });

  it('fails a read of a range the incremental diff does not hold with an integrity error', async () => {
    const reader = await openRbdReader({
      cli,
      pool: cluster.pool,
      image,
      snapshot: 's2',
      fromSnapshot: 's1',
    });
    await expect(reader.read(5 * MiB, 4096)).rejects.toMatchObject({
      code: 'integrity',
      message: `read of ${5 * MiB}+4096 from ${cluster.pool}/${image}@s2: the range is not in the rbd diff since s1 (read only the reader's extents)`,
    });
    await reader.close();
  });

  it('reports a missing image as not-found, naming it', async () => {
    const error = await rbdImageInfo(cli, {
      pool: cluster.pool,
      image: 'volume-missing',
      snapshot: 's1',
    }).catch((e) => e);
    expect(SyncproxyError.hasCode(error, 'not-found')).toBe(true);
    expect(error.message).toMatch(
      /^rbd info volumes\/volume-missing@s1 failed \(exit 2\): .*\(2\) No such file or directory/,
    );
  });
});

describe('cephx keyring handling', () => {
  it('never puts the keyring in process arguments or the environment, and keeps its files private', async () => {
    const trace = join(work, 'argv.log');
    const wrapper = join(work, 'rbd-wrapper.sh');
    await writeFile(
      wrapper,
      `#!/bin/sh\n{ printf '%s\\n' "$@"; env; for f in $(printf '%s\\n' "$@" | grep ceph.conf); do ls -la "$(dirname "$f")"; stat -c '%a %n' "$(dirname "$f")" "$(dirname "$f")"/*; done; } >> ${trace}\nexec rbd "$@"\n`,
    );
    await chmod(wrapper, 0o755);
    const tmpRoot = await mkdtemp(join(work, 'tmp-'));
    const traced = await RbdCli.create({
      monitors: cluster.monHost,
      cephx: true,
      user: cluster.user,
      keyring: cluster.key,
      rbdPath: wrapper,
      tmpRoot,
    });
    const reader = await openRbdReader({ cli: traced, pool: cluster.pool, image, snapshot: 's1' });
    await extentsOf(reader.extents());
    await reader.read(0, 1000);
    await reader.close();
    await traced.close();
    const log = await readFile(trace, 'utf8');
    expect(log).toContain('export-diff');
    expect(log).not.toContain(cluster.key);
    expect(log).toMatch(/^700 .*syncproxy-rbd-/m);
    expect(log).toMatch(/^600 .*\/keyring$/m);
    expect(log).toMatch(/^600 .*\/ceph\.conf$/m);
    // close() removed the private directory.
    expect(await readdir(tmpRoot)).toEqual([]);
  });

  it('keeps the keyring out of logs and errors', async () => {
    const failing = await openRbdReader({
      cli,
      pool: cluster.pool,
      image: 'volume-nope',
      snapshot: 's1',
    }).catch((e) => e);
    expect(SyncproxyError.isInstance(failing)).toBe(true);
    expect(JSON.stringify(failing.toJSON())).not.toContain(cluster.key);
    expect(String(failing.stack)).not.toContain(cluster.key);
    expect(logLines.length).toBeGreaterThan(0);
    expect(logLines.join('\n')).not.toContain(cluster.key);
  });

  it('fails with an auth error, without the key, when the key is wrong', async () => {
    const wrongKey = Buffer.from(randomBytes(28)).toString('base64');
    const wrong = await RbdCli.create({
      monitors: cluster.monHost,
      cephx: true,
      user: cluster.user,
      keyring: wrongKey,
      connectTimeoutSec: 5,
    });
    const error = await rbdImageInfo(wrong, { pool: cluster.pool, image, snapshot: 's1' }).catch((e) => e);
    await wrong.close();
    expect(SyncproxyError.isInstance(error)).toBe(true);
    expect(error.code).toBe('auth');
    expect(error.retryable).toBe(false);
    expect(error.message).not.toContain(wrongKey);
    expect(error.message).toBe(
      `rbd info ${cluster.pool}/${image}@s1 failed (exit 5): rbd: couldn't connect to the cluster! (check the Ceph user and keyring)`,
    );
  });

  it('writes a private config directory that close() removes', async () => {
    const tmpRoot = await mkdtemp(join(work, 'tmp-'));
    const own = await RbdCli.create({
      monitors: cluster.monHost,
      cephx: true,
      user: 'cinder',
      keyring: cluster.key,
      tmpRoot,
    });
    const [dir] = await readdir(tmpRoot);
    expect((await stat(join(tmpRoot, dir!))).mode & 0o777).toBe(0o700);
    expect((await stat(join(tmpRoot, dir!, 'keyring'))).mode & 0o777).toBe(0o600);
    await copyFile(join(tmpRoot, dir!, 'ceph.conf'), join(work, 'conf-copy'));
    expect(await readFile(join(work, 'conf-copy'), 'utf8')).not.toContain(cluster.key);
    await own.close();
    expect(await readdir(tmpRoot)).toEqual([]);
  });
});
